// A token bucket: a burst, then a steady rate. What a peer may do for free is counted in these (see flood-guard.ts).

export interface BucketLimit {
  /** Tokens at the start, and the most the bucket holds. */
  readonly burst: number;
  /** Tokens added per second. */
  readonly perSecond: number;
}

export class TokenBucket {
  private tokens: number;
  private lastRefill: number;
  private readonly limit: BucketLimit;

  constructor(limit: BucketLimit, now: number) {
    this.limit = limit;
    this.tokens = limit.burst;
    this.lastRefill = now;
  }

  /** Takes one token; false when none is left. */
  take(now: number): boolean {
    const elapsed = now - this.lastRefill;
    if (elapsed > 0) {
      this.tokens = Math.min(this.limit.burst, this.tokens + (elapsed * this.limit.perSecond) / 1000);
      this.lastRefill = now;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
