// The balancing policies by name: what settings, Service annotations and the static file may select.

export type BalancerName = 'p2c-ewma' | 'least-request' | 'round-robin';

/** Every valid balancer name; the first is the default. */
export const BALANCER_NAMES: readonly BalancerName[] = Object.freeze(['p2c-ewma', 'least-request', 'round-robin']);

export const DEFAULT_BALANCER: BalancerName = 'p2c-ewma';

export function isBalancerName(value: unknown): value is BalancerName {
  return typeof value === 'string' && (BALANCER_NAMES as readonly string[]).includes(value);
}
