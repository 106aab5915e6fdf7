// The relay: every request stream of a client connection is balanced onto an upstream stream of a chosen endpoint,
// and headers, DATA, trailers, flow control, cancellation and deadlines are carried across.

import type { EndpointLoad } from '../balancer/endpoint-load.ts';
import { type ErrorCode as ErrorCodeName, GrpcStatus, grpcStatusOf } from '../vocabulary/errors.ts';
import { ErrorCode, errorCodeName } from '../http2/constants.ts';
import type { Http2Connection } from '../http2/connection.ts';
import type { Stream } from '../http2/stream.ts';
import { UpstreamPool } from '../upstream/upstream-pool.ts';
import type { UpstreamConnection } from '../upstream/upstream-connection.ts';
import type { AuthorityParser } from './authority.ts';
import { DeadlineQueue } from './deadline-queue.ts';
import { DownstreamHandler } from './downstream-handler.ts';
import { Exchange, type ExchangeDriver } from './exchange.ts';
import { statusTrailers, trailersOnly, grpcStatusForReset } from './grpc-status.ts';
import { formatGrpcTimeout, parseGrpcTimeout } from './grpc-timeout.ts';
import type { Route, RouteTable } from './route.ts';
import type { Clock } from '../vocabulary/clock.ts';
import { UpstreamHandler } from './upstream-handler.ts';

/** Request bodies up to this size are kept until the response starts, so a refused request can be sent again. */
const RETRY_BODY_LIMIT = 64 * 1024;
const MAX_ATTEMPTS = 3;

export interface RelayObserver {
  /** Once per request, when its outcome is known. `errorCode` is set when the agent made the response. */
  onExchangeFinished(exchange: Exchange, grpcStatus: number, errorCode: ErrorCodeName | null, message: string): void;
  /** A request answered by the agent before it was routed (unknown target, invalid grpc-timeout). */
  onRequestRejected(grpcStatus: number, errorCode: ErrorCodeName, message: string): void;
  onUpstreamConnectionState(pool: UpstreamPool, connection: UpstreamConnection, previous: string | null): void;
}

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

/** What the listener stores in a client connection's `context`. */
export interface DownstreamContext {
  /** Transparent mode: the route of the connection's original destination; null in explicit mode. */
  route: Route | null;
}

export class Relay implements ExchangeDriver {
  readonly downstreamHandler: DownstreamHandler;
  readonly upstreamHandler: UpstreamHandler;
  readonly deadlines: DeadlineQueue;
  private readonly pools = new Map<string, UpstreamPool>();
  private readonly options: RelayOptions;

  constructor(options: RelayOptions) {
    this.options = options;
    this.deadlines = new DeadlineQueue(options.clock);
    this.downstreamHandler = new DownstreamHandler(this);
    this.upstreamHandler = new UpstreamHandler(this);
  }

  /** A new request on a client connection. */
  startExchange(connection: Http2Connection, stream: Stream, headers: string[], endStream: boolean): void {
    const context = connection.context as DownstreamContext | null;
    let route = context?.route ?? null;
    if (route === null) {
      const authority = headerValue(headers, ':authority') ?? '';
      const key = this.options.authority.serviceKey(authority);
      route = key === null ? null : this.options.routes.routeForKey(key);
      if (route === null) return this.reject(connection, stream, 'ML_UNKNOWN_TARGET', `unknown target "${authority}"`);
    }
    const timeoutText = headerValue(headers, 'grpc-timeout');
    const timeoutMs = timeoutText === undefined ? -1 : parseGrpcTimeout(timeoutText);
    if (timeoutText !== undefined && timeoutMs < 0) {
      return this.reject(connection, stream, 'ML_BAD_TIMEOUT', `invalid grpc-timeout "${timeoutText}"`);
    }
    const now = this.options.clock.now();
    const exchange = new Exchange(this, connection, stream, route, headers, now);
    exchange.requestEnded = endStream;
    stream.context = exchange;
    if (timeoutMs >= 0) {
      exchange.deadlineAt = now + timeoutMs;
      this.deadlines.add(exchange);
    }
    this.dispatch(exchange);
  }

