// Least-request: the endpoint with the fewest requests in flight; full scan for small sets, two choices above.

import type { EndpointLoad } from './endpoint-load.ts';
import { type BalancingPolicy, EMPTY_PICKER, fastRandomInt, type Picker, type PolicyDeps } from './picker.ts';
import type { BalancerName } from '../vocabulary/balancer-names.ts';

/**
 * Up to this many endpoints the picker scans them all. Power of two choices exists to avoid herding on stale,
 * shared load figures and to keep a pick O(1); here the counts are exact and local (onStart() runs before the
 * next pick), so nothing herds, and a scan of a handful of endpoints costs about what two random draws do while
 * always finding the true least. Above the limit, two distinct random choices keep the pick O(1).
 */
export const FULL_SCAN_LIMIT = 8;

/** What both least-request pickers hold: the endpoint snapshot and the randomness for ties or choices. */
abstract class LeastRequestPicker implements Picker {
  protected readonly endpoints: readonly EndpointLoad[];
  protected readonly randomInt: () => number;

  constructor(endpoints: readonly EndpointLoad[], randomInt: () => number) {
    this.endpoints = endpoints;
    this.randomInt = randomInt;
  }

  abstract pick(): EndpointLoad | null;
}

class FullScanPicker extends LeastRequestPicker {

  pick(): EndpointLoad | null {
    const endpoints = this.endpoints;
    let best = endpoints[0];
    let least = best.inFlight;
    let ties = 1;
    for (let i = 1; i < endpoints.length; i++) {
      const candidate = endpoints[i];
      const load = candidate.inFlight;
      if (load < least) {
        best = candidate;
        least = load;
        ties = 1;
      } else if (load === least && this.randomInt() % ++ties === 0) {
        // Reservoir sampling: the k-th tied endpoint replaces the choice with probability 1/k, so every tied
        // endpoint is equally likely (a fixed scan order would favour the first).
        best = candidate;
      }
    }
    return best;
  }
}

class TwoChoicesPicker extends LeastRequestPicker {

  pick(): EndpointLoad | null {
    const endpoints = this.endpoints;
    const n = endpoints.length;
    const i = this.randomInt() % n;
    let j = this.randomInt() % (n - 1);
    if (j >= i) j++;
    const a = endpoints[i];
    const b = endpoints[j];
    // On a tie `a` wins: it is already a uniformly random one of the two.
    return b.inFlight < a.inFlight ? b : a;
  }
}

export class LeastRequestPolicy implements BalancingPolicy {
  readonly name: BalancerName = 'least-request';
  private readonly randomInt: () => number;
  private readonly fullScanLimit: number;

  constructor(deps: Pick<PolicyDeps, 'randomInt'> = { randomInt: fastRandomInt() }, fullScanLimit = FULL_SCAN_LIMIT) {
    this.randomInt = deps.randomInt;
    this.fullScanLimit = fullScanLimit;
  }

  createPicker(endpoints: readonly EndpointLoad[]): Picker {
    if (endpoints.length === 0) return EMPTY_PICKER;
    const snapshot = Object.freeze(endpoints.slice());
    return endpoints.length <= this.fullScanLimit
      ? new FullScanPicker(snapshot, this.randomInt)
      : new TwoChoicesPicker(snapshot, this.randomInt);
  }
}
