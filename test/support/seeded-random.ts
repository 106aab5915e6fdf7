// A small seeded PRNG (mulberry32) so balancer tests that depend on randomness give the same answer every run.

export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Seeded integers in [0, 2^30), the shape pickers draw (PolicyDeps.randomInt). */
export function seededRandomInt(seed: number): () => number {
  const random = seededRandom(seed);
  return () => Math.floor(random() * 0x40000000);
}
