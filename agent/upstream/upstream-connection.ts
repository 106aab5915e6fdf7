// One HTTP/2 connection to an endpoint, with an explicit lifecycle: connecting → ready → draining → closed. Ready only
// once the endpoint's SETTINGS arrived; kept honest by a PING keepalive, TCP keepalive and user timeout, and a
// deadline on draining after the endpoint's GOAWAY.

import net from 'node:net';
import type { Http2Connection } from '../http2/connection.ts';
import type { Http2Handler } from '../http2/handler.ts';
import { connectSocket } from '../http2/socket-transport.ts';
import type { Clock } from '../vocabulary/clock.ts';
import { ResetBudget } from './reset-budget.ts';
import { setTcpUserTimeout } from './tcp-user-timeout.ts';
import { DEFAULT_KEEPALIVE, type KeepalivePolicy, UpstreamKeepalive } from './upstream-keepalive.ts';

/** Resets per connection: a burst and a rate below what Node (nghttp2: 1000, 33/s) and grpc-go tolerate. */
const RESET_BURST = 100;
const RESETS_PER_SECOND = 20;

/**
 * TCP keepalive probes after 10 s without traffic (libuv then probes every second, 10 times): an idle connection to
 * a node that vanished without a reset is gone within about 20 s. A frozen process's kernel still answers them; the
 * PING keepalive covers that while streams are open.
 */
const TCP_KEEPALIVE_IDLE_MS = 10_000;

/**
 * Data we sent that stays unacknowledged this long drops the connection (the kernel's own default is ~15 min of
 * retransmissions): a connection to a node that vanished while we were writing to it, with no stream left for the
 * PING keepalive to watch, is not handed out for minutes. 20 s, as grpc-go sets it (its keepalive timeout); a peer's
 * kernel acknowledges even when its process is stalled or not reading, so a live endpoint never trips it.
 */
export const TCP_USER_TIMEOUT_MS = 20_000;

/**
 * How long a connection may keep streams open after the endpoint's GOAWAY. Generous, because a server that GOAWAYs
 * on a timer (grpc-go's MaxConnectionAge, infinite grace by default) lets long-lived streams finish; but bounded, so
 * that a stream nobody ends cannot hold a connection (and its memory) forever. The pool's own drain of a removed
 * endpoint has no deadline (see upstream-pool.ts); this one applies only once the endpoint itself said GOAWAY.
 */
export const PEER_GOAWAY_DRAIN_DEADLINE_MS = 10 * 60_000;

export type UpstreamState =
  | { state: 'connecting'; since: number }
  | { state: 'ready'; since: number }
  | { state: 'draining'; since: number }
  | { state: 'closed'; since: number; error: string | null };

const legal: Record<UpstreamState['state'], ReadonlyArray<UpstreamState['state']>> = {
  connecting: ['ready', 'closed'],
  ready: ['draining', 'closed'],
  draining: ['closed'],
  closed: [],
};

/** The HTTP/2 connection to an endpoint: its context is its UpstreamConnection, its streams carry the user's `S`. */
export type UpstreamHttp2<S> = Http2Connection<UpstreamConnection<S>, S>;
/** The handler of upstream connections (the relay's): one object for every endpoint's connections. */
export type UpstreamHttp2Handler<S> = Http2Handler<UpstreamConnection<S>, S>;

/** What the connection tells its owner (the pool). */
export interface UpstreamConnectionOwner<S = unknown> {
  onUpstreamStateChange(connection: UpstreamConnection<S>, previous: UpstreamState['state']): void;
  /** A stream on `connection` ended: there may be room for a waiting request. */
  onUpstreamStreamEnded(connection: UpstreamConnection<S>): void;
}

export interface UpstreamConnectOptions {
  host: string;
  port: number;
  connectTimeoutMs: number;
  clock: Clock;
  /** The PING keepalive's figures; DEFAULT_KEEPALIVE (not an agent setting yet: the defaults suit in-cluster peers). */
  keepalive?: KeepalivePolicy;
}

/** `S`: what the pool's user keeps in each stream's context (the relay: its exchange). */
export class UpstreamConnection<S = unknown> {
  state: UpstreamState;
  readonly http2: UpstreamHttp2<S>;
  readonly resetBudget: ResetBudget;
  /** Why the socket failed, for the message a client sees. */
  closeReason: string | null = null;
  /**
   * Set by the relay's handler on every HEADERS or DATA from the endpoint (a field, not a call: it runs per frame);
   * the keepalive reads and clears it.
   */
  streamFrameSeen = false;
  readonly keepalive: UpstreamKeepalive;
  private readonly socket: net.Socket;
  private readonly owner: UpstreamConnectionOwner<S>;
  private readonly clock: Clock;
  private readonly now: () => number;
  /** Why we gave the connection up (keepalive, drain deadline): wins over the transport's own error. */
  private abandonedBecause: string | null = null;
  private drainDeadline: unknown = null;

