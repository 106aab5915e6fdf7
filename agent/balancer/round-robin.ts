// Round-robin: each eligible endpoint in turn; the simplest even spread when endpoints are alike.

import type { EndpointLoad } from './endpoint-load.ts';
import { type BalancingPolicy, EMPTY_PICKER, fastRandomInt, type Picker, type PolicyDeps } from './picker.ts';
import type { BalancerName } from '../vocabulary/balancer-names.ts';

class RoundRobinPicker implements Picker {
  private readonly endpoints: readonly EndpointLoad[];
  private next: number;

  constructor(endpoints: readonly EndpointLoad[], start: number) {
    this.endpoints = endpoints;
    this.next = start;
  }

  pick(): EndpointLoad | null {
    const endpoint = this.endpoints[this.next];
    if (++this.next === this.endpoints.length) this.next = 0;
    return endpoint;
  }
}

export class RoundRobinPolicy implements BalancingPolicy {
  readonly name: BalancerName = 'round-robin';
  private readonly randomInt: () => number;

  constructor(deps: Pick<PolicyDeps, 'randomInt'> = { randomInt: fastRandomInt() }) {
    this.randomInt = deps.randomInt;
  }

  createPicker(endpoints: readonly EndpointLoad[]): Picker {
    if (endpoints.length === 0) return EMPTY_PICKER;
    // A random start per picker: many agents (and every endpoint change) would otherwise all begin at endpoint 0.
    const start = this.randomInt() % endpoints.length;
    return new RoundRobinPicker(Object.freeze(endpoints.slice()), start);
  }
}
