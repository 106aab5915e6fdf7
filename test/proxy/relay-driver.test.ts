// The relay and its two handlers on their own, driven with recording fakes of both connections: what each event does
// to an exchange, what the client and the endpoint are sent, and what the balancer and the observer are told.

import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { EndpointLoad } from '../../agent/balancer/endpoint-load.ts';
import { EMPTY_PICKER, type Picker } from '../../agent/balancer/picker.ts';
import { ErrorCode } from '../../agent/http2/constants.ts';
import type { ConnectionState } from '../../agent/http2/connection.ts';
import { Http2ConnectionError } from '../../agent/http2/handler.ts';
import { Stream } from '../../agent/http2/stream.ts';
import { AuthorityParser } from '../../agent/proxy/authority.ts';
import { type DownstreamHttp2, Exchange, type ExchangeUpstream } from '../../agent/proxy/exchange.ts';
import { statusTrailers, trailersOnly } from '../../agent/proxy/grpc-status.ts';
import { Relay } from '../../agent/proxy/relay.ts';
import type { Route, RouteTable } from '../../agent/proxy/route.ts';
import { MAX_ATTEMPTS, UNSENT_HOLD_MS } from '../../agent/proxy/transparent-retry.ts';
import { WAITING_RETRY_MS } from '../../agent/upstream/upstream-pool.ts';
import type { UpstreamPool } from '../../agent/upstream/upstream-pool.ts';
import { waitFor } from '../../lab/wait-for.ts';
import { FakeTimers } from '../support/fake-timers.ts';

const KEY = 'default/greeter:50051';
const AUTHORITY = 'greeter.default.svc.cluster.local:50051';
const ADDRESS = '10.1.2.3:50051';

/** Everything the fakes were asked to do, in order. */
type Calls = string[];

interface Finished {
  status: number;
  code: string | null;
  message: string;
}

/** A picker that always answers the same endpoint (or none). */
function fixedPicker(endpoint: EndpointLoad | null): Picker {
  return { pick: () => endpoint } as unknown as Picker;
}

function routeTo(endpoint: EndpointLoad | null): Route {
  return { key: KEY, picker: endpoint === null ? EMPTY_PICKER : fixedPicker(endpoint) };
}

class Routes implements RouteTable {
  route: Route = routeTo(null);
  routeForKey(key: string): Route | null {
    return key === KEY ? this.route : null;
  }
  routeForAddress(): Route | null {
    return null;
  }
}

function requestHeaders(extra: string[] = []): string[] {
  return [':method', 'POST', ':scheme', 'http', ':path', '/test.Echo/Unary', ':authority', AUTHORITY, 'content-type', 'application/grpc', ...extra];
}

function recordingDownstream(calls: Calls, route: Route | null = null): DownstreamHttp2 {
  return {
    context: { route },
    sendHeaders(stream: Stream, headers: readonly string[], endStream: boolean) {
      calls.push(`down headers ${stream.id} ${headers.join(',')}${endStream ? ' end' : ''}`);
    },
    sendTrailers(stream: Stream, headers: readonly string[]) {
      calls.push(`down trailers ${stream.id} ${headers.join(',')}`);
    },
    sendData(stream: Stream, data: Buffer, endStream: boolean) {
      calls.push(`down data ${stream.id} "${data}"${endStream ? ' end' : ''}`);
    },
    resetAfterQueued(stream: Stream, code: number) {
      calls.push(`down resetAfterQueued ${stream.id} ${code}`);
    },
    consume(stream: Stream, bytes: number) {
      calls.push(`down consume ${stream.id} ${bytes}`);
    },
  } as unknown as DownstreamHttp2;
}

/** The owner an upstream connection reports to (the real one is the UpstreamConnection). */
function recordingOwner(calls: Calls) {
  return {
    resetBudget: { take: () => true },
    onStreamEnded() {
      calls.push('owner streamEnded');
    },
    onPeerGoaway() {
      calls.push('owner peerGoaway');
    },
    onClosed(error: string | null) {
      calls.push(`owner closed ${error}`);
    },
  };
}

interface UpstreamFake {
  connection: ExchangeUpstream;
  /** Whether openStream refuses (the connection's stream limit is reached). */
  full: boolean;
  lifecycle: ConnectionState;
}

