// The agent-wide budget of buffered request bytes (what client connections delivered and the relay has not passed on),
// and the overload it declares past it: new streams are refused, new connections wait unread, and no connection
// returns window on receive, until the bytes held fall back below the resume mark.

import type { BufferAccount } from '../http2/connection-options.ts';
import type { Clock } from '../vocabulary/clock.ts';

export type BufferBudgetState = { state: 'within' } | { state: 'exhausted'; since: number };

export interface BufferBudgetEvents {
  /** The held bytes passed the limit (one call per episode: log it once). */
  onExhausted(heldBytes: number, limitBytes: number): void;
  /** They fell below the resume mark again after `durationMs`. */
  onRelieved(heldBytes: number, durationMs: number): void;
}

/**
 * Overload ends below this share of the limit, not at it: bytes come and go by the frame, and a budget that flipped
 * at one mark would refuse and admit streams turn by turn.
 */
const RESUME_SHARE = 0.75;

export class BufferBudget implements BufferAccount {
  state: BufferBudgetState = { state: 'within' };
  private heldBytes = 0;
  readonly limitBytes: number;
  private readonly resumeBelow: number;
  private readonly clock: Clock;
  private readonly events: BufferBudgetEvents;
  /** Run once when the overload ends (the listener's unread connections). */
  private waiting: Array<() => void> = [];

  constructor(limitBytes: number, clock: Clock, events: BufferBudgetEvents) {
    this.limitBytes = limitBytes;
    this.resumeBelow = Math.floor(limitBytes * RESUME_SHARE);
    this.clock = clock;
    this.events = events;
  }

  get held(): number {
    return this.heldBytes;
  }

  get exhausted(): boolean {
    return this.state.state === 'exhausted';
  }

  add(bytes: number): void {
    this.heldBytes += bytes;
    if (this.state.state === 'within') {
      if (this.heldBytes > this.limitBytes) this.transition({ state: 'exhausted', since: this.clock.now() });
    } else if (this.heldBytes < this.resumeBelow) {
      this.transition({ state: 'within' });
    }
  }

  /** Runs `callback` once the budget is within again (at once when it is). */
  whenWithin(callback: () => void): void {
    if (this.state.state === 'within') callback();
    else this.waiting.push(callback);
  }

  private transition(next: BufferBudgetState): void {
    const previous = this.state;
    if (previous.state === next.state) throw new Error(`buffer budget: already ${next.state}`);
    this.state = next;
    if (next.state === 'exhausted') {
      this.events.onExhausted(this.heldBytes, this.limitBytes);
      return;
    }
    const since = previous.state === 'exhausted' ? previous.since : this.clock.now();
    this.events.onRelieved(this.heldBytes, this.clock.now() - since);
    const waiting = this.waiting;
    this.waiting = [];
    for (const callback of waiting) callback();
  }
}
