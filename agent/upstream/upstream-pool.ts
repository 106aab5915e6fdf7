// The HTTP/2 connections to one endpoint: hands out a connection with stream capacity, opens another when all are
// near the endpoint's MAX_CONCURRENT_STREAMS, backs off after connect failures, and drains when the endpoint goes.

import { Drain } from '../drain/drain.ts';
import { type BackoffPolicy, DEFAULT_BACKOFF, backoffDelay } from '../vocabulary/backoff.ts';
import type { Clock } from '../vocabulary/clock.ts';
import {
  UpstreamConnection,
  type UpstreamConnectionOwner,
  type UpstreamHttp2,
  type UpstreamHttp2Handler,
  type UpstreamState,
} from './upstream-connection.ts';

/** A request waiting for a connection; implemented by the relay's exchange record (no closure per request). */
export interface PoolWaiter<S> {
  onUpstreamReady(connection: UpstreamHttp2<S>): void;
  onUpstreamFailed(reason: string): void;
}

export type PoolState = 'active' | 'draining' | 'closed';

export interface PoolOptions {
  host: string;
  port: number;
  connectTimeoutMs: number;
  maxConnections: number;
  /** Streams kept free on a connection before another one is opened. */
  streamHeadroom: number;
  backoff?: BackoffPolicy;
  clock: Clock;
  random: () => number;
}

export interface PoolObserver<S> {
  /** `previous` is null for a connection just created (in state connecting). */
  onConnectionStateChange(pool: UpstreamPool<S>, connection: UpstreamConnection<S>, previous: UpstreamState['state'] | null): void;
}

/** `S`: what the pool's user keeps in each upstream stream's context (the relay: its exchange). */
export class UpstreamPool<S = unknown> implements UpstreamConnectionOwner<S> {
  readonly address: string;
  readonly connections: UpstreamConnection<S>[] = [];
  private waiters: PoolWaiter<S>[] = [];
  private failures = 0;
  private retryAt = 0;
  private lastFailure = '';
  private readonly options: PoolOptions;
  private readonly handler: UpstreamHttp2Handler<S>;
  private readonly observer: PoolObserver<S> | null;
  /** The endpoint's drain: waiters fail, every connection sends GOAWAY and closes once its streams finish. */
  private readonly drainer: Drain;

  constructor(address: string, handler: UpstreamHttp2Handler<S>, options: PoolOptions, observer: PoolObserver<S> | null = null) {
    this.address = address;
    this.handler = handler;
    this.options = options;
    this.observer = observer;
    this.drainer = new Drain(
      {
        stopAccepting: () => this.failWaiters('endpoint removed'),
        finishConnections: () => {
          for (const connection of [...this.connections]) connection.drain();
        },
        openCount: () => this.connections.length,
        closeRemaining: () => {
          for (const connection of [...this.connections]) connection.close();
        },
      },
      // Streams to a removed endpoint may run as long as they like (long-lived streams included).
      { clock: options.clock, deadlineMs: Number.POSITIVE_INFINITY },
    );
  }

  get state(): PoolState {
    const { state } = this.drainer.state;
    return state === 'serving' ? 'active' : state === 'drained' ? 'closed' : 'draining';
  }

  /** Whether a recent connect failure keeps this endpoint in backoff (the balancer should prefer others). */
  get inBackoff(): boolean {
    return this.failures > 0 && this.options.clock.now() < this.retryAt && !this.connections.some((c) => c.state.state === 'ready');
  }

  get failureReason(): string {
    return this.lastFailure;
  }

  /**
   * A connection that can take a stream now, or null. When null, a connection is being established unless the pool
   * is in backoff; `wait` queues the request for it.
   */
  acquire(): UpstreamHttp2<S> | null {
    if (this.state !== 'active') return null;
    const connections = this.connections;
    for (let i = 0; i < connections.length; i++) {
      if (connections[i].hasCapacity(this.options.streamHeadroom)) return connections[i].http2;
    }
    this.ensureConnecting();
    return null;
  }

  wait(waiter: PoolWaiter<S>): void {
    this.waiters.push(waiter);
    this.ensureConnecting();
  }

  /** Forget a waiter that gave up (client cancel or deadline). */
  cancelWait(waiter: PoolWaiter<S>): void {
    const index = this.waiters.indexOf(waiter);
    if (index >= 0) this.waiters.splice(index, 1);
  }

  /** The endpoint was removed: no new streams, open ones finish, then every connection closes. */
  drain(): void {
    void this.drainer.start('endpoint removed');
  }

  onUpstreamStateChange(connection: UpstreamConnection<S>, previous: UpstreamState['state']): void {
    this.observer?.onConnectionStateChange(this, connection, previous);
    const now = connection.state;
    if (now.state === 'ready') {
      this.failures = 0;
      this.serveWaiters();
      return;
    }
    if (now.state !== 'closed') return;
    const index = this.connections.indexOf(connection);
    if (index >= 0) this.connections.splice(index, 1);
    if (previous === 'connecting') {
      this.failures++;
      this.lastFailure = now.error ?? 'connection failed';
      this.retryAt = this.options.clock.now() + backoffDelay(this.options.backoff ?? DEFAULT_BACKOFF, this.failures, this.options.random);
      // The requests never reached the endpoint, so they may go elsewhere.
      this.failWaiters(this.lastFailure);
    } else if (this.waiters.length > 0) {
      this.ensureConnecting();
    }
    this.drainer.check();
  }

  onUpstreamStreamEnded(connection: UpstreamConnection<S>): void {
    if (this.waiters.length > 0 && connection.state.state === 'ready') this.serveWaiters();
  }

  private serveWaiters(): void {
    while (this.waiters.length > 0) {
      const connection = this.acquire();
      if (connection === null) return;
      const waiter = this.waiters.shift() as PoolWaiter<S>;
      waiter.onUpstreamReady(connection);
    }
  }

  private failWaiters(reason: string): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (let i = 0; i < waiters.length; i++) waiters[i].onUpstreamFailed(reason);
  }

  private ensureConnecting(): void {
    if (this.state !== 'active') return;
    if (this.connections.some((c) => c.isConnecting)) return;
    if (this.connections.length >= this.options.maxConnections) return;
    if (this.failures > 0 && this.options.clock.now() < this.retryAt) {
      if (this.waiters.length > 0) this.failWaiters(`in reconnect backoff after: ${this.lastFailure}`);
      return;
    }
    const connection = new UpstreamConnection(this, this.handler, {
      host: this.options.host,
      port: this.options.port,
      connectTimeoutMs: this.options.connectTimeoutMs,
      clock: this.options.clock,
    });
    this.connections.push(connection);
    this.observer?.onConnectionStateChange(this, connection, null);
  }
}