  constructor(owner: UpstreamConnectionOwner<S>, handler: UpstreamHttp2Handler<S>, options: UpstreamConnectOptions) {
    this.owner = owner;
    this.clock = options.clock;
    this.now = () => options.clock.now();
    this.state = { state: 'connecting', since: this.now() };
    this.resetBudget = new ResetBudget(RESET_BURST, RESETS_PER_SECOND, options.clock);
    this.keepalive = new UpstreamKeepalive(
      {
        hasOpenStreams: () => this.http2.activeStreamCount > 0,
        sendPing: (onAck) => this.http2.ping(onAck),
        takeStreamFrameSeen: () => {
          const seen = this.streamFrameSeen;
          this.streamFrameSeen = false;
          return seen;
        },
        lost: (reason) => this.abandon(reason),
      },
      options.clock,
      options.keepalive ?? DEFAULT_KEEPALIVE,
    );
    const connectTimeoutMs = options.connectTimeoutMs;
    this.socket = net.connect({ host: options.host, port: options.port, keepAlive: true, keepAliveInitialDelay: TCP_KEEPALIVE_IDLE_MS });
    this.socket.setTimeout(connectTimeoutMs);
    this.socket.once('timeout', () => {
      // A frozen process's kernel still accepts the TCP connection: the handshake is part of connecting.
      const phase = this.socket.connecting ? 'connect timeout' : 'no HTTP/2 SETTINGS from the endpoint: handshake timeout';
      this.socket.destroy(new Error(`${phase} after ${connectTimeoutMs} ms`));
    });
    this.socket.once('connect', () => {
      setTcpUserTimeout(this.socket, TCP_USER_TIMEOUT_MS);
      // What is left of the connect timeout covers the endpoint's SETTINGS (the socket timer measures inactivity,
      // and until they come nothing arrives).
      this.socket.setTimeout(Math.max(1, connectTimeoutMs - (this.now() - this.state.since)));
    });
    this.socket.once('error', (error: Error) => {
      if (this.state.state !== 'closed') this.closeReason = error.message;
    });
    this.socket.on('data', () => this.keepalive.received());
    // connectSocket wires data, drain and close to the HTTP/2 connection; the relay's handler forwards
    // connection-level events (GOAWAY, close) back to us through `http2.context`.
    this.http2 = connectSocket(this.socket, handler, { creditConnectionOnReceive: true });
    this.http2.context = this;
  }

  get isConnecting(): boolean {
    return this.state.state === 'connecting';
  }

  /** Ready and below the peer's stream limit, keeping `headroom` streams in reserve. */
  hasCapacity(headroom: number): boolean {
    if (this.state.state !== 'ready' || !this.http2.canOpenStream()) return false;
    const limit = this.http2.remoteSettings.maxConcurrentStreams;
    if (this.http2.activeStreamCount >= limit - Math.min(headroom, limit >>> 2)) return false;
    // The pool hands this connection out now: a stream is about to open, and its silence counts from here.
    this.keepalive.streamOpening();
    return true;
  }

  /** No new streams; open ones finish, then the connection closes (GOAWAY to the endpoint). */
  drain(): void {
    if (this.state.state === 'connecting') {
      this.socket.destroy();
      return;
    }
    if (this.state.state !== 'ready') return;
    this.transition({ state: 'draining', since: this.now() });
    this.http2.shutdown();
  }

  /** The endpoint's first SETTINGS were applied (called by the relay's upstream handler): the connection is ready. */
  onPeerSettings(): void {
    if (this.state.state !== 'connecting') return;
    this.socket.setTimeout(0);
    this.transition({ state: 'ready', since: this.now() });
    this.keepalive.start();
  }

  /** Abrupt close (a drain's deadline passed): open streams are reset. */
  close(): void {
    this.http2.destroy();
    this.socket.destroy();
  }

  /** A stream ended (closed or reset); called by the relay's upstream handler. */
  onStreamEnded(): void {
    this.owner.onUpstreamStreamEnded(this);
  }

  /** The endpoint refused new streams (GOAWAY) or ran out of stream ids. */
  onPeerGoaway(): void {
    if (this.state.state === 'ready') this.transition({ state: 'draining', since: this.now() });
    if (this.state.state !== 'draining' || this.drainDeadline !== null) return;
    this.drainDeadline = this.clock.setTimeout(() => {
      this.drainDeadline = null;
      const open = this.http2.activeStreamCount;
      this.abandon(`${open} stream(s) still open ${PEER_GOAWAY_DRAIN_DEADLINE_MS / 1000} s after the endpoint's GOAWAY`);
    }, PEER_GOAWAY_DRAIN_DEADLINE_MS);
  }

  /** The HTTP/2 connection ended (called by the relay's upstream handler). */
  onClosed(error: string | null): void {
    if (this.state.state === 'closed') return;
    this.keepalive.stop();
    if (this.drainDeadline !== null) this.clock.clearTimeout(this.drainDeadline);
    this.drainDeadline = null;
    this.transition({ state: 'closed', since: this.now(), error: this.abandonedBecause ?? error ?? this.closeReason });
    this.resetBudget.dispose();
    this.socket.destroy();
  }

  /**
   * Gives the connection up as lost: the socket is destroyed, so its streams end the way they do when an endpoint
   * vanishes (the relay answers UNAVAILABLE, ML_UPSTREAM_CONNECTION_LOST).
   */
  private abandon(reason: string): void {
    if (this.state.state === 'closed') return;
    this.abandonedBecause = reason;
    this.socket.destroy(new Error(reason));
  }

  private transition(next: UpstreamState): void {
    const previous = this.state.state;
    if (!legal[previous].includes(next.state)) throw new Error(`upstream connection: illegal transition ${previous} → ${next.state}`);
    this.state = next;
    this.owner.onUpstreamStateChange(this, previous);
  }
}
