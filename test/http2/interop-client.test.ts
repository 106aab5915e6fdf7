// Our HTTP/2 client role against real servers: node:http2 and @grpc/grpc-js.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ErrorCode } from '../../agent/http2/constants.ts';
import { headerValue } from '../support/grpc-on-core.ts';
import { CoreClient } from '../support/grpc-on-core-client.ts';
import { decodeSummary, encodeServerStreamRequest, type GrpcServerHandle, startGrpcServer } from '../../lab/grpc-peers.ts';
import { waitFor } from '../../lab/wait-for.ts';

const MiB = 1024 * 1024;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

interface NodeServer {
  server: http2.Http2Server;
  port: number;
  sessions: Set<http2.ServerHttp2Session>;
  /** Streams on /hold, answered when the test says so. */
  held: http2.ServerHttp2Stream[];
  close(): Promise<void>;
}

/**
 * /echo streams the body back, then trailers with its sha256 and size; /reset answers headers and one DATA frame
 * then resets with the code in x-reset-code; /hold waits in `held`.
 */
async function startNodeServer(settings: http2.Settings = {}): Promise<NodeServer> {
  const server = http2.createServer({ settings });
  const sessions = new Set<http2.ServerHttp2Session>();
  const held: http2.ServerHttp2Stream[] = [];
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    const path = headers[':path'];
    if (path === '/echo') {
      const hash = createHash('sha256');
      let bytes = 0;
      stream.respond({ ':status': 200 }, { waitForTrailers: true });
      stream.on('data', (c: Buffer) => {
        hash.update(c);
        bytes += c.length;
      });
      stream.on('wantTrailers', () =>
        stream.sendTrailers({ 'x-request-sha256': hash.digest('hex'), 'x-request-bytes': String(bytes) }),
      );
      stream.pipe(stream);
    } else if (path === '/reset') {
      stream.respond({ ':status': 200 });
      stream.write(Buffer.alloc(100), () => stream.close(Number(headers['x-reset-code'])));
    } else if (path === '/hold') {
      held.push(stream);
    } else {
      stream.respond({ ':status': 404 }, { endStream: true });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const close = async (): Promise<void> => {
    for (const s of sessions) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { server, port: (server.address() as AddressInfo).port, sessions, held, close };
}

/** Graceful close of our client: GOAWAY, then the connection ends cleanly and the server's session goes away. */
async function shutdownAndCheck(client: CoreClient, sessions?: Set<unknown>): Promise<void> {
  client.connection.shutdown();
  assert.equal(await client.closed, null);
  assert.equal(client.connection.lifecycle.state, 'closed');
  assert.equal(client.connection.activeStreamCount, 0);
  await waitFor(() => client.socket.destroyed, { message: 'client socket closed' });
  if (sessions !== undefined) await waitFor(() => sessions.size === 0, { message: 'server sessions closed' });
}

describe('our client with a node:http2 server', () => {
  let peer: NodeServer;
  let client: CoreClient;
  before(async () => {
    peer = await startNodeServer();
    client = await CoreClient.connect(peer.port);
  });
  after(async () => {
    try {
      await shutdownAndCheck(client, peer.sessions);
    } finally {
      client.close();
      await peer.close();
    }
  });

  for (const size of [0, 1, 100 * 1024, 5 * MiB]) {
    test(`request and response bodies of ${size} bytes, trailers received`, async () => {
      const body = randomBytes(size);
      const r = await client.http('POST', '/echo', size === 0 ? null : body).done;
      assert.equal(r.resetCode, null);
      assert.equal(r.status, 200);
      assert.equal(r.body.length, size);
      assert.equal(sha(r.body), sha(body));
      assert.equal(headerValue(r.trailers, 'x-request-sha256'), sha(body));
      assert.equal(headerValue(r.trailers, 'x-request-bytes'), String(size));
      assert.equal(client.connection.activeStreamCount, 0);
    });
  }

  test('5 MiB both ways on 8 concurrent streams', async () => {
    const bodies = Array.from({ length: 8 }, () => randomBytes(5 * MiB));
    const results = await Promise.all(bodies.map((b) => client.http('POST', '/echo', b).done));
    for (const [i, r] of results.entries()) assert.equal(sha(r.body), sha(bodies[i]), `stream ${i}`);
    assert.equal(client.connection.activeStreamCount, 0);
  });

  test('a stream the server resets reaches onStreamReset with its code', async () => {
    for (const code of [ErrorCode.INTERNAL_ERROR, ErrorCode.CANCEL, ErrorCode.ENHANCE_YOUR_CALM]) {
      // The request stays open: node's close() ends the response before its RST_STREAM, and a stream already
      // closed both ways would (rightly) ignore the reset.
      const r = await client.http('POST', '/reset', null, ['x-reset-code', String(code)], false).done;
      assert.equal(r.status, 200);
      assert.equal(r.resetCode, code);
      assert.equal(r.resetByPeer, true);
    }
    assert.equal(client.connection.activeStreamCount, 0);
    assert.equal(client.connection.lifecycle.state, 'open');
    const after = await client.http('POST', '/echo', Buffer.from('still fine')).done;
    assert.equal(after.body.toString(), 'still fine');
  });
});

describe('our client with a node:http2 server limiting concurrent streams to 5', () => {
  test('canOpenStream() respects MAX_CONCURRENT_STREAMS and frees up as streams finish', async () => {
    const peer = await startNodeServer({ maxConcurrentStreams: 5 });
    const client = await CoreClient.connect(peer.port);
    try {
      assert.equal(client.connection.remoteSettings.maxConcurrentStreams, 5);
      for (let round = 0; round < 2; round++) {
        const requests = [];
        while (client.connection.canOpenStream()) {
          assert.ok(requests.length < 5, 'no more than 5 streams may open');
          requests.push(client.http('GET', '/hold', null));
        }
        assert.equal(requests.length, 5);
        assert.equal(client.connection.openStream([':method', 'GET', ':scheme', 'http', ':path', '/hold'], true), null);
        await waitFor(() => peer.held.length === 5, { message: 'server holds 5 streams' });
        for (const s of peer.held.splice(0)) s.respond({ ':status': 204 }, { endStream: true });
        for (const r of await Promise.all(requests.map((q) => q.done))) assert.equal(r.status, 204);
        assert.equal(client.connection.activeStreamCount, 0);
        assert.equal(client.connection.canOpenStream(), true);
      }
      await shutdownAndCheck(client, peer.sessions);
    } finally {
      client.close();
      await peer.close();
    }
  });
});

describe('our client with a @grpc/grpc-js server', () => {
  let peer: GrpcServerHandle;
  let client: CoreClient;
  before(async () => {
    peer = await startGrpcServer({
      id: 'grpc-js-1',
      serverOptions: { 'grpc.max_receive_message_length': 16 * MiB, 'grpc.max_send_message_length': 16 * MiB },
    });
    client = await CoreClient.connect(peer.port);
  });
  after(async () => {
    try {
      await shutdownAndCheck(client);
    } finally {
      client.close();
      await peer.close();
    }
  });

  test('unary: message, headers, grpc-status 0 in the trailers', async () => {
    const r = await client.call('Unary', [Buffer.from('ping')], { 'x-echo-tag': 't1' });
    assert.equal(r.resetCode, null);
    assert.equal(r.status, 200);
    assert.equal(headerValue(r.headers, 'content-type'), 'application/grpc+proto');
    assert.equal(headerValue(r.headers, 'x-echo-tag'), 't1');
    assert.equal(headerValue(r.headers, 'x-served-by'), 'grpc-js-1');
    assert.ok(r.trailers !== null, 'trailers received');
    assert.equal(headerValue(r.trailers, 'grpc-status'), '0');
    assert.equal(headerValue(r.trailers, 'x-served-by'), 'grpc-js-1');
    assert.deepEqual(r.messages.map(String), ['ping']);
  });

  test('client streaming: every message counted and hashed in order', async () => {
    const messages = Array.from({ length: 40 }, (_, i) => randomBytes(i * 1013));
    const r = await client.call('ClientStream', messages);
    assert.equal(r.grpcStatus, 0);
    const summary = decodeSummary(r.messages[0]);
    assert.equal(summary.count, 40);
    assert.equal(summary.sha256, sha(Buffer.concat(messages)));
  });

  test('server streaming: every message in order', async () => {
    const r = await client.call('ServerStream', [encodeServerStreamRequest(200, 3000)]);
    assert.equal(r.grpcStatus, 0);
    assert.deepEqual(
      r.messages.map((m) => m.readUInt32BE(0)),
      Array.from({ length: 200 }, (_, i) => i),
    );
  });

  test('bidi streaming: ping-pong, each echo before the next message', async () => {
    const call = client.grpc('BidiStream');
    for (let i = 0; i < 50; i++) {
      const m = randomBytes(1 + i * 100);
      call.sendMessage(m);
      assert.ok((await call.nextMessage()).equals(m), `echo ${i}`);
    }
    call.end();
    const r = await call.done;
    assert.equal(r.grpcStatus, 0);
    assert.equal(r.messages.length, 50);
  });

  test('large messages beyond the windows, both directions', async () => {
    const big = [randomBytes(4 * MiB), randomBytes(MiB), randomBytes(6 * MiB)];
    const unary = await client.call('Unary', [big[2]]);
    assert.equal(unary.grpcStatus, 0);
    assert.equal(sha(unary.messages[0]), sha(big[2]));
    const echoed = await client.call('BidiStream', big);
    assert.deepEqual(echoed.messages.map(sha), big.map(sha));
    const streamed = await client.call('ServerStream', [encodeServerStreamRequest(3, 5 * MiB)]);
    assert.deepEqual(
      streamed.messages.map((m) => [m.length, m.readUInt32BE(0)]),
      [0, 1, 2].map((i) => [5 * MiB, i]),
    );
  });

  test('error statuses: Trailers-Only and a deadline enforced by the server', async () => {
    const failed = await client.call('Unary', [Buffer.from('x')], { 'x-fail-code': '5' });
    assert.equal(failed.status, 200);
    assert.equal(failed.trailers, null, 'Trailers-Only: the status is in the only header block');
    assert.equal(failed.grpcStatus, 5);
    assert.equal(decodeURIComponent(headerValue(failed.headers, 'grpc-message') ?? ''), 'requested failure 5');
    const slow = client.grpc('Unary', { 'x-delay-ms': '1000' }, 100);
    slow.sendMessage(Buffer.from('slow'), true);
    assert.equal((await slow.done).grpcStatus, 4, 'DEADLINE_EXCEEDED');
    assert.equal(client.connection.activeStreamCount, 0);
  });
});
