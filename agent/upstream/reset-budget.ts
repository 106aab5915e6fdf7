// A token bucket of stream resets per upstream connection, and the resets that wait for it: backends close connections
// on which too many streams are reset too fast (rapid-reset protection), so past the budget a cancelled stream is queued
// and reset, in order, as the bucket refills; meanwhile its response is read and discarded.

import { ErrorCode } from '../http2/constants.ts';
import type { Stream } from '../http2/stream.ts';
import type { Clock } from '../vocabulary/clock.ts';

/** The connection a deferred reset goes out on (the real one is the UpstreamConnection that owns the budget). */
export interface ResetConnection {
  readonly state: { readonly state: string };
  readonly http2: {
    resetStream(stream: Stream, code: number): void;
    readonly activeStreamCount: number;
  };
  /** A stream ended: a request waiting for room on this connection may go now. */
  onStreamEnded(): void;
  /** No new streams; the open ones finish. */
  drain(): void;
  /** Abrupt close: the endpoint cancels every stream still open on it. */
  close(): void;
}

/**
 * idle: nothing waits; pacing: resets wait and a timer is armed for the next token; disposed: the connection closed,
 * which ended every stream the queue held.
 */
export type BacklogState = { state: 'idle' } | { state: 'pacing'; timer: unknown } | { state: 'disposed' };

/** How many seconds of the rate a backlog may hold before its connection is drained (see `defer`). */
const BACKLOG_SECONDS = 60;
/** The queue's array is compacted once this many sent entries sit before its head. */
const COMPACT_AFTER = 1024;

export class ResetBudget {
  private tokens: number;
  private lastRefill: number;
  private readonly burst: number;
  private readonly perSecond: number;
  private readonly clock: Clock;
  private readonly maxBacklog: number;
  private backlog: BacklogState = { state: 'idle' };
  /** Streams waiting for a reset, oldest first, from `head` on. */
  private waiting: Stream[] = [];
  private head = 0;
  private connection: ResetConnection | null = null;

  constructor(burst: number, perSecond: number, clock: Clock, maxBacklog = Math.ceil(perSecond * BACKLOG_SECONDS)) {
    if (!(burst >= 1) || !(perSecond > 0)) throw new RangeError(`reset budget: burst ${burst} and rate ${perSecond}/s must be positive`);
    this.burst = burst;
    this.perSecond = perSecond;
    this.tokens = burst;
    this.clock = clock;
    this.lastRefill = clock.now();
    this.maxBacklog = Math.max(1, maxBacklog);
  }

  get state(): BacklogState['state'] {
    return this.backlog.state;
  }

  /** Streams queued for a reset (some may have ended meanwhile; they are skipped when their turn comes). */
  get queued(): number {
    return this.waiting.length - this.head;
  }

  /** The connection closed: its streams are gone, and so are the resets that waited for them. */
  dispose(): void {
    if (this.backlog.state === 'pacing') this.clock.clearTimeout(this.backlog.timer);
    this.backlog = { state: 'disposed' };
    this.waiting = [];
    this.head = 0;
    this.connection = null;
  }

  /**
   * Takes one reset from the budget for a reset to send now; false when the budget is spent, when earlier resets wait
   * for it (they go first: a later cancel must not overtake them), or when the connection is gone.
   */
  take(now: number): boolean {
    if (this.backlog.state !== 'idle') return false;
    return this.takeToken(now);
  }

  /**
   * Queues a reset that `take` refused: RST_STREAM(CANCEL) goes out on `connection` when the budget allows, unless the
   * stream ended meanwhile.
   *
   * Why not drain (GOAWAY) and replace every connection with a backlog, whose close would cancel its orphans at once?
   * Closing may only happen once the connection's other streams have ended, and a long-lived stream may never end, so
   * the queue is needed anyway; a new connection costs the endpoint a handshake and discards what this one learned
   * (windows, header tables); and a client that cancels in bulk now and then would churn connections. The queue, at
   * 20/s after a burst of 100, clears a backlog of 1000 in 45 s. Only a backlog longer than `BACKLOG_SECONDS` of the
   * rate drains the connection: that bounds the queue (a draining connection gains no streams, so none can join it)
   * and the time its orphans hold the endpoint, since the connection is closed as soon as only orphans remain on it.
   */
  defer(stream: Stream, connection: ResetConnection): void {
    if (this.backlog.state === 'disposed' || stream.state === 'closed') return;
    this.connection = connection;
    this.waiting.push(stream);
    if (this.queued > this.maxBacklog && connection.state.state === 'ready') {
      this.dropEnded();
      if (this.queued > this.maxBacklog) connection.drain();
    }
    if (this.backlog.state === 'idle') this.sendDue();
  }

  /** Sends the waiting resets the budget allows now, closes a draining connection left with orphans only, re-arms. */
  private sendDue(): void {
    const connection = this.connection;
    if (connection === null || this.backlog.state === 'disposed') return;
    this.backlog = { state: 'idle' };
    const now = this.clock.now();
    let sent = 0;
    while (this.head < this.waiting.length) {
      const stream = this.waiting[this.head];
      if (stream.state !== 'closed') {
        if (!this.takeToken(now)) break;
        connection.http2.resetStream(stream, ErrorCode.CANCEL);
        sent++;
      }
      this.head++;
    }
    this.compact();
    if (this.onlyOrphansOnDraining(connection)) {
      // Closing the socket cancels every orphan on the endpoint at once, without a reset for its protection to count;
      // the connection's onClosed disposes of this budget.
      connection.close();
      this.dispose();
      return;
    }
    if (sent > 0) connection.onStreamEnded();
    if (this.queued === 0) return;
    const wait = Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / this.perSecond));
    this.backlog = { state: 'pacing', timer: this.clock.setTimeout(() => this.sendDue(), wait) };
  }

  /** Draining, and every stream still open on the connection is one that waits for its reset. */
  private onlyOrphansOnDraining(connection: ResetConnection): boolean {
    if (connection.state.state !== 'draining' || this.queued === 0) return false;
    this.dropEnded();
    return this.queued > 0 && connection.http2.activeStreamCount <= this.queued;
  }

  private takeToken(now: number): boolean {
    const elapsed = now - this.lastRefill;
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.perSecond) / 1000);
      this.lastRefill = now;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Forgets queued streams that ended by themselves (response complete, reset by the endpoint). */
  private dropEnded(): void {
    const open: Stream[] = [];
    for (let i = this.head; i < this.waiting.length; i++) if (this.waiting[i].state !== 'closed') open.push(this.waiting[i]);
    this.waiting = open;
    this.head = 0;
  }

  private compact(): void {
    if (this.head === this.waiting.length) {
      this.waiting = [];
      this.head = 0;
    } else if (this.head > COMPACT_AFTER && this.head * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.head);
      this.head = 0;
    }
  }
}
