// A token bucket of stream resets per upstream connection: backends close connections on which too many streams are
// reset too fast (rapid-reset protection), so past this budget a cancelled request is left to finish and its
// response discarded instead of being reset.

import type { Clock } from '../vocabulary/clock.ts';

export class ResetBudget {
  private tokens: number;
  private lastRefill: number;
  private readonly burst: number;
  private readonly perSecond: number;

  constructor(burst: number, perSecond: number, clock: Clock) {
    this.burst = burst;
    this.perSecond = perSecond;
    this.tokens = burst;
    this.lastRefill = clock.now();
  }

  /** The connection closed: nothing is left to reset on it. */
  dispose(): void {}

  /** Takes one reset from the budget; false when the budget is spent. */
  take(now: number): boolean {
    const elapsed = now - this.lastRefill;
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.perSecond) / 1000);
      this.lastRefill = now;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
