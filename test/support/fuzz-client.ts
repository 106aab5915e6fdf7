// The gRPC client of the relay fuzzer: our HTTP/2 client role joined in memory to a server-role connection served by
// the relay's handler, opening requests (bodies in chunks, bad grpc-timeouts), cancelling them, and recording each
// request's one outcome; plus the turns of real and fake time the fuzzer runs on.

import { Http2Connection } from '../../agent/http2/connection.ts';
import type { Http2ConnectionError, Http2Handler } from '../../agent/http2/handler.ts';
import type { Stream } from '../../agent/http2/stream.ts';
import type { DownstreamContext, DownstreamHttp2, Exchange } from '../../agent/proxy/exchange.ts';
import { ConnectionPipe } from './connection-pipe.ts';
import type { FakeTimers } from './fake-timers.ts';
import type { FuzzRandom } from './fuzz-random.ts';

export const FUZZ_AUTHORITY = 'fuzz.default.svc.cluster.local:50051';
const TIMEOUTS = ['1m', '20m', '200m', '1S', '100S', '99999999H', '0m', '', '1x', '123456789m', '-1S', '1.5S', 'S'];

/** One client request as the client sees it. */
export interface ClientRequest {
  stream: Stream;
  head: readonly string[] | null;
  /** The header block that ended the response (trailers or Trailers-Only). */
  trailers: readonly string[] | null;
  endings: number;
  how: string;
  /** Whether this client reads (consumes) the response; a slow reader never does. */
  reads: boolean;
  /** Request body still to send, in chunks; null once the request ended. */
  body: Buffer[] | null;
}

/** The test's gRPC client: one per client connection, recording every event and checking its order as it comes. */
export class FuzzClient implements Http2Handler {
  readonly requests = new Map<number, ClientRequest>();
  readonly violations: string[] = [];
  closes = 0;
  readonly connection: Http2Connection;
  readonly pipe: ConnectionPipe;
  readonly downstream: DownstreamHttp2;

  constructor(rng: FuzzRandom, timers: FakeTimers, relayHandler: Http2Handler<DownstreamContext, Exchange>) {
    this.pipe = new ConnectionPipe(() => 1 + rng.int(rng.chance(0.5) ? 40 : 20_000));
    this.connection = new Http2Connection(this.pipe.toServer, this, {
      role: 'client',
      clock: timers,
      settings: { initialWindowSize: rng.pick([50, 65_535, 1 << 20]) },
      connectionWindowSize: rng.pick([65_535, 1 << 20]),
    });
    this.downstream = new Http2Connection<DownstreamContext, Exchange>(this.pipe.toClient, relayHandler, {
      role: 'server',
      clock: timers,
      creditConnectionOnReceive: true,
    });
    this.downstream.context = { route: null };
    this.pipe.client = this.connection;
    this.pipe.server = this.downstream;
    this.downstream.start();
    this.connection.start();
  }

  private request(stream: Stream, what: string): ClientRequest | null {
    if (this.closes > 0) this.violations.push(`${what} after onConnectionClose`);
    const request = this.requests.get(stream.id);
    if (request === undefined) {
      this.violations.push(`${what} on unknown stream ${stream.id}`);
      return null;
    }
    if (request.endings > 0) this.violations.push(`${what} on stream ${stream.id} after its outcome (${request.how})`);
    return request;
  }

  end(request: ClientRequest, how: string): void {
    request.endings++;
    request.how = request.endings > 1 ? `${request.how}, then ${how}` : how;
    request.body = null;
  }

  onHeaders(_connection: Http2Connection, stream: Stream, headers: readonly string[], endStream: boolean, isTrailers: boolean): void {
    const request = this.request(stream, 'onHeaders');
    if (request === null) return;
    if (!isTrailers) request.head = headers;
    if (endStream) request.trailers = headers;
  }

  onData(connection: Http2Connection, stream: Stream, data: Buffer): void {
    const request = this.request(stream, 'onData');
    if (request === null) return;
    if (request.head === null) this.violations.push(`DATA before a response head on stream ${stream.id}`);
    if (request.reads) connection.consume(stream, data.length);
  }

  onStreamReset(_connection: Http2Connection, stream: Stream, code: number, byPeer: boolean): void {
    const request = this.request(stream, 'onStreamReset');
    if (request !== null) this.end(request, `reset ${code}${byPeer ? ' by the agent' : ''}`);
  }

