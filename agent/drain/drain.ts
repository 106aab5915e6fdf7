// Draining whatever serves connections — the agent on shutdown or upgrade, an endpoint's upstream pool when the
// endpoint leaves — as one explicit sequence with a deadline: stop taking new work, ask every connection to finish,
// wait for what is in flight, close what is left.

import type { Clock } from '../vocabulary/clock.ts';

/**
 * serving: nothing asked yet.
 * stopping: not ready any more; new work is being refused (listeners close, a pool stops handing out streams).
 * finishing: every connection was asked to finish (HTTP/2: GOAWAY(2^31-1) and a PING, then the final GOAWAY once the
 *   PING returns; see Http2Connection.shutdown); in-flight streams run to their end.
 * drained: nothing is open any more: everything finished (`outcome: 'finished'`), or the deadline came
 *   (`'deadline'`) or someone stopped waiting (`'forced'`) and what was left got closed (`left` says how much).
 */
export type DrainOutcome = 'finished' | 'deadline' | 'forced';

export type DrainState =
  | { state: 'serving' }
  | { state: 'stopping'; since: number; reason: string }
  | { state: 'finishing'; since: number; reason: string }
  | { state: 'drained'; since: number; reason: string; outcome: DrainOutcome; left: number };

const legal: Record<DrainState['state'], ReadonlyArray<DrainState['state']>> = {
  serving: ['stopping'],
  stopping: ['finishing', 'drained'],
  finishing: ['drained'],
  drained: [],
};

/** What a drain works on: the agent (readiness, listener, client connections) or one endpoint's pool. */
export interface DrainTarget {
  /** Turn not ready and refuse new work. Resolves once nothing new can arrive (e.g. every listening socket closed). */
  stopAccepting(): void | Promise<void>;
  /** Ask every open connection to finish gracefully: no new streams, in-flight ones run to their end. */
  finishConnections(): void;
  /** Connections (or sockets) still open. */
  openCount(): number;
  /** Abrupt close of whatever is still open: the deadline passed, or the drain was forced. */
  closeRemaining(): void;
}

export interface DrainObserver {
  onDrainStateChange(previous: DrainState, next: DrainState): void;
}

export interface DrainOptions {
  clock: Clock;
  /** How long in-flight work may take once the drain began; Infinity waits for as long as it takes. */
  deadlineMs: number;
  observer?: DrainObserver;
}

export class Drain {
  state: DrainState = { state: 'serving' };
  private readonly target: DrainTarget;
  private readonly options: DrainOptions;
  private timer: unknown = null;
  private done: Promise<DrainState> | null = null;
  private resolveDone: ((state: DrainState) => void) | null = null;

  constructor(target: DrainTarget, options: DrainOptions) {
    this.target = target;
    this.options = options;
  }

  /** Whether the drain has begun (the target must take no new work). */
  get started(): boolean {
    return this.state.state !== 'serving';
  }

  /**
   * Runs the sequence; resolves with the final state once nothing is open. Calling it again returns the same
   * promise: one drain per target.
   */
  start(reason: string): Promise<DrainState> {
    if (this.done !== null) return this.done;
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve;
    });
    const clock = this.options.clock;
    const since = clock.now();
    this.transition({ state: 'stopping', since, reason });
    if (Number.isFinite(this.options.deadlineMs)) {
      this.timer = clock.setTimeout(() => this.closeRemaining('deadline'), Math.max(0, this.options.deadlineMs));
    }
    const stopped = this.target.stopAccepting();
    if (stopped instanceof Promise) {
      // Connections keep finishing while the listening sockets close; they are asked to finish right away.
      stopped.catch(() => {});
    }
    if (this.state.state === 'stopping') {
      this.transition({ state: 'finishing', since: clock.now(), reason });
      this.target.finishConnections();
    }
    this.check();
    return this.done;
  }

  /** Something the target held closed: the drain ends when it was the last. */
  check(): void {
    if (this.state.state !== 'finishing' || this.target.openCount() > 0) return;
    this.finish('finished', 0);
  }

  /** Stop waiting: close what is left now (a second signal, or the deadline). Starts the drain if needed. */
  force(reason: string): Promise<DrainState> {
    const done = this.start(reason);
    this.closeRemaining('forced');
    return done;
  }

  private closeRemaining(outcome: 'deadline' | 'forced'): void {
    if (this.state.state === 'drained' || this.state.state === 'serving') return;
    const left = this.target.openCount();
    this.finish(outcome, left);
    this.target.closeRemaining();
  }

  private finish(outcome: DrainOutcome, left: number): void {
    if (this.state.state === 'serving' || this.state.state === 'drained') return;
    if (this.timer !== null) this.options.clock.clearTimeout(this.timer);
    this.timer = null;
    const next: DrainState = { state: 'drained', since: this.options.clock.now(), reason: this.state.reason, outcome, left };
    this.transition(next);
    this.resolveDone?.(next);
  }

  private transition(next: DrainState): void {
    const previous = this.state;
    if (!legal[previous.state].includes(next.state)) throw new Error(`drain: illegal transition ${previous.state} → ${next.state}`);
    this.state = next;
    this.options.observer?.onDrainStateChange(previous, next);
  }
}
