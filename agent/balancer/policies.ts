// The policies by name: what config validates against and what the balancer set instantiates.

import { BALANCER_NAMES, type BalancerName } from '../vocabulary/balancer-names.ts';
import { createTimeCell } from './endpoint-load.ts';
import { LeastRequestPolicy } from './least-request.ts';
import { PeakEwmaPolicy } from './p2c-peak-ewma.ts';
import { type BalancingPolicy, fastRandomInt, type PolicyDeps } from './picker.ts';
import { RoundRobinPolicy } from './round-robin.ts';

/** For a policy used alone: its time cell never advances, so p2c-ewma compares estimates as of their last samples
 *  without fading them; the balancer set passes a cell its load objects keep at the latest sample time. */
export const DEFAULT_POLICY_DEPS: Readonly<PolicyDeps> = Object.freeze({ randomInt: fastRandomInt(), time: createTimeCell() });

export function policyByName(name: BalancerName, deps: PolicyDeps = DEFAULT_POLICY_DEPS): BalancingPolicy {
  switch (name) {
    case 'p2c-ewma':
      return new PeakEwmaPolicy(deps);
    case 'least-request':
      return new LeastRequestPolicy(deps);
    case 'round-robin':
      return new RoundRobinPolicy(deps);
    default:
      throw new TypeError(`unknown balancer ${String(name satisfies never)}; expected one of ${BALANCER_NAMES.join(', ')}`);
  }
}
