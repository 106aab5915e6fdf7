// When the interception manager runs a pass: requests coalesced into one, one pass at a time, the periodic reconcile, retries.

import type { Clock } from '../vocabulary/clock.ts';
import type { InterceptionStateName, PassKind } from './intercept-metrics.ts';

/** Long enough to gather the burst of changes one informer event or one CNI call causes, short against a pod's start. */
export const DEFAULT_COALESCE_MS = 5;

export interface PassSchedulerOptions {
  timers: Clock;
  /** Changes within this time go to the kernel in one pass. */
  coalesceMs: number;
  reconcileIntervalMs: number;
  /** The manager's state now: a requested pass starts only when it is ready, a retry only when it is still failed. */
  state: () => InterceptionStateName;
  /** Starts a pass (the manager's launch, which takes the pending pass first). */
  launch: (kind: PassKind) => void;
}

export class PassScheduler {
  private readonly options: PassSchedulerOptions;
  /** The pass asked for while one was running or being coalesced. */
  private pending: PassKind | null = null;
  private wakeTimer: unknown = null;
  private reconcileTimer: unknown = null;
  private retryTimer: unknown = null;

  constructor(options: PassSchedulerOptions) {
    this.options = options;
  }

  /** Asks for a pass; passes never overlap, and requests made meanwhile become one pass after the current one. */
  request(kind: PassKind): void {
    if (this.pending !== 'reconcile') this.pending = kind;
    if (this.options.state() !== 'ready' || this.wakeTimer !== null) return;
    this.wakeTimer = this.options.timers.setTimeout(() => {
      this.wakeTimer = null;
      if (this.options.state() === 'ready' && this.pending !== null) this.options.launch(this.pending);
    }, this.options.coalesceMs);
  }

  /** A pass starts: whatever was pending is part of it. */
  takePending(): void {
    this.pending = null;
  }

  /** After a successful pass: one asked for while it ran comes next. */
  requestPending(): void {
    if (this.pending !== null) this.request(this.pending);
  }

  /** The next periodic reconcile, `reconcileIntervalMs` from now (replacing one already armed). */
  armReconcile(): void {
    const { timers, reconcileIntervalMs } = this.options;
    if (this.reconcileTimer !== null) timers.clearTimeout(this.reconcileTimer);
    this.reconcileTimer = timers.setTimeout(() => {
      this.reconcileTimer = null;
      this.request('reconcile');
    }, reconcileIntervalMs);
  }

  /** After a failed pass: the pass `kind()` names then, in `retryInMs`, unless the state has moved on. */
  retry(retryInMs: number, kind: () => PassKind): void {
    this.retryTimer = this.options.timers.setTimeout(() => {
      this.retryTimer = null;
      if (this.options.state() === 'failed') this.options.launch(kind());
    }, retryInMs);
  }

  /** No more passes: every timer is cleared. */
  cancel(): void {
    for (const timer of [this.wakeTimer, this.reconcileTimer, this.retryTimer]) {
      if (timer !== null) this.options.timers.clearTimeout(timer);
    }
    this.wakeTimer = this.reconcileTimer = this.retryTimer = null;
  }
}
