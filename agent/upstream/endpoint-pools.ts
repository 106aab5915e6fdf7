// The upstream pools of every endpoint the relay has sent to, by address: one pool per endpoint, created on first use,
// drained when the endpoint leaves its service.

import type { Clock } from '../vocabulary/clock.ts';
import { splitHostPort } from '../vocabulary/host-port.ts';
import type { UpstreamConnection, UpstreamHttp2Handler, UpstreamState } from './upstream-connection.ts';
import { UpstreamPool } from './upstream-pool.ts';

export interface EndpointPoolsOptions<S> {
  handler: UpstreamHttp2Handler<S>;
  clock: Clock;
  random: () => number;
  connectTimeoutMs: number;
  maxConnectionsPerEndpoint: number;
  /** Streams kept free on a connection before another one is opened. */
  streamHeadroom: number;
  onConnectionStateChange(pool: UpstreamPool<S>, connection: UpstreamConnection<S>, previous: UpstreamState['state'] | null): void;
}

export class EndpointPools<S> {
  private readonly pools = new Map<string, UpstreamPool<S>>();
  private readonly options: EndpointPoolsOptions<S>;

  constructor(options: EndpointPoolsOptions<S>) {
    this.options = options;
  }

  get size(): number {
    return this.pools.size;
  }

  /** The endpoint's pool, if the relay has one for it. */
  get(address: string): UpstreamPool<S> | undefined {
    return this.pools.get(address);
  }

  /** Whether a recent connect failure keeps the endpoint in backoff (pick another if there is one). */
  inBackoff(address: string): boolean {
    return this.pools.get(address)?.inBackoff ?? false;
  }

  /** The endpoint's active pool, created on first use (or after the last one was drained). */
  poolFor(address: string): UpstreamPool<S> {
    const existing = this.pools.get(address);
    if (existing !== undefined && existing.state === 'active') return existing;
    const { host, port } = splitHostPort(address);
    const options = this.options;
    const pool = new UpstreamPool<S>(
      address,
      options.handler,
      {
        host,
        port,
        connectTimeoutMs: options.connectTimeoutMs,
        maxConnections: options.maxConnectionsPerEndpoint,
        streamHeadroom: options.streamHeadroom,
        clock: options.clock,
        random: options.random,
      },
      { onConnectionStateChange: (p, c, previous) => options.onConnectionStateChange(p, c, previous) },
    );
    this.pools.set(address, pool);
    return pool;
  }

  /** The endpoint left its service: its connections finish their streams and close. */
  drain(address: string): void {
    const pool = this.pools.get(address);
    if (pool === undefined) return;
    this.pools.delete(address);
    pool.drain();
  }

  /** Agent shutdown: every pool drains (queued requests fail). */
  drainAll(): void {
    for (const pool of this.pools.values()) pool.drain();
  }
}
