// How big a chaos scenario runs: the short form in `npm test`, the long form in `npm run chaos` (MESHLITE_CHAOS_FULL=1).

export const CHAOS_FULL = process.env.MESHLITE_CHAOS_FULL === '1';

/** `short` in npm test, `full` in npm run chaos. */
export function chaosScale<T>(short: T, full: T): T {
  return CHAOS_FULL ? full : short;
}
