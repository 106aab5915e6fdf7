// Seeded randomness and the seed-replaying loop shared by the fuzzers of the client-role connection and the relay.

import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { inspect } from 'node:util';

/** xorshift32: small, fast, and the same sequence for the same seed on every machine. */
export class FuzzRandom {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0 || 0x2545f491;
  }
  next(): number {
    let x = this.state;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return this.next() % n;
  }
  chance(p: number): boolean {
    return this.next() / 0x1_0000_0000 < p;
  }
  pick<V>(values: readonly V[]): V {
    return values[this.int(values.length)];
  }
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.next() & 0xff;
    return out;
  }
}

export interface FuzzLoopOptions {
  /** Iterations at most (FUZZ_ITERATIONS overrides). */
  maxIterations: number;
  /** Wall-clock budget for the whole loop. */
  budgetMs: number;
  /**
   * Seeds that hit a known agent bug, named by a reason: such a run is counted and skipped instead of failing.
   * `knownBug` receives the failure and returns the bug's name when the failure is that bug's signature, else null.
   */
  knownBug?: (error: unknown) => string | null;
}

/**
 * Runs `one(seed)` for seeds drawn from FUZZ_SEED (a random master seed when unset), or only FUZZ_ITERATION_SEED, and
 * fails with both seeds in the message so that any failure replays with
 * `FUZZ_SEED=<master> FUZZ_ITERATION_SEED=<seed> node --test <file>`.
 */
export async function fuzzLoop(t: TestContext, options: FuzzLoopOptions, one: (seed: number) => Promise<void>): Promise<number> {
  const only = process.env.FUZZ_ITERATION_SEED;
  const masterSeed = Number(process.env.FUZZ_SEED ?? Date.now() % 0x1_0000_0000) >>> 0;
  const maxIterations = Number(process.env.FUZZ_ITERATIONS ?? options.maxIterations);
  t.diagnostic(`FUZZ_SEED=${masterSeed}`);
  const master = new FuzzRandom(masterSeed);
  const started = Date.now();
  const known = new Map<string, number[]>();
  let iterations = 0;
  for (; iterations < maxIterations && Date.now() - started < options.budgetMs; iterations++) {
    const seed = only === undefined ? master.next() : Number(only) >>> 0;
    try {
      await one(seed);
    } catch (error) {
      const bug = options.knownBug?.(error) ?? null;
      if (bug !== null && only === undefined) {
        known.set(bug, [...(known.get(bug) ?? []), seed]);
      } else {
        const detail = error instanceof assert.AssertionError ? ` (actual ${inspect(error.actual)}, expected ${inspect(error.expected)})` : '';
        assert.fail(`FUZZ_SEED=${masterSeed} FUZZ_ITERATION_SEED=${seed} (iteration ${iterations}): ${(error as Error).stack}${detail}`);
      }
    }
    if (only !== undefined) break;
  }
  t.diagnostic(`${iterations} iterations in ${Date.now() - started} ms`);
  for (const [bug, seeds] of known) t.diagnostic(`skipped ${seeds.length} seed(s) hitting known bug "${bug}", e.g. FUZZ_ITERATION_SEED=${seeds[0]}`);
  return iterations;
}
