// One HTTP/2 connection to an endpoint, with an explicit lifecycle: connecting → ready → draining → closed.

import net from 'node:net';
import type { Http2Connection } from '../http2/connection.ts';
import type { Http2Handler } from '../http2/handler.ts';
import { connectSocket } from '../http2/socket-transport.ts';
import type { Clock } from '../vocabulary/clock.ts';
import { ResetBudget } from './reset-budget.ts';

/** Resets per connection: a burst and a rate below what Node (nghttp2: 1000, 33/s) and grpc-go tolerate. */
const RESET_BURST = 100;
const RESETS_PER_SECOND = 20;

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
}

/** `S`: what the pool's user keeps in each stream's context (the relay: its exchange). */
export class UpstreamConnection<S = unknown> {
  state: UpstreamState;
  readonly http2: UpstreamHttp2<S>;
  readonly resetBudget: ResetBudget;
  /** Why the socket failed, for the message a client sees. */
  closeReason: string | null = null;
  private readonly socket: net.Socket;
  private readonly owner: UpstreamConnectionOwner<S>;
  private readonly now: () => number;

  constructor(owner: UpstreamConnectionOwner<S>, handler: UpstreamHttp2Handler<S>, options: UpstreamConnectOptions) {
    this.owner = owner;
    this.now = () => options.clock.now();
    this.state = { state: 'connecting', since: this.now() };
    this.resetBudget = new ResetBudget(RESET_BURST, RESETS_PER_SECOND, options.clock);
    this.socket = net.connect({ host: options.host, port: options.port });
    this.socket.setTimeout(options.connectTimeoutMs);
    this.socket.once('timeout', () => this.socket.destroy(new Error(`connect timeout after ${options.connectTimeoutMs} ms`)));
    this.socket.once('connect', () => {
      this.socket.setTimeout(0);
      this.transition({ state: 'ready', since: this.now() });
    });
    this.socket.once('error', (error: Error) => {
      if (this.state.state !== 'closed') this.closeReason = error.message;
    });
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
    return this.http2.activeStreamCount < limit - Math.min(headroom, limit >>> 2);
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
  }

  /** The HTTP/2 connection ended (called by the relay's upstream handler). */
  onClosed(error: string | null): void {
    if (this.state.state === 'closed') return;
    this.transition({ state: 'closed', since: this.now(), error: error ?? this.closeReason });
    this.resetBudget.dispose();
    this.socket.destroy();
  }

  private transition(next: UpstreamState): void {
    const previous = this.state.state;
    if (!legal[previous].includes(next.state)) throw new Error(`upstream connection: illegal transition ${previous} → ${next.state}`);
    this.state = next;
    this.owner.onUpstreamStateChange(this, previous);
  }
}
