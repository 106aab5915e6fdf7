// The relay: every request of a client connection is admitted (route, deadline), sent to an endpoint the balancer
// picks, relayed both ways by the two handlers, and finished with exactly one outcome.

import { ErrorCode } from '../http2/constants.ts';
import type { Stream } from '../http2/stream.ts';
import { EndpointPools } from '../upstream/endpoint-pools.ts';
import type { Clock } from '../vocabulary/clock.ts';
import { type ErrorCode as ErrorCodeName, GrpcStatus, grpcStatusOf } from '../vocabulary/errors.ts';
import { refuseRequest, replyWithStatus } from './agent-replies.ts';
import type { AuthorityParser } from './authority.ts';
import { DeadlineQueue } from './deadline-queue.ts';
import { DownstreamHandler } from './downstream-handler.ts';
import { pickEndpoint } from './endpoint-pick.ts';
import { type DownstreamHttp2, Exchange, type ExchangeDriver, type ExchangeUpstream } from './exchange.ts';
import { headersWithTimeLeft } from './grpc-timeout.ts';
import { reportCancel, reportFailure, reportLatency } from './latency-feedback.ts';
import { admitRequest } from './request-admission.ts';
import type { RelayObserver } from './relay-observer.ts';
import type { RouteTable } from './route.ts';
import { keepRequestData, mayRetryRefused, mayRetryUnsent, sendRequestBody } from './transparent-retry.ts';
import { cancelUpstream, detachUpstream } from './upstream-cancel.ts';
import { UpstreamHandler } from './upstream-handler.ts';
import { judgeUpstreamReset } from './upstream-reset.ts';
import { NO_CHUNKS } from '../vocabulary/chunk-list.ts';

export interface RelayOptions {
  routes: RouteTable;
  authority: AuthorityParser;
  clock: Clock;
  random: () => number;
  connectTimeoutMs: number;
  maxConnectionsPerEndpoint: number;
  streamHeadroom: number;
  observer: RelayObserver;
}

export class Relay implements ExchangeDriver {
  readonly downstreamHandler: DownstreamHandler;
  readonly upstreamHandler: UpstreamHandler;
  readonly deadlines: DeadlineQueue;
  readonly pools: EndpointPools<Exchange>;
  private readonly options: RelayOptions;

  constructor(options: RelayOptions) {
    this.options = options;
    this.deadlines = new DeadlineQueue(options.clock);
    this.downstreamHandler = new DownstreamHandler(this);
    this.upstreamHandler = new UpstreamHandler(this);
    this.pools = new EndpointPools<Exchange>({
      ...options,
      handler: this.upstreamHandler,
      onConnectionStateChange: (pool, connection, previous) => options.observer.onUpstreamConnectionState(pool, connection, previous),
    });
  }

  /** A new request on a client connection: admit → pick → send. */
  startExchange(connection: DownstreamHttp2, stream: Stream<Exchange>, headers: readonly string[], endStream: boolean): void {
    const admission = admitRequest(connection.context?.route ?? null, headers, this.options.routes, this.options.authority);
    if (!admission.admitted) {
      const status = grpcStatusOf(admission.code) ?? GrpcStatus.UNAVAILABLE;
      refuseRequest(connection, stream, status, admission.message);
      return this.options.observer.onRequestRejected(status, admission.code, admission.message);
    }
    const now = this.options.clock.now();
    const exchange = new Exchange(this, connection, stream, admission.route, headers, now);
    exchange.requestEnded = endStream;
    stream.context = exchange;
    if (admission.timeoutMs >= 0) {
      exchange.deadlineAt = now + admission.timeoutMs;
      this.deadlines.add(exchange);
    }
    this.dispatch(exchange);
  }

  /** Request body from the client. */
  forwardRequestData(exchange: Exchange, data: Buffer, endStream: boolean): void {
    keepRequestData(exchange, data, endStream);
    if (exchange.upstreamStream !== null) sendRequestBody(exchange);
  }

  /** One attempt: picks an endpoint and gets its upstream stream going (or queues for a connection). */
  dispatch(exchange: Exchange): void {
    exchange.attempts++;
    const endpoint = pickEndpoint(exchange.route, this.pools, exchange.declinedBy);
    if (endpoint === null) return this.fail(exchange, 'ML_NO_ENDPOINT', `no ready endpoint for ${exchange.route.key}`);
    const pool = this.pools.poolFor(endpoint.address);
    exchange.endpoint = endpoint;
    exchange.pool = pool;
    endpoint.onStart();
    const connection = pool.acquire();
    if (connection !== null) this.onUpstreamReady(exchange, connection);
    else pool.wait(exchange);
  }

  /** A connection can take the attempt's stream: send the headers (with the time left) and the body so far. */
  onUpstreamReady(exchange: Exchange, connection: ExchangeUpstream): void {
    if (exchange.phase !== 'waiting') return;
    const now = this.options.clock.now();
    if (exchange.deadlineAt <= now) return this.onDeadline(exchange);
    const headers = headersWithTimeLeft(exchange.requestHeaders, exchange.deadlineAt - now);
    const noBody = exchange.requestEnded && exchange.bodyBytes === 0;
    const stream = connection.openStream(headers, noBody);
    if (stream === null) return exchange.pool?.wait(exchange);
    stream.context = exchange;
    exchange.upstreamStartedAt = now;
    exchange.upstream = connection;
    exchange.upstreamStream = stream;
    exchange.phase = 'relaying';
    exchange.requestBytesSent = 0;
    exchange.bodySent = 0;
    if (!noBody) sendRequestBody(exchange);
  }

