// Exponential reconnect backoff with full jitter, so that many agents do not reconnect to an endpoint in step.

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 100, maxMs: 10_000 };

/** Delay before attempt number `failures` (1 = after the first failure). */
export function backoffDelay(policy: BackoffPolicy, failures: number, random: () => number): number {
  if (failures <= 0) return 0;
  const ceiling = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(failures - 1, 20));
  return Math.floor(ceiling / 2 + (random() * ceiling) / 2);
}
