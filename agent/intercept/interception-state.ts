// The interception manager's lifecycle: its states, the legal transitions, and the one function that makes them.

import type { ErrorCode } from '../vocabulary/errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { InterceptionStateName, InterceptObserver } from './intercept-metrics.ts';

/**
 * `installing`: the first pass (backend detection, sets, rules); `ready`: the kernel held what was desired at the
 * last pass; `applying`: a later pass (sets after a change, or the periodic reconcile); `failed`: the last pass
 * failed and a retry is scheduled (whatever was installed before keeps working); `stopped`: no more passes, and
 * every rule and set stays where it is.
 */
export type InterceptionState =
  | { state: 'idle' }
  | { state: 'installing'; since: number }
  | { state: 'ready'; since: number }
  | { state: 'applying'; pass: 'sets' | 'reconcile'; since: number }
  | { state: 'failed'; code: ErrorCode; reason: string; since: number; failures: number; retryInMs: number }
  | { state: 'stopped' };

const LEGAL: Record<InterceptionStateName, readonly InterceptionStateName[]> = {
  idle: ['installing', 'stopped'],
  installing: ['ready', 'failed', 'stopped'],
  ready: ['applying', 'stopped'],
  applying: ['ready', 'failed', 'stopped'],
  failed: ['installing', 'applying', 'stopped'],
  stopped: [],
};

/** Holds the current state; transition() rejects an illegal step, logs the step and reports it to the metrics. */
export class InterceptionLifecycle {
  private current: InterceptionState = { state: 'idle' };
  private readonly log: Logger;
  private readonly metrics: InterceptObserver | undefined;

  constructor(log: Logger, metrics: InterceptObserver | undefined) {
    this.log = log;
    this.metrics = metrics;
  }

  get state(): InterceptionState {
    return this.current;
  }

  transition(next: InterceptionState): void {
    const from = this.current;
    if (!LEGAL[from.state].includes(next.state)) throw new Error(`interception: illegal transition ${from.state} → ${next.state}`);
    this.current = next;
    this.log.debug({ from: from.state, to: next.state }, 'interception state');
    this.metrics?.stateChanged(next.state);
  }
}