/** An upstream connection that opens streams 1, 3, 5... as the real one does: END_STREAM on HEADERS half-closes. */
function recordingUpstream(calls: Calls, withOwner = true): UpstreamFake {
  let nextId = 1;
  const fake: UpstreamFake = { connection: null as unknown as ExchangeUpstream, full: false, lifecycle: { state: 'open' } };
  fake.connection = {
    context: withOwner ? recordingOwner(calls) : null,
    get lifecycle() {
      return fake.lifecycle;
    },
    openStream(headers: readonly string[], endStream: boolean) {
      calls.push(`up open ${headers.join(',')}${endStream ? ' end' : ''}`);
      if (fake.full) return null;
      const stream = new Stream<Exchange>(nextId, false, 65_535, 65_535);
      nextId += 2;
      stream.state = endStream ? 'half-closed-local' : 'open';
      return stream;
    },
    sendData(stream: Stream, data: Buffer, endStream: boolean) {
      calls.push(`up data ${stream.id} "${data}"${endStream ? ' end' : ''}`);
      if (endStream) stream.endAfterQueue = true;
    },
    resetStream(stream: Stream, code: number) {
      calls.push(`up reset ${stream.id} ${code}`);
    },
    consume(stream: Stream | null, bytes: number) {
      calls.push(`up consume ${stream?.id} ${bytes}`);
    },
  } as unknown as ExchangeUpstream;
  return fake;
}

/** An endpoint as the balancer sees it, recording the reports the relay makes. */
function recordingEndpoint(calls: Calls): EndpointLoad {
  const load = new EndpointLoad(ADDRESS);
  const onStart = load.onStart.bind(load);
  load.onStart = () => {
    calls.push('endpoint start');
    onStart();
  };
  load.onFinish = () => {
    calls.push('endpoint finish');
    load.inFlight--;
  };
  load.onFailure = () => {
    calls.push('endpoint failure');
    load.inFlight--;
  };
  load.onCancel = () => {
    calls.push('endpoint cancel');
    load.inFlight--;
  };
  return load;
}

function recordingPool(calls: Calls, address = ADDRESS): UpstreamPool<Exchange> {
  return {
    address,
    wait(waiter: Exchange) {
      calls.push(`pool wait ${waiter.phase}`);
    },
    cancelWait(waiter: Exchange) {
      calls.push(`pool cancelWait ${waiter.phase}`);
    },
  } as unknown as UpstreamPool<Exchange>;
}

function setup() {
  const calls: Calls = [];
  const finished: Finished[] = [];
  const rejected: Finished[] = [];
  const states: string[] = [];
  const retries: string[] = [];
  const responseStarts: Exchange[] = [];
  const clock = new FakeTimers();
  clock.advance(1000);
  const routes = new Routes();
  const relay = new Relay({
    routes,
    authority: new AuthorityParser('cluster.local'),
    clock,
    random: () => 0,
    connectTimeoutMs: 2000,
    maxConnectionsPerEndpoint: 1,
    streamHeadroom: 8,
    observer: {
      onExchangeFinished: (_exchange, status, code, message) => finished.push({ status, code, message }),
      onRequestRejected: (status, code, message) => rejected.push({ status, code, message }),
      onUpstreamConnectionState: (pool, connection, previous) => states.push(`${pool.address} ${previous} -> ${connection.state.state}`),
      onTransparentRetry: (_exchange, reason) => retries.push(reason),
      onResponseStarted: (exchange) => responseStarts.push(exchange),
    },
  });
  const downstream = recordingDownstream(calls);
  let nextStreamId = 1;
  const clientStream = () => {
    const stream = new Stream<Exchange>(nextStreamId, true, 65_535, 65_535);
    nextStreamId += 2;
    return stream;
  };
  /** An exchange as startExchange makes it, without dispatching it: waiting, on a recording pool and endpoint. */
  const waitingExchange = (headers = requestHeaders()) => {
    const stream = clientStream();
    const exchange = new Exchange(relay, downstream, stream, routes.route, headers, clock.now());
    stream.context = exchange;
    exchange.pool = recordingPool(calls);
    exchange.endpoint = recordingEndpoint(calls);
    return exchange;
  };
  /** An exchange relaying on a recording upstream connection. */
  const relayingExchange = (fake = recordingUpstream(calls)) => {
    const exchange = waitingExchange();
    relay.onUpstreamReady(exchange, fake.connection);
    assert.equal(exchange.phase, 'relaying');
    calls.length = 0;
    return { exchange, fake, upstreamStream: exchange.upstreamStream as Stream<Exchange> };
  };
  return { calls, finished, rejected, states, retries, responseStarts, clock, routes, relay, downstream, clientStream, waitingExchange, relayingExchange };
}

const UNAVAILABLE = 14;
const CANCELLED = 1;
const INTERNAL = 13;
const DEADLINE_EXCEEDED = 4;