  /** Request body from the client. */
  forwardRequestData(exchange: Exchange, data: Buffer, endStream: boolean): void {
    if (data.length > 0) {
      exchange.body.push(data);
      exchange.bodyBytes += data.length;
    }
    if (endStream) exchange.requestEnded = true;
    if (exchange.retryable && exchange.bodyBytes > RETRY_BODY_LIMIT) exchange.retryable = false;
    if (exchange.upstreamStream !== null) this.sendBody(exchange);
  }

  /** Picks an endpoint and gets its upstream stream going (or queues for a connection). */
  dispatch(exchange: Exchange): void {
    exchange.attempts++;
    const endpoint = this.pickEndpoint(exchange.route);
    if (endpoint === null) {
      return this.failExchange(exchange, 'ML_NO_ENDPOINT', `no ready endpoint for ${exchange.route.key}`);
    }
    const pool = this.poolFor(endpoint);
    exchange.endpoint = endpoint;
    exchange.pool = pool;
    endpoint.onStart();
    const connection = pool.acquire();
    if (connection !== null) this.onUpstreamReady(exchange, connection);
    else pool.wait(exchange);
  }

  onUpstreamReady(exchange: Exchange, connection: Http2Connection): void {
    if (exchange.phase !== 'waiting') return;
    const headers = this.upstreamHeaders(exchange);
    if (headers === null) return;
    const noBody = exchange.requestEnded && exchange.bodyBytes === 0;
    const stream = connection.openStream(headers, noBody);
    if (stream === null) {
      (exchange.pool as UpstreamPool).wait(exchange);
      return;
    }
    stream.context = exchange;
    exchange.upstreamStartedAt = this.options.clock.now();
    exchange.upstream = connection;
    exchange.upstreamStream = stream;
    exchange.phase = 'relaying';
    exchange.requestBytesSent = 0;
    exchange.bodySent = 0;
    if (!noBody) this.sendBody(exchange);
  }

  onUpstreamFailed(exchange: Exchange, reason: string): void {
    if (exchange.phase !== 'waiting') return;
    this.chargeFailure(exchange);
    // Nothing was written to the endpoint: the request may go to another one.
    if (exchange.attempts < MAX_ATTEMPTS) return this.dispatch(exchange);
    this.failExchange(exchange, 'ML_CONNECT_FAILED', `connect to ${exchange.pool?.address} for ${exchange.route.key} failed: ${reason}`);
  }

  onDeadline(exchange: Exchange): void {
    if (exchange.phase === 'finished') return;
    this.cancelUpstream(exchange);
    this.failExchange(exchange, 'ML_DEADLINE', 'deadline exceeded in meshlite');
  }

  /** The upstream refused the stream or it fell above a GOAWAY's last-stream-id: never processed. */
  retryOrFail(exchange: Exchange, code: number): void {
    this.chargeFailure(exchange);
    detachUpstream(exchange);
    if (exchange.retryable && exchange.attempts < MAX_ATTEMPTS) {
      exchange.phase = 'waiting';
      return this.dispatch(exchange);
    }
    this.failExchange(exchange, 'ML_UPSTREAM_RESET', `upstream ${exchange.pool?.address} refused the stream (${errorCodeName(code)})`);
  }

  /** The upstream reset the stream or its connection was lost. */
  upstreamStreamReset(exchange: Exchange, connection: Http2Connection, code: number): void {
    if (exchange.phase === 'finished') {
      // After a complete response, RST_STREAM(NO_ERROR) asks the client to stop sending: pass it on behind the data.
      if (code === ErrorCode.NO_ERROR) exchange.downstream.resetAfterQueued(exchange.downstreamStream, ErrorCode.NO_ERROR);
      return;
    }
    if (code === ErrorCode.REFUSED_STREAM) return this.retryOrFail(exchange, code);
    detachUpstream(exchange);
    const lost = connection.lifecycle.state === 'closed';
    if (lost) this.chargeFailure(exchange);
    if (code === ErrorCode.NO_ERROR && exchange.responseStarted) {
      // A response ended by RST_STREAM(NO_ERROR) after its DATA (Node servers do this): the client gets every byte,
      // then the same reset, never ahead of the data.
      exchange.downstream.resetAfterQueued(exchange.downstreamStream, ErrorCode.NO_ERROR);
      return this.finish(exchange, GrpcStatus.INTERNAL, null, 'response ended by RST_STREAM(NO_ERROR) without trailers');
    }
    if (lost) {
      const state = connection.lifecycle;
      const error = state.state === 'closed' ? state.error : null;
      // We closed it for breaking HTTP/2 (e.g. it answered HTTP/1.1); otherwise it went away under us.
      const broken = error !== null && !error.byPeer;
      const code = broken ? 'ML_UPSTREAM_PROTOCOL' : 'ML_UPSTREAM_CONNECTION_LOST';
      const message = broken
        ? `endpoint ${exchange.pool?.address} broke HTTP/2: ${error.message}`
        : `connection to ${exchange.pool?.address} lost`;
      return this.failExchange(exchange, code, message);
    }
    const status = grpcStatusForReset(code);
    const message = `upstream ${exchange.pool?.address} reset the stream (${errorCodeName(code)})`;
    this.respondWithStatus(exchange, status, message);
    this.finish(exchange, status, 'ML_UPSTREAM_RESET', message);
  }