  onUpstreamFailed(exchange: Exchange, reason: string): void {
    if (exchange.phase !== 'waiting') return;
    reportFailure(exchange);
    exchange.declined();
    // Nothing was written to the endpoint: the request may go to another one.
    if (mayRetryUnsent(exchange, this.options.clock.now())) {
      this.options.observer.onTransparentRetry(exchange, 'connect_failed');
      return this.dispatch(exchange);
    }
    this.fail(exchange, 'ML_CONNECT_FAILED', `connect to ${exchange.pool?.address} for ${exchange.route.key} failed: ${reason}`);
  }

  onDeadline(exchange: Exchange): void {
    if (exchange.phase === 'finished') return;
    cancelUpstream(exchange, this.options.clock.now());
    this.fail(exchange, 'ML_DEADLINE', 'deadline exceeded in meshlite');
  }

  /** The upstream reset the stream, or its connection was lost. */
  upstreamStreamReset(exchange: Exchange, connection: ExchangeUpstream, code: number): void {
    const verdict = judgeUpstreamReset(exchange, connection, code);
    if (verdict.kind === 'after-finish') {
      if (verdict.passReset) exchange.downstream.resetAfterQueued(exchange.downstreamStream, ErrorCode.NO_ERROR);
      return;
    }
    if (verdict.chargeEndpoint) reportFailure(exchange);
    detachUpstream(exchange);
    switch (verdict.kind) {
      case 'refused':
        // Not the endpoint's failure (its GOAWAY): the attempt tells the balancer nothing.
        if (!verdict.chargeEndpoint) reportCancel(exchange);
        exchange.declined();
        // Never processed, and no attempt left: UNAVAILABLE, which a client may retry (not INTERNAL, the code's own).
        if (!mayRetryRefused(exchange)) return this.replyAndFinish(exchange, GrpcStatus.UNAVAILABLE, 'ML_UPSTREAM_RESET', verdict.message);
        exchange.phase = 'waiting';
        this.options.observer.onTransparentRetry(exchange, 'refused_stream');
        return this.dispatch(exchange);
      case 'ended-by-reset':
        exchange.downstream.resetAfterQueued(exchange.downstreamStream, ErrorCode.NO_ERROR);
        return this.finish(exchange, verdict.status, null, verdict.message);
      case 'fail':
        return this.fail(exchange, verdict.code, verdict.message);
      case 'relay-status':
        return this.replyAndFinish(exchange, verdict.status, 'ML_UPSTREAM_RESET', verdict.message);
    }
  }

  /** The client cancelled (RST_STREAM) or its connection went away. */
  clientCancelled(exchange: Exchange): void {
    if (exchange.phase === 'finished') return;
    cancelUpstream(exchange, this.options.clock.now());
    reportCancel(exchange);
    this.finish(exchange, GrpcStatus.CANCELLED, 'ML_CLIENT_CANCELLED', 'cancelled by the client');
  }

  /** The endpoint's response headers arrived (its first response byte). */
  responseStarted(exchange: Exchange): void {
    this.options.observer.onResponseStarted(exchange);
  }

  /** The response is complete (trailers or END_STREAM from upstream). */
  responseEnded(exchange: Exchange, grpcStatus: number): void {
    if (exchange.phase === 'finished') return;
    // The endpoint answered before our side of its stream ended (RFC 9113 §8.1 allows it: the client is still sending,
    // or the body waits for window the endpoint may never give). The rest of the request is not wanted: reset the
    // stream, or it would stay half-closed on the endpoint for good, holding one of its streams.
    const stream = exchange.upstreamStream;
    if (stream !== null && stream.state !== 'closed' && stream.state !== 'half-closed-local') cancelUpstream(exchange, this.options.clock.now());
    this.finish(exchange, grpcStatus, null, '');
  }

  /** Fails every request queued on pools and stops the deadline timer (agent shutdown). */
  close(): void {
    this.deadlines.clear();
    this.pools.drainAll();
  }

  /** The endpoint left its service: its connections finish their streams and close. */
  drainEndpoint(address: string): void {
    this.pools.drain(address);
  }

  get poolCount(): number {
    return this.pools.size;
  }

  /** An agent-made error ends the exchange. */
  /** An agent-made error with the status the errors table gives its code. */
  private fail(exchange: Exchange, code: ErrorCodeName, message: string): void {
    this.replyAndFinish(exchange, grpcStatusOf(code) ?? GrpcStatus.UNAVAILABLE, code, message);
  }

  private replyAndFinish(exchange: Exchange, status: number, code: ErrorCodeName, message: string): void {
    replyWithStatus(exchange, status, message);
    this.finish(exchange, status, code, message);
  }

  private finish(exchange: Exchange, status: number, code: ErrorCodeName | null, message: string): void {
    exchange.phase = 'finished';
    this.deadlines.remove(exchange);
    exchange.body = NO_CHUNKS;
    reportLatency(exchange, this.options.clock.now());
    this.options.observer.onExchangeFinished(exchange, status, code, message);
  }
}