describe('startExchange and dispatch', () => {
  it('a route with no endpoint: Trailers-Only UNAVAILABLE naming the service, one attempt, ML_NO_ENDPOINT', () => {
    const { calls, finished, relay, downstream, clientStream } = setup();
    const stream = clientStream();
    relay.startExchange(downstream, stream, requestHeaders(), true);
    const exchange = stream.context as Exchange;
    const message = `no ready endpoint for ${KEY}`;
    assert.deepEqual(calls, [`down headers 1 ${trailersOnly(UNAVAILABLE, message).join(',')} end`]);
    assert.deepEqual(finished, [{ status: UNAVAILABLE, code: 'ML_NO_ENDPOINT', message }]);
    assert.equal(exchange.attempts, 1);
    assert.equal(exchange.phase, 'finished');
    assert.deepEqual(exchange.body, []);
  });

  it("a connection's route (transparent mode) wins over :authority; no context at all means explicit mode", () => {
    const { calls, finished, rejected, routes, relay, clientStream } = setup();
    const routed = recordingDownstream(calls, routes.route);
    const stream = clientStream();
    relay.startExchange(routed, stream, requestHeaders().map((v) => (v === AUTHORITY ? 'nosuch.other.svc:1' : v)), true);
    assert.deepEqual(rejected, []);
    assert.deepEqual(finished.map((f) => f.code), ['ML_NO_ENDPOINT']);
    const bare = recordingDownstream(calls);
    (bare as { context: unknown }).context = null;
    relay.startExchange(bare, clientStream(), requestHeaders(), true);
    assert.deepEqual(finished.map((f) => f.code), ['ML_NO_ENDPOINT', 'ML_NO_ENDPOINT']);
  });

  it('a rejected request gets the status of its error code: INTERNAL for a bad grpc-timeout', () => {
    const { calls, rejected, relay, downstream, clientStream } = setup();
    relay.startExchange(downstream, clientStream(), requestHeaders(['grpc-timeout', 'xx']), true);
    const message = 'invalid grpc-timeout "xx"';
    assert.deepEqual(rejected, [{ status: INTERNAL, code: 'ML_BAD_TIMEOUT', message }]);
    assert.deepEqual(calls, [`down headers 1 ${trailersOnly(INTERNAL, message).join(',')} end`]);
  });

  it('grpc-timeout 0 is a deadline that has already come: it is queued, and the request is never sent upstream', () => {
    const { calls, finished, clock, routes, relay, downstream, clientStream } = setup();
    const endpoint = recordingEndpoint(calls);
    routes.route = routeTo(endpoint);
    const stream = clientStream();
    relay.startExchange(downstream, stream, requestHeaders(['grpc-timeout', '0m']), true);
    const exchange = stream.context as Exchange;
    assert.equal(exchange.deadlineAt, clock.now());
    assert.equal(relay.deadlines.size, 1);
    assert.deepEqual(calls, ['endpoint start'], 'the balancer counts the attempt in flight');
    assert.equal(endpoint.inFlight, 1);
    assert.equal(exchange.pool?.address, ADDRESS);
    // The connection becomes ready only now: the deadline has passed, so nothing goes upstream.
    const upstream = recordingUpstream(calls);
    relay.onUpstreamReady(exchange, upstream.connection);
    assert.deepEqual(finished, [{ status: DEADLINE_EXCEEDED, code: 'ML_DEADLINE', message: 'deadline exceeded in meshlite' }]);
    assert.ok(!calls.some((c) => c.startsWith('up open')), calls.join('\n'));
    assert.equal(relay.deadlines.size, 0);
    relay.close();
  });

  it('a refused port: the request is held, tried again at each of the pool\'s attempts, then UNAVAILABLE after UNSENT_HOLD_MS naming the endpoint and the reason, ML_CONNECT_FAILED', async () => {
    const { calls, clock, finished, states, retries, routes, relay, downstream, clientStream } = setup();
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    await new Promise((resolve) => server.close(resolve));
    const endpoint = new EndpointLoad(address);
    routes.route = routeTo(endpoint);
    const stream = clientStream();
    try {
      relay.startExchange(downstream, stream, requestHeaders(['grpc-timeout', '10S']), true);
      const exchange = stream.context as Exchange;
      // Each refused connect sends the request around again, to wait for the pool's next attempt WAITING_RETRY_MS later.
      for (let tries = 1; finished.length === 0; tries++) {
        await waitFor(() => exchange.attempts > tries || finished.length > 0, { timeoutMs: 5000, message: `connect ${tries} refused` });
        if (finished.length === 0) clock.advance(WAITING_RETRY_MS);
      }
      const attempts = UNSENT_HOLD_MS / WAITING_RETRY_MS + 1;
      assert.equal(exchange.attempts, attempts);
      assert.deepEqual(retries, Array(attempts - 1).fill('connect_failed'), 'each try after the first is a transparent retry');
      assert.equal(finished[0].status, UNAVAILABLE);
      assert.equal(finished[0].code, 'ML_CONNECT_FAILED');
      assert.match(finished[0].message, new RegExp(`^connect to ${address} for ${KEY} failed: .+`));
      assert.deepEqual(calls, [`down headers 1 ${trailersOnly(UNAVAILABLE, finished[0].message).join(',')} end`]);
      assert.equal(endpoint.inFlight, 0, 'every attempt was reported back to the balancer');
      assert.ok(states.includes(`${address} null -> connecting`), states.join('\n'));
    } finally {
      relay.close();
    }
  });

  it('close() stops the deadline timer; drainEndpoint() drains and forgets the pool', () => {
    const { clock, relay, waitingExchange } = setup();
    const exchange = waitingExchange();
    exchange.deadlineAt = clock.now() + 500;
    relay.deadlines.add(exchange);
    const pool = relay.pools.poolFor(ADDRESS);
    assert.equal(clock.activeCount, 1);
    relay.drainEndpoint(ADDRESS);
    assert.equal(relay.pools.get(ADDRESS), undefined);
    assert.notEqual(pool.state, 'active');
    relay.close();
    assert.equal(relay.deadlines.size, 0);
    assert.equal(clock.activeCount, 0);
  });
});

