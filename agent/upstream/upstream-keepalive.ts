// HTTP/2 PING keepalive of one upstream connection: while streams are open and nothing has arrived for a moment, a
// PING; nothing back in time means the endpoint is frozen or gone, and the connection is declared lost. Paced so that
// a grpc-go or gRPC C-core server never answers GOAWAY(ENHANCE_YOUR_CALM, "too_many_pings") (see docs/architecture.md,
// Upstream connections).

import type { Clock } from '../vocabulary/clock.ts';

export interface KeepalivePolicy {
  /** Silence (nothing received) with streams open before a PING goes out. */
  intervalMs: number;
  /** How long a PING waits for any byte back before the connection is lost. */
  timeoutMs: number;
}

/**
 * A PING after 1 s of silence, lost 2 s later: RPCs in flight on a frozen endpoint end within about 3 s of its last
 * frame, well inside the 5 s an operator would grant, while a busy connection (frames every few milliseconds) never
 * pings at all. Pings on idle connections are left out: servers tolerate one every 2 hours at most there.
 */
export const DEFAULT_KEEPALIVE: KeepalivePolicy = { intervalMs: 1000, timeoutMs: 2000 };

/**
 * grpc-go's and C-core's default enforcement: a PING less than 5 minutes after the previous one is a "strike", unless
 * the server wrote HEADERS or DATA since (that resets the strikes and makes the next PING free); the third strike
 * closes the connection. We risk at most one strike, and space the others 5 minutes and a margin apart.
 */
const PEER_MIN_PING_INTERVAL_MS = 5 * 60_000 + 30_000;
const STRIKES_RISKED_AT_MOST = 1;

export type KeepaliveState =
  /** No stream open: nothing to watch. The pool's hand-out wakes it; a tick now and then notices a stream opened
   *  without one. */
  | { state: 'idle' }
  /** Streams open: silence is counted from the last byte received, or from `since` if that is later. */
  | { state: 'watching'; since: number }
  /** A PING is out since `sentAt`; any byte received before the timeout proves the endpoint alive. */
  | { state: 'pinging'; sentAt: number }
  | { state: 'stopped' };

const legal: Record<KeepaliveState['state'], ReadonlyArray<KeepaliveState['state']>> = {
  idle: ['watching', 'stopped'],
  watching: ['idle', 'pinging', 'stopped'],
  pinging: ['watching', 'stopped'],
  stopped: [],
};

/** What the keepalive is given of its connection. */
export interface KeepaliveLink {
  hasOpenStreams(): boolean;
  /** Sends a PING; `onAck` runs when the peer acknowledges it. */
  sendPing(onAck: () => void): void;
  /** Whether the peer sent HEADERS or DATA since the last call (which forgets it). */
  takeStreamFrameSeen(): boolean;
  /** Nothing came back in time: close the connection as lost. */
  lost(reason: string): void;
}

export class UpstreamKeepalive {
  state: KeepaliveState = { state: 'idle' };
  private readonly link: KeepaliveLink;
  private readonly clock: Clock;
  private readonly policy: KeepalivePolicy;
  private timer: unknown = null;
  private lastReceivedAt: number;
  private lastPingAt: number | null = null;
  private ackOutstanding = false;
  private strikesRisked = 0;
  private readonly onAck = (): void => this.acknowledged();

  constructor(link: KeepaliveLink, clock: Clock, policy: KeepalivePolicy = DEFAULT_KEEPALIVE) {
    this.link = link;
    this.clock = clock;
    this.policy = policy;
    this.lastReceivedAt = clock.now();
  }

  /** The connection is ready (and its first streams may be open already): start watching. */
  start(): void {
    if (this.state.state === 'stopped' || this.timer !== null) return;
    this.lastReceivedAt = this.clock.now();
    this.tick();
  }

  /** A stream is about to open (the pool hands the connection out): an idle keepalive starts watching now. */
  streamOpening(): void {
    if (this.state.state !== 'idle' || this.timer === null) return;
    this.transition({ state: 'watching', since: this.clock.now() });
    this.arm(this.policy.intervalMs);
  }

  /** Bytes arrived from the endpoint (called per socket read: a timestamp, nothing more). */
  received(): void {
    this.lastReceivedAt = this.clock.now();
  }

  /** The connection closed: no timer remains. */
  stop(): void {
    this.disarm();
    if (this.state.state !== 'stopped') this.transition({ state: 'stopped' });
  }

  private tick(): void {
    this.timer = null;
    const now = this.clock.now();
    const current = this.state;
    if (current.state === 'stopped') return;
    if (current.state === 'pinging') {
      if (this.lastReceivedAt > current.sentAt) {
        // Alive, though its ACK is late: watch again, the ACK still resets the strike count when it comes.
        this.transition({ state: 'watching', since: now });
        return this.tick();
      }
      this.stop();
      this.link.lost(`endpoint silent: no answer to a PING within ${this.policy.timeoutMs} ms, nothing received for ${Math.round(now - this.lastReceivedAt)} ms`);
      return;
    }
    if (!this.link.hasOpenStreams()) {
      if (current.state === 'watching') this.transition({ state: 'idle' });
      return this.arm(this.policy.intervalMs);
    }
    if (current.state === 'idle') {
      // A stream opened since the last tick: give its response a full interval before asking.
      this.transition({ state: 'watching', since: now });
      return this.arm(this.policy.intervalMs);
    }
    const silentSince = Math.max(this.lastReceivedAt, current.since);
    const due = silentSince + this.policy.intervalMs;
    if (now < due) return this.arm(due - now);
    const free = this.lastPingAt === null || (!this.ackOutstanding && this.link.takeStreamFrameSeen());
    const spaced = this.lastPingAt !== null && now - this.lastPingAt >= PEER_MIN_PING_INTERVAL_MS;
    if (!free && !spaced && this.strikesRisked >= STRIKES_RISKED_AT_MOST) {
      // Out of pings the endpoint would tolerate: wait for its next HEADERS/DATA or for the spacing.
      return this.arm(this.policy.intervalMs);
    }
    if (free) this.strikesRisked = 0;
    else if (!spaced) this.strikesRisked++;
    this.lastPingAt = now;
    this.ackOutstanding = true;
    this.transition({ state: 'pinging', sentAt: now });
    this.link.sendPing(this.onAck);
    this.arm(this.policy.timeoutMs);
  }

  private acknowledged(): void {
    this.ackOutstanding = false;
    // Frames that crossed the PING may have been written before the endpoint read it: only later ones make the next
    // PING free.
    this.link.takeStreamFrameSeen();
    if (this.state.state !== 'pinging') return;
    this.transition({ state: 'watching', since: this.clock.now() });
    this.disarm();
    this.tick();
  }

  private arm(ms: number): void {
    this.disarm();
    this.timer = this.clock.setTimeout(() => this.tick(), ms);
  }

  private disarm(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  private transition(next: KeepaliveState): void {
    const previous = this.state.state;
    if (!legal[previous].includes(next.state)) throw new Error(`upstream keepalive: illegal transition ${previous} → ${next.state}`);
    this.state = next;
  }
}
