// The balancer contract: a policy builds immutable picker snapshots; pick() is synchronous and allocation-free.

import type { EndpointLoad, TimeCell } from './endpoint-load.ts';
import type { BalancerName } from '../vocabulary/balancer-names.ts';

/**
 * A snapshot of one service's eligible endpoints. The relay calls pick() once per request on the hot path, so it
 * does no I/O, never awaits and allocates nothing. A picker is never changed after it is built: endpoint changes
 * publish a new one, and requests that picked from the old one are not disturbed.
 */
export interface Picker {
  /** An endpoint for the next request, or null when there is none (the relay answers UNAVAILABLE). */
  pick(): EndpointLoad | null;
}

/** One balancing algorithm (grpc-js style: each in its own small file). */
export interface BalancingPolicy {
  readonly name: BalancerName;
  /** `endpoints` is non-empty and holds only eligible endpoints; the picker keeps its own copy. */
  createPicker(endpoints: readonly EndpointLoad[]): Picker;
}

/**
 * Randomness and time the policies use, injected so tests are deterministic. Both are shaped so that pick()
 * allocates nothing even where V8 does not inline a call: a double returned from (or passed to) a call that is not
 * inlined is boxed in a fresh heap number, a small integer never is, and a typed-array load is no call at all.
 */
export interface PolicyDeps {
  /** A uniform integer in [0, 2^30) (V8's small-integer range). Not Math.random: it allocates on every call. */
  randomInt(): number;
  /** Where p2c-ewma reads "now" (ns); the balancer set passes its load objects' latest-sample cell. */
  time: TimeCell;
}

/** 2^30: randomInt() draws below this. */
export const RANDOM_INT_RANGE = 0x40000000;

/** xorshift32, the state in an Int32Array (an int32 outside the small-integer range kept in an object field would
 *  be re-boxed on every draw). Fast and good enough to spread load; not for secrets. */
class Xorshift32 {
  private readonly state = new Int32Array(1);

  constructor(seed: number) {
    this.state[0] = seed | 0 || 0x9e3779b9;
  }

  /** 30 bits, so the result is always a small integer. */
  next(): number {
    const state = this.state;
    let x = state[0];
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    state[0] = x;
    return x >>> 2;
  }
}

/** A randomInt() for pickers, seeded from Math.random unless a seed is given. */
export function fastRandomInt(seed: number = Math.random() * 4294967296): () => number {
  const generator = new Xorshift32(seed);
  return () => generator.next();
}

class EmptyPicker implements Picker {
  pick(): EndpointLoad | null {
    return null;
  }
}

/** The picker of a service with no eligible endpoint. */
export const EMPTY_PICKER: Picker = Object.freeze(new EmptyPicker());