describe('onUpstreamReady', () => {
  it('a request with no body goes as HEADERS with END_STREAM, and nothing else', () => {
    const { calls, relay, waitingExchange } = setup();
    const exchange = waitingExchange();
    exchange.requestEnded = true;
    const upstream = recordingUpstream(calls);
    relay.onUpstreamReady(exchange, upstream.connection);
    assert.deepEqual(calls, [`up open ${requestHeaders().join(',')} end`]);
    assert.equal(exchange.phase, 'relaying');
    assert.equal(exchange.upstream, upstream.connection);
    assert.equal(exchange.upstreamStream?.context, exchange);
  });

  it('a request with a body: HEADERS without END_STREAM, then the body', () => {
    const { calls, relay, waitingExchange } = setup();
    const exchange = waitingExchange();
    relay.forwardRequestData(exchange, Buffer.from('hi'), true);
    relay.onUpstreamReady(exchange, recordingUpstream(calls).connection);
    assert.deepEqual(calls, [`up open ${requestHeaders().join(',')}`, 'up data 1 "hi" end']);
  });

  it('a connection that cannot take the stream after all: the exchange waits on its pool again', () => {
    const { calls, relay, waitingExchange } = setup();
    const exchange = waitingExchange();
    const upstream = recordingUpstream(calls);
    upstream.full = true;
    relay.onUpstreamReady(exchange, upstream.connection);
    assert.deepEqual(calls, [`up open ${requestHeaders().join(',')}`, 'pool wait waiting']);
    assert.equal(exchange.phase, 'waiting');
    exchange.pool = null;
    relay.onUpstreamReady(exchange, upstream.connection);
    assert.equal(exchange.phase, 'waiting');
  });

  it('an exchange that is no longer waiting opens no stream', () => {
    const { calls, relay, waitingExchange } = setup();
    const exchange = waitingExchange();
    exchange.phase = 'finished';
    relay.onUpstreamReady(exchange, recordingUpstream(calls).connection);
    assert.deepEqual(calls, []);
  });
});

