// The relay's own deadline handling on a fake clock: the exact time left goes upstream, and the agent ends a call its backend ignores.

import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { waitFor } from '../../lab/wait-for.ts';
import { FakeTimers } from '../support/fake-timers.ts';
import { type RelayHarness, SERVICE_AUTHORITY, startRelay } from '../support/relay-harness.ts';

const DEADLINE_EXCEEDED = '4';
const CANCEL = http2.constants.NGHTTP2_CANCEL;

/** A node:http2 backend that ignores grpc-timeout: it holds every stream until the test answers it. */
interface HoldingBackend {
  address: string;
  /** The grpc-timeout of every request that reached it, in arrival order (null: none). */
  timeouts: Array<string | null>;
  held: http2.ServerHttp2Stream[];
  /** Called for each stream as it arrives; returns false to leave the stream to the hook. */
  onStream: ((stream: http2.ServerHttp2Stream) => boolean) | null;
  answerOldest(): void;
  close(): Promise<void>;
}

async function startHoldingBackend(settings: http2.Settings = {}): Promise<HoldingBackend> {
  const server = http2.createServer({ settings });
  const sessions: http2.ServerHttp2Session[] = [];
  server.on('session', (session) => sessions.push(session));
  const backend: HoldingBackend = {
    address: '',
    timeouts: [],
    held: [],
    onStream: null,
    answerOldest() {
      const stream = backend.held.shift();
      if (stream === undefined) throw new Error('no stream held');
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '0' }, { endStream: true });
    },
    async close() {
      for (const session of sessions) session.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    const timeout = headers['grpc-timeout'];
    backend.timeouts.push(typeof timeout === 'string' ? timeout : null);
    if (backend.onStream === null || backend.onStream(stream)) backend.held.push(stream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  backend.address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return backend;
}

interface Answer {
  headers: Record<string, unknown>;
  /** When the agent or the backend ended the call. */
  ended: Promise<Record<string, unknown>>;
}

/** A unary call from a raw HTTP/2 client: it sends grpc-timeout exactly as given and enforces nothing itself. */
function call(session: http2.ClientHttp2Session, grpcTimeout: string | null): Answer {
  const headers: http2.OutgoingHttpHeaders = {
    ':method': 'POST',
    ':path': '/test.Echo/Unary',
    ':authority': SERVICE_AUTHORITY,
    'content-type': 'application/grpc',
    te: 'trailers',
  };
  if (grpcTimeout !== null) headers['grpc-timeout'] = grpcTimeout;
  const request = session.request(headers);
  request.on('error', () => {});
  const answer: Answer = { headers: {}, ended: Promise.resolve({}) };
  answer.ended = new Promise((resolve) => {
    request.on('response', (h) => Object.assign(answer.headers, h));
    request.on('trailers', (t) => Object.assign(answer.headers, t));
    request.on('data', () => {});
    request.on('close', () => resolve(answer.headers));
  });
  request.end(Buffer.from([0, 0, 0, 0, 1, 120]));
  return answer;
}

async function setup(settings: http2.Settings = {}) {
  const clock = new FakeTimers();
  const backend = await startHoldingBackend(settings);
  const harness: RelayHarness = await startRelay([backend.address], undefined, { clock, maxConnectionsPerEndpoint: 1 });
  const session = http2.connect(`http://127.0.0.1:${harness.port}`);
  session.on('error', () => {});
  return {
    clock,
    backend,
    harness,
    session,
    close: async () => {
      session.destroy();
      await harness.close();
      await backend.close();
    },
  };
}

test('a request that waits for a stream: the backend is sent exactly the time left, not the client\'s grpc-timeout', async () => {
  // One connection, one stream at a time: the second request waits until the first one ends.
  const { clock, backend, harness, session, close } = await setup({ maxConcurrentStreams: 1 });
  try {
    // A first call answered: the agent has the backend's SETTINGS (1 stream) before the test begins.
    const warm = call(session, null);
    await waitFor(() => backend.held.length === 1, { message: 'warm-up call at the backend' });
    backend.answerOldest();
    assert.equal((await warm.ended)['grpc-status'], '0');

    const first = call(session, null);
    await waitFor(() => backend.held.length === 1, { message: 'first call at the backend' });
    const second = call(session, '3S');
    await waitFor(() => harness.relay.deadlines.size === 1, { message: 'second call admitted' });
    assert.equal(backend.timeouts.length, 2, 'the second call waits for the stream');
    clock.advance(1234);
    backend.answerOldest();
    await waitFor(() => backend.timeouts.length === 3, { message: 'second call at the backend' });
    assert.deepEqual(backend.timeouts, [null, null, '1766000u']);
    assert.equal((await first.ended)['grpc-status'], '0');
    backend.answerOldest();
    assert.equal((await second.ended)['grpc-status'], '0');
    assert.deepEqual(harness.outcomes, [
      { status: 0, code: null },
      { status: 0, code: null },
      { status: 0, code: null },
    ]);
  } finally {
    await close();
  }
});

test('a refused attempt sent again: each attempt carries the time left when it leaves', async () => {
  const { clock, backend, harness, session, close } = await setup();
  try {
    // The first attempt is refused after 500 ms (REFUSED_STREAM: never processed, so the agent may send it again).
    let attempts = 0;
    backend.onStream = (stream) => {
      if (++attempts > 1) return true;
      clock.advance(500);
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return false;
    };
    const answer = call(session, '3S');
    await waitFor(() => backend.held.length === 1, { message: 'second attempt at the backend' });
    assert.deepEqual(backend.timeouts, ['3000000u', '2500000u']);
    backend.answerOldest();
    assert.equal((await answer.ended)['grpc-status'], '0');
    assert.deepEqual(harness.outcomes, [{ status: 0, code: null }]);
  } finally {
    await close();
  }
});

test('the agent enforces grpc-timeout itself: a backend that ignores it and never answers gets a cancel, the client DEADLINE_EXCEEDED', async () => {
  const { clock, backend, harness, session, close } = await setup();
  try {
    const answer = call(session, '100m');
    await waitFor(() => backend.held.length === 1, { message: 'call at the backend' });
    const atBackend = backend.held[0];
    assert.deepEqual(backend.timeouts, ['100000u']);
    clock.advance(99);
    assert.deepEqual(harness.outcomes, [], 'not before the deadline');
    clock.advance(1);
    assert.deepEqual(harness.outcomes, [{ status: 4, code: 'ML_DEADLINE' }]);
    const ended = await answer.ended;
    assert.equal(ended[':status'], 200);
    assert.equal(ended['grpc-status'], DEADLINE_EXCEEDED);
    assert.equal(ended['grpc-message'], 'deadline exceeded in meshlite');
    await waitFor(() => atBackend.closed, { message: 'the backend saw its stream end' });
    assert.equal(atBackend.rstCode, CANCEL, 'the agent cancelled the stream at the backend');
  } finally {
    await close();
  }
});

test('a deadline that passes while the request waits for a stream: DEADLINE_EXCEEDED, and the request never goes upstream', async () => {
  const { clock, backend, harness, session, close } = await setup({ maxConcurrentStreams: 1 });
  try {
    const warm = call(session, null);
    await waitFor(() => backend.held.length === 1, { message: 'warm-up call at the backend' });
    backend.answerOldest();
    await warm.ended;
    const first = call(session, null);
    await waitFor(() => backend.held.length === 1, { message: 'first call at the backend' });
    const waiting = call(session, '2S');
    await waitFor(() => harness.relay.deadlines.size === 1, { message: 'second call admitted' });
    clock.advance(2000);
    assert.deepEqual(harness.outcomes.slice(1), [{ status: 4, code: 'ML_DEADLINE' }]);
    assert.equal((await waiting.ended)['grpc-status'], DEADLINE_EXCEEDED);
    // The stream frees up: the expired request must not take it.
    backend.answerOldest();
    assert.equal((await first.ended)['grpc-status'], '0');
    const later = call(session, null);
    await waitFor(() => backend.held.length === 1, { message: 'a later call at the backend' });
    assert.deepEqual(backend.timeouts, [null, null, null], 'the expired call never reached the backend');
    backend.answerOldest();
    await later.ended;
  } finally {
    await close();
  }
});
