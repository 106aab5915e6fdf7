// Per-connection limits on what a client may make us do for nothing: streams reset or refused as soon as they open
// (rapid reset, CVE-2023-44487), PINGs and SETTINGS faster than any gRPC client sends them. Each is a token bucket on
// the connection's clock; the first one to run dry closes the connection with GOAWAY(ENHANCE_YOUR_CALM).

import type { Clock } from '../vocabulary/clock.ts';
import { type BucketLimit, TokenBucket } from './token-bucket.ts';

export interface FloodLimits {
  /**
   * Streams the peer reset soon after opening them (see `quickResetAgeMs`), and streams we refused or reset because of
   * what the peer sent (over our concurrency limit, malformed request heads, oversized header lists, bad trailers).
   * Each may already have started a request upstream: this bounds the work a client can make us start and abandon.
   */
  readonly quickResets: BucketLimit;
  /** A peer reset counts when the stream was opened less than this long ago (between this and twice this). */
  readonly quickResetAgeMs: number;
  /** PINGs (not acknowledgements) that no WINDOW_UPDATE or header block from the peer came before since its last one. */
  readonly pings: BucketLimit;
  /** SETTINGS frames (not acknowledgements): each one is acknowledged, and one that changes the initial window walks every stream. */
  readonly settings: BucketLimit;
}

/**
 * Why these numbers. Rapid reset: a client may drop half of our 1000-stream limit of young streams at once, and any
 * number of streams older than a second (a user who leaves drops long-lived watches), then 200 a second; a flood of
 * 100k a second trips within 5 ms, so fewer than 500 abandoned requests reach the backends. grpc-js servers (nghttp2)
 * allow 1000 then 33 a second of every reset, so a client within those never trips here either.
 * PINGs: grpc-go's BDP pings follow the data we send and each comes right after a WINDOW_UPDATE (grpc-go sends one
 * first so that proxies do not take them for a flood), so they cost nothing here; keepalives (grpc-go at most one per
 * 10 s, grpc-js as configured) and C-core's BDP probes (at most 10 a second) stay far below 20 a second after a burst of 100.
 * SETTINGS: real clients send a handful per connection (grpc-go one per BDP window growth, about ten in all).
 */
export const DEFAULT_FLOOD_LIMITS: FloodLimits = Object.freeze({
  quickResets: Object.freeze({ burst: 500, perSecond: 200 }),
  quickResetAgeMs: 1000,
  pings: Object.freeze({ burst: 100, perSecond: 20 }),
  settings: Object.freeze({ burst: 100, perSecond: 10 }),
});

/** Which limit a peer ran past: the start of the GOAWAY's debug data and of the connection error's message. */
export type FloodKind = 'rapid reset' | 'PING flood' | 'SETTINGS flood';

/**
 * Which peer streams are young, without a timestamp per stream: the first peer stream id opened in the current and in
 * the previous period of `ageMs`. A stream at or above the earlier of the two opened less than 2 × ageMs ago; one
 * below both, at least ageMs ago.
 */
class YoungStreams {
  private periodStart: number;
  private currentFirstId = Number.POSITIVE_INFINITY;
  private previousFirstId = Number.POSITIVE_INFINITY;
  private readonly ageMs: number;

  constructor(ageMs: number, now: number) {
    this.ageMs = ageMs;
    this.periodStart = now;
  }

  opened(id: number, now: number): void {
    this.roll(now);
    if (this.currentFirstId === Number.POSITIVE_INFINITY) this.currentFirstId = id;
  }

  isYoung(id: number, now: number): boolean {
    this.roll(now);
    return id >= Math.min(this.previousFirstId, this.currentFirstId);
  }

  private roll(now: number): void {
    const periods = Math.floor((now - this.periodStart) / this.ageMs);
    if (periods <= 0) return;
    this.previousFirstId = periods === 1 ? this.currentFirstId : Number.POSITIVE_INFINITY;
    this.currentFirstId = Number.POSITIVE_INFINITY;
    this.periodStart += periods * this.ageMs;
  }
}

type GuardState = { state: 'watching' } | { state: 'tripped'; kind: FloodKind };

/**
 * One server connection's flood limits. Each `admit…` answers whether the frame may be processed; false means a limit
 * ran dry and `trip` was called (once: the connection closes with ENHANCE_YOUR_CALM), so the caller stops.
 */
export class FloodGuard {
  private state: GuardState = { state: 'watching' };
  private readonly clock: Clock;
  private readonly limits: FloodLimits;
  private readonly quickResets: TokenBucket;
  private readonly pings: TokenBucket;
  private readonly settings: TokenBucket;
  private readonly young: YoungStreams;
  /** The peer sent a WINDOW_UPDATE or a header block since its last PING: the next PING is part of its data flow. */
  private dataSinceLastPing = false;
  private readonly trip: (kind: FloodKind, reason: string) => void;

  constructor(clock: Clock, limits: FloodLimits, trip: (kind: FloodKind, reason: string) => void) {
    const now = clock.now();
    this.clock = clock;
    this.limits = limits;
    this.trip = trip;
    this.quickResets = new TokenBucket(limits.quickResets, now);
    this.pings = new TokenBucket(limits.pings, now);
    this.settings = new TokenBucket(limits.settings, now);
    this.young = new YoungStreams(limits.quickResetAgeMs, now);
  }

  get lifecycle(): GuardState {
    return this.state;
  }

  /** A peer stream was admitted (its request head handed to the handler). */
  streamOpened(id: number): void {
    this.young.opened(id, this.clock.now());
    this.dataSinceLastPing = true;
  }

  /** The peer sent a header block on an open stream, or a WINDOW_UPDATE: evidence of a data flow for the next PING. */
  peerSentData(): void {
    this.dataSinceLastPing = true;
  }

  /** The peer reset an open stream it had opened. Only young streams count. */
  admitPeerReset(streamId: number): boolean {
    if (this.state.state === 'tripped') return false;
    const now = this.clock.now();
    if (!this.young.isYoung(streamId, now) || this.quickResets.take(now)) return true;
    const { burst, perSecond } = this.limits.quickResets;
    return this.tripOn('rapid reset', `streams reset as soon as opened, over ${burst} then ${perSecond}/s`);
  }

  /** We are about to refuse or reset a peer's stream for what it sent. */
  admitRefusal(): boolean {
    if (this.state.state === 'tripped') return false;
    if (this.quickResets.take(this.clock.now())) return true;
    const { burst, perSecond } = this.limits.quickResets;
    return this.tripOn('rapid reset', `streams refused or reset as soon as opened, over ${burst} then ${perSecond}/s`);
  }

  admitPing(): boolean {
    if (this.state.state === 'tripped') return false;
    if (this.dataSinceLastPing) {
      this.dataSinceLastPing = false;
      return true;
    }
    if (this.pings.take(this.clock.now())) return true;
    const { burst, perSecond } = this.limits.pings;
    return this.tripOn('PING flood', `PINGs without data, over ${burst} then ${perSecond}/s`);
  }

  admitSettings(): boolean {
    if (this.state.state === 'tripped') return false;
    if (this.settings.take(this.clock.now())) return true;
    const { burst, perSecond } = this.limits.settings;
    return this.tripOn('SETTINGS flood', `SETTINGS frames, over ${burst} then ${perSecond}/s`);
  }

  private tripOn(kind: FloodKind, detail: string): false {
    this.state = { state: 'tripped', kind };
    this.trip(kind, `${kind}: ${detail}`);
    return false;
  }
}