describe('onUpstreamFailed', () => {
  it('held less than UNSENT_HOLD_MS: charges the endpoint and tries again, however many attempts were made (here: no endpoint left)', () => {
    const { calls, clock, finished, waitingExchange } = setup();
    const exchange = waitingExchange();
    exchange.attempts = MAX_ATTEMPTS;
    clock.advance(UNSENT_HOLD_MS - 1);
    exchange.onUpstreamFailed('ECONNREFUSED');
    assert.equal(exchange.attempts, MAX_ATTEMPTS + 1);
    assert.deepEqual(calls.slice(0, 1), ['endpoint failure']);
    assert.deepEqual(finished, [{ status: UNAVAILABLE, code: 'ML_NO_ENDPOINT', message: `no ready endpoint for ${KEY}` }]);
  });

  it('held UNSENT_HOLD_MS: UNAVAILABLE naming endpoint, service and reason (no pool: "undefined")', () => {
    const { calls, clock, finished, relay, waitingExchange } = setup();
    const exchange = waitingExchange();
    const orphan = waitingExchange();
    clock.advance(UNSENT_HOLD_MS);
    relay.onUpstreamFailed(exchange, 'ECONNREFUSED');
    const message = `connect to ${ADDRESS} for ${KEY} failed: ECONNREFUSED`;
    assert.deepEqual(finished, [{ status: UNAVAILABLE, code: 'ML_CONNECT_FAILED', message }]);
    assert.deepEqual(calls, ['endpoint failure', `down headers 1 ${trailersOnly(UNAVAILABLE, message).join(',')} end`]);
    orphan.pool = null;
    relay.onUpstreamFailed(orphan, 'x');
    assert.equal(finished[1].message, `connect to undefined for ${KEY} failed: x`);
  });

  it('is ignored once the exchange relays or finished', () => {
    const { calls, finished, relay, waitingExchange } = setup();
    for (const phase of ['relaying', 'finished'] as const) {
      const exchange = waitingExchange();
      exchange.phase = phase;
      exchange.attempts = MAX_ATTEMPTS;
      relay.onUpstreamFailed(exchange, 'x');
      assert.equal(exchange.phase, phase);
    }
    assert.deepEqual(calls, []);
    assert.deepEqual(finished, []);
  });
});

describe('onDeadline, responseEnded, clientCancelled', () => {
  it('are ignored once the exchange finished', () => {
    const { calls, finished, relay, relayingExchange } = setup();
    const { exchange, upstreamStream } = relayingExchange();
    upstreamStream.state = 'half-closed-local'; // the whole request went upstream
    relay.responseEnded(exchange, 0);
    assert.deepEqual(finished, [{ status: 0, code: null, message: '' }]);
    assert.deepEqual(calls, ['endpoint finish']);
    relay.responseEnded(exchange, 2);
    relay.onDeadline(exchange);
    relay.clientCancelled(exchange);
    assert.deepEqual(finished, [{ status: 0, code: null, message: '' }]);
    assert.deepEqual(calls, ['endpoint finish']);
  });

  it('finish takes the exchange out of the deadline queue (and only it), and drops the held body', () => {
    const { clock, relay, relayingExchange, waitingExchange } = setup();
    const others = [waitingExchange(), waitingExchange()];
    for (const other of others) {
      other.deadlineAt = clock.now() + 100;
      relay.deadlines.add(other);
    }
    const { exchange } = relayingExchange();
    exchange.deadlineAt = clock.now() + 50;
    relay.deadlines.add(exchange);
    exchange.body = [Buffer.from('held')];
    relay.responseEnded(exchange, 0);
    assert.equal(exchange.phase, 'finished');
    assert.deepEqual(exchange.body, []);
    assert.equal(relay.deadlines.size, 2);
    // An exchange that never had a deadline leaves the queue alone when it finishes.
    const plain = relayingExchange().exchange;
    relay.responseEnded(plain, 0);
    assert.equal(relay.deadlines.size, 2);
    assert.deepEqual(others.map((o) => o.deadlineIndex).sort(), [0, 1]);
  });

  it('a client cancel resets the upstream stream, tells the balancer it was a cancel, and ends as CANCELLED', () => {
    const { calls, finished, relay, relayingExchange } = setup();
    const { exchange, upstreamStream } = relayingExchange();
    relay.clientCancelled(exchange);
    assert.deepEqual(calls, [`up reset ${upstreamStream.id} ${ErrorCode.CANCEL}`, 'endpoint cancel']);
    assert.deepEqual(finished, [{ status: CANCELLED, code: 'ML_CLIENT_CANCELLED', message: 'cancelled by the client' }]);
    assert.equal(exchange.upstreamStream, null);
  });
});