  /** The client cancelled (RST_STREAM) or its connection went away. */
  clientCancelled(exchange: Exchange): void {
    if (exchange.phase === 'finished') return;
    this.cancelUpstream(exchange);
    // A cancel says nothing about the endpoint's speed.
    exchange.endpoint?.onCancel();
    exchange.endpoint = null;
    this.finish(exchange, GrpcStatus.CANCELLED, 'ML_CLIENT_CANCELLED', 'cancelled by the client');
  }

  /** The response is complete (trailers or END_STREAM from upstream). */
  responseEnded(exchange: Exchange, grpcStatus: number): void {
    if (exchange.phase === 'finished') return;
    this.finish(exchange, grpcStatus, null, '');
  }

  /** Request bytes the upstream accepted: return them to the client's window, once each, across retries. */
  requestBytesSent(exchange: Exchange, bytes: number): void {
    exchange.requestBytesSent += bytes;
    const credit = exchange.requestBytesSent - exchange.requestBytesCredited;
    if (credit > 0) {
      exchange.requestBytesCredited += credit;
      exchange.downstream.consume(exchange.downstreamStream, credit);
    }
  }

  /** Fails every request queued on pools and stops the deadline timer (agent shutdown). */
  close(): void {
    this.deadlines.clear();
    for (const pool of this.pools.values()) pool.drain();
  }

  /** The endpoint left its service: its connections finish their streams and close. */
  drainEndpoint(address: string): void {
    const pool = this.pools.get(address);
    if (pool === undefined) return;
    this.pools.delete(address);
    pool.drain();
  }

  get poolCount(): number {
    return this.pools.size;
  }

  private pickEndpoint(route: Route): EndpointLoad | null {
    let endpoint = route.picker.pick();
    // Prefer an endpoint that is not in reconnect backoff; a few picks suffice for p2c and round-robin alike.
    for (let i = 0; endpoint !== null && i < 3; i++) {
      const pool = endpoint.context as UpstreamPool | null;
      if (pool === null || !pool.inBackoff) break;
      endpoint = route.picker.pick();
    }
    return endpoint;
  }

  private poolFor(endpoint: EndpointLoad): UpstreamPool {
    let pool = endpoint.context as UpstreamPool | null;
    if (pool !== null && pool.state === 'active') return pool;
    pool = this.pools.get(endpoint.address) ?? null;
    if (pool === null || pool.state !== 'active') {
      const { host, port } = splitAddress(endpoint.address);
      pool = new UpstreamPool(
        endpoint.address,
        this.upstreamHandler,
        {
          host,
          port,
          connectTimeoutMs: this.options.connectTimeoutMs,
          maxConnections: this.options.maxConnectionsPerEndpoint,
          streamHeadroom: this.options.streamHeadroom,
          now: () => this.options.clock.now(),
          random: this.options.random,
        },
        { onConnectionStateChange: (p, c, previous) => this.options.observer.onUpstreamConnectionState(p, c, previous) },
      );
      this.pools.set(endpoint.address, pool);
    }
    endpoint.context = pool;
    return pool;
  }

  /** Headers for this attempt; null when the deadline already passed (the exchange is failed then). */
  private upstreamHeaders(exchange: Exchange): string[] | null {
    if (exchange.deadlineAt === Number.POSITIVE_INFINITY) return exchange.requestHeaders;
    const left = exchange.deadlineAt - this.options.clock.now();
    if (left <= 0) {
      this.onDeadline(exchange);
      return null;
    }
    const headers = exchange.requestHeaders.slice();
    for (let i = 0; i < headers.length; i += 2) if (headers[i] === 'grpc-timeout') headers[i + 1] = formatGrpcTimeout(left);
    return headers;
  }

