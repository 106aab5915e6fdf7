// The HTTP/2 connections to one endpoint: hands out a connection with stream capacity, opens another when all are
// near the endpoint's MAX_CONCURRENT_STREAMS, backs off after connect failures, and drains when the endpoint goes.

import type { Http2Connection } from '../http2/connection.ts';
import type { Http2Handler } from '../http2/handler.ts';
import { type BackoffPolicy, DEFAULT_BACKOFF, backoffDelay } from '../vocabulary/backoff.ts';
import { UpstreamConnection, type UpstreamConnectionOwner, type UpstreamState } from './upstream-connection.ts';

/** A request waiting for a connection; implemented by the relay's exchange record (no closure per request). */
export interface PoolWaiter {
  onUpstreamReady(connection: Http2Connection): void;
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
  now: () => number;
  random: () => number;
}

export interface PoolObserver {
  /** `previous` is null for a connection just created (in state connecting). */
  onConnectionStateChange(pool: UpstreamPool, connection: UpstreamConnection, previous: UpstreamState['state'] | null): void;
}

export class UpstreamPool implements UpstreamConnectionOwner {
  readonly address: string;
  state: PoolState = 'active';
  readonly connections: UpstreamConnection[] = [];
  private waiters: PoolWaiter[] = [];
  private failures = 0;
  private retryAt = 0;
  private lastFailure = '';
  private readonly options: PoolOptions;
  private readonly handler: Http2Handler;
  private readonly observer: PoolObserver | null;

  constructor(address: string, handler: Http2Handler, options: PoolOptions, observer: PoolObserver | null = null) {
    this.address = address;
    this.handler = handler;
    this.options = options;
    this.observer = observer;
  }

  /** Whether a recent connect failure keeps this endpoint in backoff (the balancer should prefer others). */
  get inBackoff(): boolean {
    return this.failures > 0 && this.options.now() < this.retryAt && !this.connections.some((c) => c.state.state === 'ready');
  }

  get failureReason(): string {
    return this.lastFailure;
  }

  /**
   * A connection that can take a stream now, or null. When null, a connection is being established unless the pool
   * is in backoff; `wait` queues the request for it.
   */
  acquire(): Http2Connection | null {
    if (this.state !== 'active') return null;
    const connections = this.connections;
    for (let i = 0; i < connections.length; i++) {
      if (connections[i].hasCapacity(this.options.streamHeadroom)) return connections[i].http2;
    }
    this.ensureConnecting();
    return null;
  }

  wait(waiter: PoolWaiter): void {
    this.waiters.push(waiter);
    this.ensureConnecting();
  }

  /** Forget a waiter that gave up (client cancel or deadline). */
  cancelWait(waiter: PoolWaiter): void {
    const index = this.waiters.indexOf(waiter);
    if (index >= 0) this.waiters.splice(index, 1);
  }

  /** The endpoint was removed: no new streams, open ones finish, then every connection closes. */
  drain(): void {
    if (this.state !== 'active') return;
    this.state = 'draining';
    this.failWaiters('endpoint removed');
    for (const connection of [...this.connections]) connection.drain();
    this.closeIfEmpty();
  }

  onUpstreamStateChange(connection: UpstreamConnection, previous: UpstreamState['state']): void {
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
      this.retryAt = this.options.now() + backoffDelay(this.options.backoff ?? DEFAULT_BACKOFF, this.failures, this.options.random);
      // The requests never reached the endpoint, so they may go elsewhere.
      this.failWaiters(this.lastFailure);
    } else if (this.waiters.length > 0) {
      this.ensureConnecting();
    }
    this.closeIfEmpty();
  }

  onUpstreamStreamEnded(connection: UpstreamConnection): void {
    if (this.waiters.length > 0 && connection.state.state === 'ready') this.serveWaiters();
  }

  private serveWaiters(): void {
    while (this.waiters.length > 0) {
      const connection = this.acquire();
      if (connection === null) return;
      const waiter = this.waiters.shift() as PoolWaiter;
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
    if (this.failures > 0 && this.options.now() < this.retryAt) {
      if (this.waiters.length > 0) this.failWaiters(`in reconnect backoff after: ${this.lastFailure}`);
      return;
    }
    const connection = new UpstreamConnection(this, this.handler, {
      host: this.options.host,
      port: this.options.port,
      connectTimeoutMs: this.options.connectTimeoutMs,
      now: this.options.now,
    });
    this.connections.push(connection);
    this.observer?.onConnectionStateChange(this, connection, null);
  }

  private closeIfEmpty(): void {
    if (this.state === 'draining' && this.connections.length === 0) this.state = 'closed';
  }
}