describe('upstreamStreamReset', () => {
  it('after the response finished: a NO_ERROR reset is passed to the client behind the data; others are not', () => {
    const { calls, finished, relay, relayingExchange } = setup();
    const { exchange, fake } = relayingExchange();
    relay.responseEnded(exchange, 0);
    calls.length = 0;
    relay.upstreamStreamReset(exchange, fake.connection, ErrorCode.CANCEL);
    assert.deepEqual(calls, []);
    relay.upstreamStreamReset(exchange, fake.connection, ErrorCode.NO_ERROR);
    assert.deepEqual(calls, [`down resetAfterQueued 1 ${ErrorCode.NO_ERROR}`]);
    assert.equal(finished.length, 1);
  });

  it('REFUSED_STREAM with attempts left: charged, detached, and tried again (a transparent retry)', () => {
    const { calls, finished, retries, relay, relayingExchange } = setup();
    const { exchange, fake, upstreamStream } = relayingExchange();
    exchange.attempts = 1;
    relay.upstreamStreamReset(exchange, fake.connection, ErrorCode.REFUSED_STREAM);
    assert.equal(exchange.attempts, 2);
    assert.equal(upstreamStream.context, null);
    assert.equal(exchange.upstream, null);
    assert.deepEqual(calls.slice(0, 1), ['endpoint failure']);
    assert.deepEqual(finished.map((f) => f.code), ['ML_NO_ENDPOINT']);
    assert.deepEqual(retries, ['refused_stream']);
  });

  it('REFUSED_STREAM on the last attempt: an agent-made error, ML_UPSTREAM_RESET naming the endpoint, no retry', () => {
    const { calls, finished, retries, relay, relayingExchange } = setup();
    const { exchange, fake } = relayingExchange();
    exchange.attempts = MAX_ATTEMPTS;
    relay.upstreamStreamReset(exchange, fake.connection, ErrorCode.REFUSED_STREAM);
    const message = `upstream ${ADDRESS} refused the stream (REFUSED_STREAM)`;
    // UNAVAILABLE, as the gRPC HTTP/2 protocol maps REFUSED_STREAM: never processed, so a client may retry it.
    assert.deepEqual(finished.map((f) => [f.status, f.code, f.message]), [[UNAVAILABLE, 'ML_UPSTREAM_RESET', message]]);
    assert.deepEqual(calls, ['endpoint failure', `down headers 1 ${trailersOnly(finished[0].status, message).join(',')} end`]);
    assert.deepEqual(retries, []);
  });

  it('RST_STREAM(NO_ERROR) after response headers: the reset goes to the client behind the data; not charged on an open connection', () => {
    const { calls, finished, relay, relayingExchange } = setup();
    const { exchange, fake, upstreamStream } = relayingExchange();
    exchange.responseStarted = true;
    relay.upstreamStreamReset(exchange, fake.connection, ErrorCode.NO_ERROR);
    assert.deepEqual(calls, [`down resetAfterQueued 1 ${ErrorCode.NO_ERROR}`, 'endpoint finish']);
    assert.deepEqual(finished, [{ status: INTERNAL, code: null, message: 'response ended by RST_STREAM(NO_ERROR) without trailers' }]);
    assert.equal(upstreamStream.context, null);
  });

  it('a lost connection: UNAVAILABLE, ML_UPSTREAM_CONNECTION_LOST, charged', () => {
    const { calls, finished, relay, relayingExchange } = setup();
    const { exchange, fake } = relayingExchange();
    fake.lifecycle = { state: 'closed', error: new Http2ConnectionError(ErrorCode.INTERNAL_ERROR, 'gone', true) };
    relay.upstreamStreamReset(exchange, fake.connection, ErrorCode.CANCEL);
    const message = `connection to ${ADDRESS} lost`;
    assert.deepEqual(finished, [{ status: UNAVAILABLE, code: 'ML_UPSTREAM_CONNECTION_LOST', message }]);
    assert.deepEqual(calls, ['endpoint failure', `down headers 1 ${trailersOnly(UNAVAILABLE, message).join(',')} end`]);
  });

  it('the endpoint resets the stream: the matching status as trailers after the response headers, not charged', () => {
    const { calls, finished, relay, relayingExchange } = setup();
    const { exchange, fake } = relayingExchange();
    exchange.responseStarted = true;
    relay.upstreamStreamReset(exchange, fake.connection, ErrorCode.CANCEL);
    const message = `upstream ${ADDRESS} reset the stream (CANCEL)`;
    assert.deepEqual(calls, [`down trailers 1 ${statusTrailers(CANCELLED, message).join(',')}`, 'endpoint finish']);
    assert.deepEqual(finished, [{ status: CANCELLED, code: 'ML_UPSTREAM_RESET', message }]);
  });
});