  private sendBody(exchange: Exchange): void {
    const connection = exchange.upstream as Http2Connection;
    const stream = exchange.upstreamStream as Stream;
    const body = exchange.body;
    while (exchange.bodySent < body.length) {
      const index = exchange.bodySent++;
      const last = exchange.requestEnded && exchange.bodySent === body.length;
      connection.sendData(stream, body[index], last);
    }
    if (exchange.requestEnded && body.length === 0 && stream.state === 'open') connection.sendData(stream, EMPTY, true);
    if (!exchange.retryable) {
      body.length = 0;
      exchange.bodySent = 0;
    }
  }

  private cancelUpstream(exchange: Exchange): void {
    const connection = exchange.upstream;
    const stream = exchange.upstreamStream;
    if (exchange.phase === 'waiting') {
      exchange.pool?.cancelWait(exchange);
      return;
    }
    if (connection === null || stream === null) return;
    const owner = connection.context as UpstreamConnection | null;
    if (owner === null || owner.resetBudget.take(this.options.clock.now())) {
      connection.resetStream(stream, ErrorCode.CANCEL);
    } else {
      // Past the reset budget: let the stream finish on the endpoint and discard its response.
      stream.context = null;
    }
    detachUpstream(exchange);
  }

  private chargeFailure(exchange: Exchange): void {
    const endpoint = exchange.endpoint;
    if (endpoint === null) return;
    endpoint.onFailure();
    exchange.endpoint = null;
  }

  /** An agent-made error: Trailers-Only when nothing was sent to the client yet, else trailers. */
  private failExchange(exchange: Exchange, code: ErrorCodeName, message: string): void {
    const status = grpcStatusOf(code) ?? GrpcStatus.UNAVAILABLE;
    this.respondWithStatus(exchange, status, message);
    this.finish(exchange, status, code, message);
  }

  private respondWithStatus(exchange: Exchange, status: number, message: string): void {
    const connection = exchange.downstream;
    const stream = exchange.downstreamStream;
    if (exchange.responseStarted) connection.sendTrailers(stream, statusTrailers(status, message));
    else connection.sendHeaders(stream, trailersOnly(status, message), true);
    exchange.responseStarted = true;
  }

  private reject(connection: Http2Connection, stream: Stream, code: ErrorCodeName, message: string): void {
    const status = grpcStatusOf(code) ?? GrpcStatus.UNAVAILABLE;
    stream.context = null;
    connection.sendHeaders(stream, trailersOnly(status, message), true);
    this.options.observer.onRequestRejected(status, code, message);
  }

  private finish(exchange: Exchange, status: number, code: ErrorCodeName | null, message: string): void {
    exchange.phase = 'finished';
    this.deadlines.remove(exchange);
    exchange.body = [];
    const endpoint = exchange.endpoint;
    if (endpoint !== null) {
      // From the upstream stream's opening, not the request's arrival: waiting for a connection to be set up says
      // nothing about how fast the endpoint answers, and counting it would keep a peak-EWMA estimate high.
      const since = exchange.upstreamStartedAt > 0 ? exchange.upstreamStartedAt : exchange.startedAt;
      endpoint.onFinish((this.options.clock.now() - since) * 1e6);
      exchange.endpoint = null;
    }
    this.options.observer.onExchangeFinished(exchange, status, code, message);
  }
}

const EMPTY = Buffer.alloc(0);

function detachUpstream(exchange: Exchange): void {
  if (exchange.upstreamStream !== null && exchange.upstreamStream.context === exchange) exchange.upstreamStream.context = null;
  exchange.upstream = null;
  exchange.upstreamStream = null;
}

function headerValue(headers: readonly string[], name: string): string | undefined {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === name) return headers[i + 1];
  return undefined;
}

/** "10.0.0.1:80" or "[fd00::1]:80" into host and port. */
export function splitAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  let host = address.slice(0, colon);
  if (host.startsWith('[')) host = host.slice(1, -1);
  return { host, port: Number(address.slice(colon + 1)) };
}
