// Power of two choices over peak-EWMA cost (latency × (in flight + 1)): the default policy, as in Linkerd.

import type { EndpointLoad, TimeCell } from './endpoint-load.ts';
import { type BalancingPolicy, EMPTY_PICKER, type Picker, type PolicyDeps } from './picker.ts';
import type { BalancerName } from '../vocabulary/balancer-names.ts';

/**
 * Two distinct endpoints drawn at random, the cheaper one wins. Comparing two instead of scanning all keeps a
 * pick O(1) and never sends everything to the single apparently-best endpoint: an estimate that is briefly
 * wrong (a stale peak, a new endpoint's default) moves only part of the traffic.
 */
class PeakEwmaPicker implements Picker {
  private readonly endpoints: readonly EndpointLoad[];
  private readonly randomInt: () => number;
  private readonly time: TimeCell;

  constructor(endpoints: readonly EndpointLoad[], deps: PolicyDeps) {
    this.endpoints = endpoints;
    this.randomInt = deps.randomInt;
    this.time = deps.time;
  }

  pick(): EndpointLoad | null {
    const endpoints = this.endpoints;
    const n = endpoints.length;
    if (n === 1) return endpoints[0];
    const i = this.randomInt() % n;
    let j = this.randomInt() % (n - 1);
    if (j >= i) j++;
    const a = endpoints[i];
    const b = endpoints[j];
    // On a tie `a` wins: it is already a uniformly random one of the two.
    return b.costsLessThan(a, this.time) ? b : a;
  }
}

export class PeakEwmaPolicy implements BalancingPolicy {
  readonly name: BalancerName = 'p2c-ewma';
  private readonly deps: PolicyDeps;

  constructor(deps: PolicyDeps) {
    this.deps = { randomInt: deps.randomInt, time: deps.time };
  }

  createPicker(endpoints: readonly EndpointLoad[]): Picker {
    if (endpoints.length === 0) return EMPTY_PICKER;
    return new PeakEwmaPicker(Object.freeze(endpoints.slice()), this.deps);
  }
}