describe('DownstreamHandler', () => {
  it('request trailers end the body of a relaying exchange: END_STREAM goes upstream', () => {
    const { calls, relay, downstream, relayingExchange } = setup();
    const { exchange } = relayingExchange();
    relay.downstreamHandler.onHeaders(downstream, exchange.downstreamStream, ['x-trailer', '1'], true, true);
    assert.equal(exchange.requestEnded, true);
    assert.deepEqual(calls, ['up data 1 "" end']);
  });

  it('request trailers on a finished exchange or a stream without one do nothing', () => {
    const { calls, finished, relay, downstream, relayingExchange, clientStream } = setup();
    const { exchange } = relayingExchange();
    relay.responseEnded(exchange, 0);
    calls.length = 0;
    relay.downstreamHandler.onHeaders(downstream, exchange.downstreamStream, ['x-trailer', '1'], true, true);
    assert.equal(exchange.requestEnded, false);
    relay.downstreamHandler.onHeaders(downstream, clientStream(), ['x-trailer', '1'], true, true);
    assert.deepEqual(calls, []);
    assert.equal(finished.length, 1);
  });

  it('request DATA after the outcome is dropped and its window credited; before, it goes upstream', () => {
    const { calls, relay, downstream, relayingExchange, clientStream } = setup();
    const { exchange } = relayingExchange();
    relay.downstreamHandler.onData(downstream, exchange.downstreamStream, Buffer.from('abc'), false);
    assert.deepEqual(calls, ['up data 1 "abc"']);
    relay.responseEnded(exchange, 0);
    calls.length = 0;
    relay.downstreamHandler.onData(downstream, exchange.downstreamStream, Buffer.from('defg'), false);
    const orphan = clientStream();
    relay.downstreamHandler.onData(downstream, orphan, Buffer.from('hi'), true);
    assert.deepEqual(calls, ['down consume 1 4', `down consume ${orphan.id} 2`]);
  });

  it('a client reset cancels the exchange; a stream without one is ignored', () => {
    const { finished, relay, downstream, relayingExchange, clientStream } = setup();
    relay.downstreamHandler.onStreamReset(downstream, clientStream());
    assert.deepEqual(finished, []);
    const { exchange } = relayingExchange();
    relay.downstreamHandler.onStreamReset(downstream, exchange.downstreamStream);
    assert.deepEqual(finished, [{ status: CANCELLED, code: 'ML_CLIENT_CANCELLED', message: 'cancelled by the client' }]);
  });

  it('response bytes that reached the client are credited to the upstream stream, only while it is attached', () => {
    const { calls, relay, downstream, relayingExchange, waitingExchange, clientStream } = setup();
    const { exchange, fake, upstreamStream } = relayingExchange();
    relay.downstreamHandler.onDataSent(downstream, exchange.downstreamStream, 100);
    assert.deepEqual(calls, [`up consume ${upstreamStream.id} 100`]);
    calls.length = 0;
    relay.downstreamHandler.onDataSent(downstream, clientStream(), 5);
    relay.downstreamHandler.onDataSent(downstream, waitingExchange().downstreamStream, 6);
    // Half-attached states the relay never makes, each side alone: still nothing is credited.
    exchange.upstream = null;
    relay.downstreamHandler.onDataSent(downstream, exchange.downstreamStream, 7);
    exchange.upstream = fake.connection;
    exchange.upstreamStream = null;
    relay.downstreamHandler.onDataSent(downstream, exchange.downstreamStream, 8);
    assert.deepEqual(calls, []);
  });
});

