// Our HTTP/2 server role against real clients: node:http2, @grpc/grpc-js and h2load.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { ErrorCode } from '../../agent/http2/constants.ts';
import { type CoreGrpcServer, grpcFrame, startCoreGrpcServer } from '../support/grpc-on-core.ts';
import { bidi, clientStream, makeEchoClient, serverStream, unary } from '../../lab/grpc-peers.ts';
import { runH2load } from '../support/h2load.ts';
import { waitFor } from '../../lab/wait-for.ts';

const MiB = 1024 * 1024;
// A local subchannel pool: a new client really opens a new connection instead of sharing another client's.
const GRPC_LIMITS = {
  'grpc.max_receive_message_length': 16 * MiB,
  'grpc.max_send_message_length': 16 * MiB,
  'grpc.use_local_subchannel_pool': 1,
};

interface NodeResponse {
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders | null;
}

/** One request on a node:http2 client session, optionally with trailers; resolves with the whole response. */
function nodeRequest(
  session: http2.ClientHttp2Session,
  method: string,
  body: Buffer | null,
  trailers?: http2.OutgoingHttpHeaders,
): Promise<NodeResponse> {
  return new Promise((resolve, reject) => {
    const req = session.request(
      { ':method': method, ':path': '/echo' },
      { endStream: body === null && trailers === undefined, waitForTrailers: trailers !== undefined },
    );
    const chunks: Buffer[] = [];
    let headers: http2.IncomingHttpHeaders = {};
    let received: http2.IncomingHttpHeaders | null = null;
    req.on('response', (h) => {
      headers = h;
    });
    req.on('trailers', (t) => {
      received = t;
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('wantTrailers', () => req.sendTrailers(trailers ?? {}));
    req.on('error', reject);
    req.on('close', () => {
      if (req.rstCode !== http2.constants.NGHTTP2_NO_ERROR) reject(new Error(`stream reset with ${req.rstCode}`));
      else resolve({ headers, body: Buffer.concat(chunks), trailers: received });
    });
    if (body !== null) req.end(body);
    else if (trailers !== undefined) req.end();
  });
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Every connection the server ever accepted is closed, cleanly, with no stream left. */
async function assertAllClosedCleanly(server: CoreGrpcServer): Promise<void> {
  await waitFor(() => server.connections.size === 0, { timeoutMs: 10_000, message: 'server connections closed' });
  for (const info of server.history) {
    assert.equal(info.connection.lifecycle.state, 'closed');
    assert.equal(info.closeError, null, `connection c${info.index} closed with ${info.closeError?.message}`);
    assert.equal(info.connection.activeStreamCount, 0);
  }
}

describe('our server with a node:http2 client', () => {
  let server: CoreGrpcServer;
  let session: http2.ClientHttp2Session;
  before(async () => {
    server = await startCoreGrpcServer();
    session = http2.connect(`http://127.0.0.1:${server.port}`);
  });
  after(async () => {
    session.close();
    try {
      await assertAllClosedCleanly(server);
      assert.equal(server.history.length, 1, 'every request used the one session');
      await waitFor(() => session.destroyed, { message: 'node client session closed' });
    } finally {
      session.destroy();
      await server.close();
    }
  });

  test('GET without a body', async () => {
    const res = await nodeRequest(session, 'GET', null);
    assert.equal(res.headers[':status'], 200);
    assert.equal(res.headers['x-request-method'], 'GET');
    assert.equal(res.body.length, 0);
    assert.equal(server.history[0].connection.activeStreamCount, 0);
  });

  for (const size of [0, 1, 100 * 1024, 5 * MiB]) {
    test(`POST echoes a ${size}-byte body`, async () => {
      const body = randomBytes(size);
      const res = await nodeRequest(session, 'POST', body);
      assert.equal(res.headers[':status'], 200);
      assert.equal(res.body.length, size);
      assert.equal(sha(res.body), sha(body));
      assert.equal(server.history[0].connection.activeStreamCount, 0);
    });
  }

  test('request trailers come back as response trailers', async () => {
    const body = randomBytes(200_000);
    const res = await nodeRequest(session, 'POST', body, { 'x-checksum': sha(body), 'x-trailer-two': 'two' });
    assert.equal(sha(res.body), sha(body));
    assert.ok(res.trailers !== null, 'response trailers received');
    assert.equal(res.trailers['x-checksum'], sha(body));
    assert.equal(res.trailers['x-trailer-two'], 'two');
  });

  test('200 concurrent streams on one connection', async () => {
    const count = 200;
    const requests: Array<{ body: Buffer; req: http2.ClientHttp2Stream; res: Promise<Buffer> }> = [];
    for (let i = 0; i < count; i++) {
      const req = session.request({ ':method': 'POST', ':path': '/echo' });
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      const res = new Promise<Buffer>((resolve, reject) => {
        req.on('error', reject);
        req.on('end', () => resolve(Buffer.concat(chunks)));
      });
      requests.push({ body: randomBytes(1000 + i), req, res });
    }
    // Every stream is open at the same time before any body is sent.
    const connection = server.history[0].connection;
    await waitFor(() => connection.activeStreamCount === count, { message: `${count} streams open on the server` });
    for (const r of requests) r.req.end(r.body);
    const bodies = await Promise.all(requests.map((r) => r.res));
    for (let i = 0; i < count; i++) assert.ok(bodies[i].equals(requests[i].body), `stream ${i} echoed its own body`);
    await waitFor(() => connection.activeStreamCount === 0, { message: 'all streams closed on the server' });
  });

  test('client cancel mid-body resets the stream; 20 cancels do not leak connection window', async () => {
    const info = server.history[0];
    // Each cancelled request leaves ~1 MiB received but never echoed; 20 of them exceed the 16 MiB connection window,
    // so the last request only passes if reset streams give their unconsumed bytes back.
    for (let round = 0; round < 20; round++) {
      const resetsBefore = info.resets.length;
      const req = session.request({ ':method': 'POST', ':path': '/echo' });
      req.on('error', () => {});
      // Nothing reads the response, so the echo stalls on the client's stream window while the body keeps arriving.
      req.write(randomBytes(MiB));
      await waitFor(() => (info.connection.getStream(req.id ?? -1)?.unconsumedBytes ?? 0) > MiB / 2, {
        message: 'half the body received by the server',
      });
      req.close(http2.constants.NGHTTP2_CANCEL);
      await waitFor(() => info.resets.length === resetsBefore + 1, { message: 'server saw the reset' });
      assert.deepEqual(info.resets.at(-1), { id: req.id, code: ErrorCode.CANCEL, byPeer: true });
      assert.equal(info.connection.activeStreamCount, 0);
    }
    const body = randomBytes(5 * MiB);
    const res = await nodeRequest(session, 'POST', body);
    assert.equal(sha(res.body), sha(body));
  });
});

describe('our server with a @grpc/grpc-js client', () => {
  let server: CoreGrpcServer;
  let client: grpc.Client;
  before(async () => {
    server = await startCoreGrpcServer({ id: 'core-1' });
    client = makeEchoClient(`127.0.0.1:${server.port}`, GRPC_LIMITS);
  });
  after(async () => {
    client.close();
    try {
      await assertAllClosedCleanly(server);
    } finally {
      await server.close();
    }
  });

  test('unary: message, response metadata and trailers', async () => {
    const res = await unary(client, Buffer.from('hello'), { metadata: { 'x-echo-tag': 'abc' } });
    assert.equal(res.message.toString(), 'hello');
    assert.deepEqual(res.headers.get('x-echo-tag'), ['abc']);
    assert.deepEqual(res.headers.get('x-served-by'), ['core-1']);
    assert.deepEqual(res.trailers.get('x-served-by'), ['core-1']);
  });

  test('client streaming: every message, in order', async () => {
    const messages = Array.from({ length: 60 }, (_, i) => randomBytes(i * 997));
    const res = await clientStream(client, messages);
    assert.equal(res.count, 60);
    assert.equal(res.bytes, messages.reduce((n, m) => n + m.length, 0));
    assert.equal(res.sha256, sha(Buffer.concat(messages)));
  });

  test('server streaming: every message, in order', async () => {
    const res = await serverStream(client, 300, 1500);
    assert.equal(res.messages.length, 300);
    res.messages.forEach((m, i) => {
      assert.equal(m.length, 1500);
      assert.equal(m.readUInt32BE(0), i);
    });
    assert.equal((await serverStream(client, 0, 10)).messages.length, 0);
  });

  test('bidi streaming: every message echoed, in order', async () => {
    const messages = Array.from({ length: 150 }, (_, i) => randomBytes(1 + ((i * 7919) % 20_000)));
    const res = await bidi(client, messages);
    assert.equal(res.messages.length, messages.length);
    for (const [i, m] of res.messages.entries()) assert.ok(m.equals(messages[i]), `message ${i}`);
  });

  test('messages of 1 MiB and 4 MiB, beyond the stream windows', async () => {
    for (const size of [MiB, 4 * MiB]) {
      const body = randomBytes(size);
      assert.equal(sha((await unary(client, body)).message), sha(body));
    }
    const big = [randomBytes(4 * MiB), randomBytes(MiB), randomBytes(4 * MiB)];
    const echoed = await bidi(client, big);
    assert.deepEqual(echoed.messages.map(sha), big.map(sha));
    const summary = await clientStream(client, big);
    assert.equal(summary.sha256, sha(Buffer.concat(big)));
    const streamed = await serverStream(client, 3, 4 * MiB);
    assert.deepEqual(
      streamed.messages.map((m) => [m.length, m.readUInt32BE(0)]),
      [0, 1, 2].map((i) => [4 * MiB, i]),
    );
  });

  test('200 concurrent unary calls share one connection', async () => {
    const own = makeEchoClient(`127.0.0.1:${server.port}`, GRPC_LIMITS);
    const connectionsBefore = server.history.length;
    try {
      const bodies = Array.from({ length: 200 }, (_, i) => Buffer.from(`call-${i}-${'x'.repeat(i)}`));
      const results = await Promise.all(bodies.map((b) => unary(own, b)));
      for (const [i, r] of results.entries()) assert.ok(r.message.equals(bodies[i]), `call ${i}`);
      assert.equal(server.history.length, connectionsBefore + 1, 'one new connection for the new channel');
    } finally {
      own.close();
    }
  });

  test('deadline: the client gives up, the server sees the stream cancelled', async () => {
    const cancelledBefore = server.cancelled.count;
    await assert.rejects(unary(client, Buffer.from('slow'), { timeoutMs: 200, metadata: { 'x-delay-ms': '5000' } }), {
      code: grpc.status.DEADLINE_EXCEEDED,
    });
    await waitFor(() => server.cancelled.count === cancelledBefore + 1, { message: 'server saw the cancellation' });
    const reset = server.history.flatMap((c) => c.resets).at(-1);
    assert.equal(reset?.code, ErrorCode.CANCEL);
    for (const c of server.connections) assert.equal(c.activeStreamCount, 0);
  });
});

describe('our server with h2load', () => {
  test('2000 gRPC unary requests over 4 connections all succeed', async () => {
    const server = await startCoreGrpcServer();
    const dir = await mkdtemp(join(tmpdir(), 'interop-h2load-'));
    try {
      const file = join(dir, 'request.bin');
      await writeFile(file, Buffer.concat(grpcFrame(Buffer.alloc(100, 'a'))));
      const result = await runH2load({
        url: `http://127.0.0.1:${server.port}/test.Echo/Unary`,
        requests: 2000,
        clients: 4,
        maxConcurrentStreams: 8,
        headers: { 'content-type': 'application/grpc', te: 'trailers' },
        dataFile: file,
        timeoutMs: 60_000,
      });
      assert.equal(result.requests.succeeded, 2000, result.stdout);
      assert.equal(result.requests.failed + result.requests.errored + result.requests.timeout, 0);
      assert.equal(result.status['2xx'], 2000);
      assert.equal(server.calls.count, 2000);
      assert.equal(server.history.length, 4);
      await assertAllClosedCleanly(server);
    } finally {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
