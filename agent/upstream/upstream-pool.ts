// The HTTP/2 connections to one endpoint: hands out a connection with stream capacity, opens another when all are
// near the endpoint's MAX_CONCURRENT_STREAMS, backs off after connect failures (requests that wait meanwhile wait for
// the next attempt), and drains when the endpoint goes.

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

/**
 * While requests wait on a pool in backoff, its next connect comes no later than this after the last failure, so an
 * endpoint that restarts is found within it (with nobody waiting, the backoff grows to its maximum: it also steers
 * picks to other endpoints, see proxy/endpoint-pick.ts).
 */
export const WAITING_RETRY_MS = 250;

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
  private failedAt = 0;
  private retryTimer: unknown = null;
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
        stopAccepting: () => {
          this.cancelRetry();
          this.failWaiters('endpoint removed');
        },
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

  /** Connects that failed since the last one that succeeded. */
  get connectFailures(): number {
    return this.failures;
  }

  /**
   * A connection that can take a stream now, or null. When null, a connection is being established, or will be
   * when the backoff allows; `wait` queues the request for it.
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
    const now = connection.state;
    // The pool's own account first, so that the observer reads it as of this change (the failures in a row).
    if (now.state === 'ready') {
      this.failures = 0;
    } else if (now.state === 'closed' && previous === 'connecting') {
      this.failures++;
      this.lastFailure = now.error ?? 'connection failed';
      this.failedAt = this.options.clock.now();
      this.retryAt = this.failedAt + backoffDelay(this.options.backoff ?? DEFAULT_BACKOFF, this.failures, this.options.random);
    }
    this.observer?.onConnectionStateChange(this, connection, previous);
    if (now.state === 'ready') {
      this.serveWaiters();
      return;
    }
    if (now.state !== 'closed') return;
    const index = this.connections.indexOf(connection);
    if (index >= 0) this.connections.splice(index, 1);
    if (previous === 'connecting') {
      // The requests never reached the endpoint, so they may go elsewhere (or come back to wait for the next attempt).
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
    // Draining connections (the endpoint's GOAWAY) finish their streams, long-lived ones included, outside the limit:
    // they take no new stream, so they must not keep the endpoint from getting a connection that does.
    if (this.connections.length - this.drainingCount() >= this.options.maxConnections) return;
    const now = this.options.clock.now();
    if (this.failures > 0 && now < this.retryAt) {
      if (this.waiters.length > 0) this.retryForWaiters(now);
      return;
    }
    this.cancelRetry();
    const connection = new UpstreamConnection(this, this.handler, {
      host: this.options.host,
      port: this.options.port,
      connectTimeoutMs: this.options.connectTimeoutMs,
      clock: this.options.clock,
    });
    this.connections.push(connection);
    this.observer?.onConnectionStateChange(this, connection, null);
  }

  private drainingCount(): number {
    let draining = 0;
    for (let i = 0; i < this.connections.length; i++) if (this.connections[i].state.state === 'draining') draining++;
    return draining;
  }

  /** Requests wait in backoff: the next attempt at the end of the backoff, or WAITING_RETRY_MS after the failure. */
  private retryForWaiters(now: number): void {
    if (this.retryTimer !== null) return;
    const at = Math.min(this.retryAt, this.failedAt + WAITING_RETRY_MS);
    this.retryTimer = this.options.clock.setTimeout(() => {
      this.retryTimer = null;
      if (this.waiters.length === 0) return;
      this.retryAt = Math.min(this.retryAt, this.options.clock.now());
      this.ensureConnecting();
    }, Math.max(0, at - now));
  }

  private cancelRetry(): void {
    if (this.retryTimer === null) return;
    this.options.clock.clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }
}