describe('UpstreamHandler', () => {
  it('response headers end retries, are the first response byte, and go to the client; Trailers-Only ends the exchange with its grpc-status', () => {
    const { calls, finished, responseStarts, relay, relayingExchange } = setup();
    const { exchange, fake, upstreamStream } = relayingExchange();
    upstreamStream.state = 'half-closed-local'; // the whole request went upstream
    relay.upstreamHandler.onHeaders(fake.connection, upstreamStream, [':status', '200', 'grpc-status', '5'], true, false);
    assert.deepEqual(responseStarts, [exchange]);
    assert.equal(exchange.retryable, false);
    assert.equal(exchange.responseStarted, true);
    assert.deepEqual(calls, ['down headers 1 :status,200,grpc-status,5 end', 'endpoint finish']);
    assert.deepEqual(finished, [{ status: 5, code: null, message: '' }]);
  });

  it('a response that ends while the request is still going upstream resets the upstream stream (CANCEL): the rest is not wanted', () => {
    const { calls, finished, relay, relayingExchange } = setup();
    const { exchange, fake, upstreamStream } = relayingExchange();
    upstreamStream.state = 'half-closed-remote'; // the endpoint ended its side; ours is open
    relay.upstreamHandler.onHeaders(fake.connection, upstreamStream, [':status', '200', 'grpc-status', '16'], true, false);
    assert.deepEqual(calls, ['down headers 1 :status,200,grpc-status,16 end', 'up reset 1 8', 'endpoint finish']);
    assert.deepEqual(finished, [{ status: 16, code: null, message: '' }]);
    assert.equal(exchange.upstreamStream, null, 'detached: what the endpoint still sends is read and discarded');
  });

  it('a missing, empty, malformed, negative, fractional or non-decimal grpc-status is INTERNAL', () => {
    for (const value of [null, '', ' ', 'abc', '-1', '1.5', '0x1', '1e0', ' 0']) {
      const { finished, responseStarts, relay, relayingExchange } = setup();
      const { fake, upstreamStream } = relayingExchange();
      const trailers = value === null ? ['x-other', '1'] : ['grpc-status', value];
      relay.upstreamHandler.onHeaders(fake.connection, upstreamStream, [':status', '200'], false, false);
      relay.upstreamHandler.onHeaders(fake.connection, upstreamStream, trailers, true, true);
      assert.equal(responseStarts.length, 1, 'trailers are not a first byte');
      assert.deepEqual(finished, [{ status: INTERNAL, code: null, message: '' }], `grpc-status ${value}`);
    }
  });

  it('DATA with END_STREAM ends the response as INTERNAL (no trailers)', () => {
    const { calls, finished, relay, relayingExchange } = setup();
    const { fake, upstreamStream } = relayingExchange();
    relay.upstreamHandler.onData(fake.connection, upstreamStream, Buffer.from('x'), false);
    assert.deepEqual(finished, []);
    relay.upstreamHandler.onData(fake.connection, upstreamStream, Buffer.from('y'), true);
    assert.deepEqual(calls.slice(0, 2), ['down data 1 "x"', 'down data 1 "y" end']);
    assert.deepEqual(finished, [{ status: INTERNAL, code: null, message: '' }]);
  });

  it('events of an orphaned stream (no exchange): headers ignored, DATA read and credited, resets only end the stream', () => {
    const { calls, finished, relay } = setup();
    const fake = recordingUpstream(calls);
    const orphan = new Stream<Exchange>(9, false, 65_535, 65_535);
    relay.upstreamHandler.onHeaders(fake.connection, orphan, [':status', '200'], false, false);
    relay.upstreamHandler.onData(fake.connection, orphan, Buffer.from('abc'), false);
    relay.upstreamHandler.onStreamReset(fake.connection, orphan, ErrorCode.CANCEL);
    relay.upstreamHandler.onDataSent(fake.connection, orphan, 3);
    assert.deepEqual(calls, ['up consume 9 3', 'owner streamEnded']);
    assert.deepEqual(finished, []);
  });

  it('request bytes the endpoint took are credited to the client window', () => {
    const { calls, relay, relayingExchange } = setup();
    const { fake, upstreamStream } = relayingExchange();
    relay.upstreamHandler.onDataSent(fake.connection, upstreamStream, 10);
    assert.deepEqual(calls, ['down consume 1 10']);
  });

  it("connection events reach the connection's owner, and are safe without one", () => {
    const { calls, relay } = setup();
    const fake = recordingUpstream(calls);
    const stream = new Stream<Exchange>(9, false, 65_535, 65_535);
    relay.upstreamHandler.onStreamClose(fake.connection);
    relay.upstreamHandler.onGoaway(fake.connection);
    relay.upstreamHandler.onConnectionClose(fake.connection, null);
    relay.upstreamHandler.onConnectionClose(fake.connection, new Http2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'bad frame', false));
    assert.deepEqual(calls, ['owner streamEnded', 'owner peerGoaway', 'owner closed null', 'owner closed bad frame']);
    const bare = recordingUpstream(calls, false);
    relay.upstreamHandler.onStreamClose(bare.connection);
    relay.upstreamHandler.onStreamReset(bare.connection, stream, ErrorCode.CANCEL);
    relay.upstreamHandler.onGoaway(bare.connection);
    relay.upstreamHandler.onConnectionClose(bare.connection, null);
    assert.equal(calls.length, 4);
  });
});

describe('Exchange', () => {
  it('forwards pool and deadline events to its driver, and starts outside the deadline queue', () => {
    const seen: string[] = [];
    const driver = {
      onUpstreamReady: (e: Exchange) => seen.push(`ready ${e.attempts}`),
      onUpstreamFailed: (e: Exchange, reason: string) => seen.push(`failed ${e.attempts} ${reason}`),
      onDeadline: (e: Exchange) => seen.push(`deadline ${e.attempts}`),
    };
    const exchange = new Exchange(driver, {} as DownstreamHttp2, new Stream<Exchange>(1, true, 65_535, 65_535), routeTo(null), [], 0);
    assert.equal(exchange.deadlineIndex, -1);
    exchange.onUpstreamReady({} as ExchangeUpstream);
    exchange.onUpstreamFailed('ECONNREFUSED');
    exchange.onDeadline();
    assert.deepEqual(seen, ['ready 0', 'failed 0 ECONNREFUSED', 'deadline 0']);
  });
});