  onStreamClose(_connection: Http2Connection, stream: Stream): void {
    const request = this.request(stream, 'onStreamClose');
    if (request === null) return;
    this.end(request, 'closed');
    const status = request.trailers === null ? undefined : headerValue(request.trailers, 'grpc-status');
    if (status === undefined) this.violations.push(`stream ${stream.id} ended without trailers carrying grpc-status`);
    else if (!/^([0-9]|1[0-6])$/.test(status)) this.violations.push(`stream ${stream.id} ended with grpc-status "${status}"`);
    if (request.head === null || headerValue(request.head, ':status') !== '200') this.violations.push(`stream ${stream.id} answered without :status 200`);
  }

  onDataSent(): void {}
  onGoaway(): void {}
  onRemoteSettings(): void {}

  onConnectionClose(_connection: Http2Connection, error: Http2ConnectionError | null): void {
    this.closes++;
    // The client behaves; a connection error it detects is the agent breaking HTTP/2 towards it.
    if (error !== null && !error.byPeer && error.code !== 8) this.violations.push(`the client detected a protocol error from the agent: ${error.code} ${error.message}`);
  }

  /** Opens a request: its headers now, its body (if any) in chunks as the run goes on. */
  open(rng: FuzzRandom): ClientRequest | null {
    const headers = [':method', 'POST', ':scheme', 'http', ':path', '/fuzz.Echo/Call', ':authority', rng.chance(0.95) ? FUZZ_AUTHORITY : 'nowhere.default.svc.cluster.local:1'];
    headers.push('content-type', 'application/grpc', 'te', 'trailers');
    if (rng.chance(0.4)) headers.push('grpc-timeout', rng.pick(TIMEOUTS));
    const size = rng.pick([0, 0, 5, 1000, 20_000, 70_000]);
    const endStream = size === 0 && rng.chance(0.8);
    const stream = this.connection.openStream(headers, endStream);
    if (stream === null) return null;
    const body: Buffer[] = [];
    for (let at = 0; at < size; ) {
      const n = 1 + rng.int(rng.pick([10, 5000, 70_000]));
      body.push(rng.bytes(Math.min(n, size - at)));
      at += n;
    }
    const request: ClientRequest = { stream, head: null, trailers: null, endings: 0, how: '', reads: rng.chance(0.9), body: endStream ? null : body };
    this.requests.set(stream.id, request);
    return request;
  }

  /** Sends the next chunk of a request's body; the last one ends it (DATA END_STREAM, or trailers now and then). */
  sendMore(rng: FuzzRandom, request: ClientRequest): void {
    const body = request.body;
    if (body === null || request.endings > 0) return;
    const chunk = body.shift();
    if (chunk !== undefined) this.connection.sendData(request.stream, chunk, body.length === 0 && rng.chance(0.8));
    if (body.length === 0 && request.body !== null) {
      if (request.stream.state === 'open') {
        if (rng.chance(0.2)) this.connection.sendTrailers(request.stream, ['x-client-trailer', '1']);
        else this.connection.sendData(request.stream, Buffer.alloc(0), true);
      }
      request.body = null;
    }
  }

  /** The client cancels: RST_STREAM, which ends the stream on its side (no callback follows). */
  cancel(rng: FuzzRandom, request: ClientRequest): void {
    if (request.endings > 0 || this.connection.getStream(request.stream.id) !== request.stream || request.stream.state === 'closed') return;
    this.end(request, 'cancelled by the client');
    this.connection.resetStream(request.stream, rng.pick([8, 8, 0, 2]));
  }

  get live(): boolean {
    return !this.pipe.isClosed && this.connection.lifecycle.state !== 'closed';
  }

  openRequests(): ClientRequest[] {
    return [...this.requests.values()].filter((r) => r.endings === 0);
  }
}

export function headerValue(headers: readonly string[], name: string): string | undefined {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === name) return headers[i + 1];
  return undefined;
}

export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Turns real and fake time until `done` holds or `realMs` passed; fake time moves `stepMs` per turn. */
export async function runUntil(timers: FakeTimers, done: () => boolean, realMs: number, stepMs: number): Promise<boolean> {
  const until = Date.now() + realMs;
  while (!done()) {
    if (Date.now() > until) return false;
    await pause(1);
    timers.advance(stepMs);
  }
  return true;
}
