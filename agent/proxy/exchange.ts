// One request relayed from a client stream to an upstream stream: the plain record the relay keeps per request.

import type { EndpointLoad } from '../balancer/endpoint-load.ts';
import type { Http2Connection } from '../http2/connection.ts';
import type { Stream } from '../http2/stream.ts';
import type { UpstreamHttp2 } from '../upstream/upstream-connection.ts';
import type { UpstreamPool } from '../upstream/upstream-pool.ts';
import type { Route } from './route.ts';
import { NO_CHUNKS } from '../vocabulary/chunk-list.ts';

/** What the listener keeps in a client connection's context. */
export interface DownstreamContext {
  /** Transparent mode: the route of the connection's original destination; null in explicit mode. */
  route: Route | null;
}

/** A client pod's connection (our server role): its streams carry their exchange. */
export type DownstreamHttp2 = Http2Connection<DownstreamContext, Exchange>;
/** A connection to an endpoint (our client role): its streams carry their exchange. */
export type ExchangeUpstream = UpstreamHttp2<Exchange>;

/**
 * waiting: no upstream stream yet (picking, or waiting for a connection);
 * relaying: request and/or response are flowing;
 * finished: the outcome is known (response ended, reset, deadline, or an agent-made error); bytes may still drain.
 */
export type ExchangePhase = 'waiting' | 'relaying' | 'finished';

/** What the relay does for an exchange; the exchange forwards pool and deadline events to it. */
export interface ExchangeDriver {
  onUpstreamReady(exchange: Exchange, connection: ExchangeUpstream): void;
  onUpstreamFailed(exchange: Exchange, reason: string): void;
  onDeadline(exchange: Exchange): void;
}

export class Exchange {
  phase: ExchangePhase = 'waiting';
  readonly driver: ExchangeDriver;
  readonly downstream: DownstreamHttp2;
  readonly downstreamStream: Stream<Exchange>;
  readonly route: Route;
  /** Request headers as they go upstream (grpc-timeout rewritten per attempt). */
  readonly requestHeaders: readonly string[];
  readonly startedAt: number;
  /** When the current attempt's upstream stream was opened: the endpoint's latency is measured from here. */
  upstreamStartedAt = 0;
  attempts = 0;
  endpoint: EndpointLoad | null = null;
  /** The endpoints that declined an attempt unprocessed (connect failed, stream refused): the next ones avoid them. */
  declinedBy: string[] | null = null;
  pool: UpstreamPool<Exchange> | null = null;
  upstream: ExchangeUpstream | null = null;
  upstreamStream: Stream<Exchange> | null = null;
  /** Request body chunks not yet sent upstream, and (while retryable) those sent, for a transparent retry. */
  body: Buffer[] = NO_CHUNKS;
  bodyBytes = 0;
  bodySent = 0;
  requestEnded = false;
  /** Request bytes sent upstream in this attempt, and how many of them were returned to the client's window. */
  requestBytesSent = 0;
  requestBytesCredited = 0;
  /** A retry is allowed only while HTTP/2 can prove the request was not processed and the body is still held. */
  retryable = true;
  responseStarted = false;
  /** Absolute deadline (clock ms) or +Infinity; heap position for the deadline queue. */
  deadlineAt = Number.POSITIVE_INFINITY;
  deadlineIndex = -1;

  constructor(
    driver: ExchangeDriver,
    downstream: DownstreamHttp2,
    downstreamStream: Stream<Exchange>,
    route: Route,
    requestHeaders: readonly string[],
    startedAt: number,
  ) {
    this.driver = driver;
    this.downstream = downstream;
    this.downstreamStream = downstreamStream;
    this.route = route;
    this.requestHeaders = requestHeaders;
    this.startedAt = startedAt;
  }

  // PoolWaiter
  onUpstreamReady(connection: ExchangeUpstream): void {
    this.driver.onUpstreamReady(this, connection);
  }

  onUpstreamFailed(reason: string): void {
    this.driver.onUpstreamFailed(this, reason);
  }

  /** The current attempt's endpoint declined it: later attempts avoid it while others can be picked. */
  declined(): void {
    const address = this.pool?.address;
    if (address === undefined) return;
    if (this.declinedBy === null) this.declinedBy = [address];
    else if (!this.declinedBy.includes(address)) this.declinedBy.push(address);
  }

  // DeadlineEntry
  onDeadline(): void {
    this.driver.onDeadline(this);
  }
}
