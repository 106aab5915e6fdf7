// GOAWAY and abrupt closes in both roles against real peers: graceful drains lose nothing, abrupt ones fail exactly.

import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { ErrorCode } from '../../agent/http2/constants.ts';
import { type CoreGrpcServer, startCoreGrpcServer } from '../support/grpc-on-core.ts';
import { CoreClient, type CoreRequest } from '../support/grpc-on-core-client.ts';
import { makeEchoClient, unary } from '../../lab/grpc-peers.ts';
import { waitFor } from '../../lab/wait-for.ts';

const LOCAL_POOL = { 'grpc.use_local_subchannel_pool': 1 };
const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Calls that must all fail: resolves with the set of status codes they failed with. */
async function failureCodes(calls: Array<Promise<unknown>>): Promise<number[]> {
  const settled = await Promise.allSettled(calls);
  for (const s of settled) assert.equal(s.status, 'rejected', 'an in-flight call succeeded');
  return [...new Set(settled.map((s) => (s as PromiseRejectedResult).reason.code as number))].sort();
}

/** Every connection the server accepted is closed with no stream left (clean or not is checked by the caller). */
async function assertServerIdle(server: CoreGrpcServer): Promise<void> {
  await waitFor(() => server.connections.size === 0, { message: 'server connections closed' });
  for (const info of server.history) {
    assert.equal(info.connection.lifecycle.state, 'closed');
    assert.equal(info.connection.activeStreamCount, 0);
  }
}

describe('our server draining a @grpc/grpc-js client', () => {
  test('shutdown(): in-flight calls complete, later calls reconnect, the old connection closes after its last stream', async () => {
    const server = await startCoreGrpcServer();
    const client = makeEchoClient(`127.0.0.1:${server.port}`, LOCAL_POOL);
    try {
      await unary(client, Buffer.from('warm-up'));
      const c0 = server.history[0];
      const inFlight = Promise.all(
        Array.from({ length: 10 }, (_, i) => unary(client, Buffer.from(`in-flight-${i}`), { metadata: { 'x-delay-ms': '300' } })),
      );
      await waitFor(() => c0.connection.activeStreamCount === 10, { message: '10 calls in flight' });
      server.shutdownConnections();
      assert.equal(c0.connection.lifecycle.state, 'draining');
      // Calls issued all through the drain race the GOAWAY; none may fail.
      const during: Array<Promise<unknown>> = [];
      for (let i = 0; i < 30; i++) {
        during.push(unary(client, Buffer.from(`during-${i}`)));
        await pause(10);
      }
      const results = await inFlight;
      for (const [i, r] of results.entries()) assert.equal(r.message.toString(), `in-flight-${i}`);
      await Promise.all(during);
      await waitFor(() => c0.connection.lifecycle.state === 'closed', { message: 'old connection closed' });
      assert.equal(c0.closeError, null);
      assert.deepEqual(c0.resets, []);
      // The connection closed right after its last stream, and nothing happened on it afterwards.
      const c0Events = server.events.filter((e) => e.startsWith('c0 '));
      assert.equal(c0Events.at(-1), 'c0 close clean');
      assert.match(c0Events.at(-2) ?? '', /^c0 stream-close /);
      assert.equal(c0.streamsClosed, c0Events.length - 1);
      const next = await Promise.all(Array.from({ length: 20 }, (_, i) => unary(client, Buffer.from(`next-${i}`))));
      for (const [i, r] of next.entries()) assert.equal(r.message.toString(), `next-${i}`);
      assert.equal(server.history.length, 2, 'grpc-js reconnected once');
      const c1 = server.history[1];
      assert.ok(c1.streamsClosed >= 20, 'the next calls went over the new connection');
      assert.equal(c0.streamsClosed + c1.streamsClosed, 1 + 10 + 30 + 20, 'every call completed exactly once');
      client.close();
      await assertServerIdle(server);
      assert.equal(c1.closeError, null);
    } finally {
      client.close();
      await server.close();
    }
  });

  const abrupt = [
    { name: 'goAway(INTERNAL_ERROR)', act: (s: CoreGrpcServer) => s.goAwayConnections(ErrorCode.INTERNAL_ERROR), code: ErrorCode.INTERNAL_ERROR, grpcCodes: [grpc.status.INTERNAL] },
    { name: 'destroy()', act: (s: CoreGrpcServer) => s.destroyConnections(), code: ErrorCode.CANCEL, grpcCodes: [grpc.status.UNAVAILABLE] },
  ];
  for (const { name, act, code, grpcCodes } of abrupt) {
    test(`${name}: in-flight calls fail with exactly ${grpcCodes.map((c) => grpc.status[c])}, new connections still served`, async () => {
      const server = await startCoreGrpcServer();
      const client = makeEchoClient(`127.0.0.1:${server.port}`, LOCAL_POOL);
      try {
        await unary(client, Buffer.from('warm-up'));
        const c0 = server.history[0];
        const inFlight = Array.from({ length: 10 }, () => unary(client, Buffer.from('x'), { metadata: { 'x-delay-ms': '2000' } }));
        const codes = failureCodes(inFlight);
        await waitFor(() => c0.connection.activeStreamCount === 10, { message: '10 calls in flight' });
        act(server);
        assert.deepEqual(await codes, grpcCodes);
        assert.equal(c0.connection.lifecycle.state, 'closed');
        assert.equal(c0.closeError?.code, code);
        assert.equal(c0.closeError?.byPeer, false);
        assert.equal(c0.resets.length, 10);
        for (const r of c0.resets) assert.deepEqual([r.code, r.byPeer], [code, false]);
        const next = await Promise.all(Array.from({ length: 10 }, (_, i) => unary(client, Buffer.from(`next-${i}`))));
        for (const [i, r] of next.entries()) assert.equal(r.message.toString(), `next-${i}`);
        assert.equal(server.history.length, 2);
        client.close();
        await assertServerIdle(server);
        assert.equal(server.history[1].closeError, null);
      } finally {
        client.close();
        await server.close();
      }
    });
  }
});

interface NodePeer {
  port: number;
  sessions: Set<http2.ServerHttp2Session>;
  sockets: Set<net.Socket>;
  held: http2.ServerHttp2Stream[];
  goawaysReceived: Array<{ code: number; lastStreamId: number }>;
  close(): Promise<void>;
}

/** A node:http2 server whose every stream waits in `held` until the test answers it. */
async function startHoldingServer(): Promise<NodePeer> {
  const server = http2.createServer();
  const peer: NodePeer = {
    port: 0,
    sessions: new Set(),
    sockets: new Set(),
    held: [],
    goawaysReceived: [],
    close: async () => {
      for (const s of peer.sessions) s.destroy();
      for (const s of peer.sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  server.on('connection', (socket: net.Socket) => peer.sockets.add(socket));
  server.on('session', (s) => {
    peer.sessions.add(s);
    s.on('close', () => peer.sessions.delete(s));
    s.on('goaway', (code: number, lastStreamId: number) => peer.goawaysReceived.push({ code, lastStreamId }));
  });
  server.on('stream', (stream) => {
    stream.on('error', () => {});
    peer.held.push(stream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  peer.port = (server.address() as net.AddressInfo).port;
  return peer;
}

const answer = (stream: http2.ServerHttp2Stream): void => stream.respond({ ':status': 204 }, { endStream: true });

/** Opens three held requests (stream ids 1, 3, 5) and waits until the server has them. */
async function openThree(client: CoreClient, peer: NodePeer): Promise<CoreRequest[]> {
  const requests = [0, 1, 2].map(() => client.http('GET', '/hold', null));
  await waitFor(() => peer.held.length === 3, { message: 'server holds 3 streams' });
  return requests;
}

/**
 * Our client connection closed and its socket is gone, then the node server's session is gone too. A node app that
 * only called session.goaway() must still close() its session: node stops reading once its GOAWAY is out and no
 * stream is left, so it never sees our side end (`closePeer`).
 */
async function assertBothEnded(client: CoreClient, peer: NodePeer, closePeer = false): Promise<void> {
  await client.closed;
  assert.equal(client.connection.lifecycle.state, 'closed');
  assert.equal(client.connection.activeStreamCount, 0);
  await waitFor(() => client.socket.destroyed, { message: 'our socket closed' });
  if (closePeer) for (const s of peer.sessions) s.close();
  await waitFor(() => peer.sessions.size === 0, { message: 'node server session closed' });
}

describe('our client facing a node:http2 server that goes away', () => {
  const graceful = [
    { name: 'session.goaway()', act: (s: http2.ServerHttp2Session) => s.goaway(), closePeer: true },
    { name: 'session.close()', act: (s: http2.ServerHttp2Session) => s.close(), closePeer: false },
  ];
  for (const { name, act, closePeer } of graceful) {
    test(`${name} with streams in flight: they complete, onGoaway is called, no new stream may open`, async () => {
      const peer = await startHoldingServer();
      const client = await CoreClient.connect(peer.port);
      try {
        const requests = await openThree(client, peer);
        act([...peer.sessions][0]);
        await waitFor(() => client.goaways.length === 1, { message: 'onGoaway' });
        assert.deepEqual(client.goaways[0], { lastStreamId: 5, code: ErrorCode.NO_ERROR });
        assert.equal(client.connection.canOpenStream(), false);
        assert.throws(() => client.http('GET', '/hold', null), /canOpenStream/);
        const lifecycle = client.connection.lifecycle;
        assert.equal(lifecycle.state === 'draining' ? lifecycle.initiatedBy : lifecycle.state, 'peer');
        for (const s of peer.held) answer(s);
        for (const r of await Promise.all(requests.map((q) => q.done))) assert.deepEqual([r.status, r.resetCode], [204, null]);
        await assertBothEnded(client, peer, closePeer);
        assert.equal(client.closeError, null);
      } finally {
        client.close();
        await peer.close();
      }
    });
  }

  test('GOAWAY with a last-stream-id below our open streams: those get REFUSED_STREAM, the rest completes', async () => {
    const peer = await startHoldingServer();
    const client = await CoreClient.connect(peer.port);
    try {
      const [first, second, third] = await openThree(client, peer);
      [...peer.sessions][0].goaway(http2.constants.NGHTTP2_NO_ERROR, 1);
      // The server app drops what it will not process; those RST_STREAMs reach streams we already forgot.
      for (const s of peer.held) if ((s.id ?? 0) > 1) s.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      for (const r of [await second.done, await third.done]) {
        assert.deepEqual([r.resetCode, r.resetByPeer, r.headers], [ErrorCode.REFUSED_STREAM, true, null]);
      }
      assert.deepEqual(client.goaways, [{ lastStreamId: 1, code: ErrorCode.NO_ERROR }]);
      assert.equal(first.finished, false);
      assert.equal(client.connection.activeStreamCount, 1);
      assert.equal(client.connection.canOpenStream(), false);
      answer(peer.held.find((s) => s.id === 1)!);
      assert.deepEqual([(await first.done).status, first.resetCode], [204, null]);
      await assertBothEnded(client, peer, true);
      assert.equal(client.closeError, null);
    } finally {
      client.close();
      await peer.close();
    }
  });
});

describe('abrupt socket destroy by the peer', () => {
  test('node:http2 server drops the socket: every open stream of our client is reset, the close carries an error', async () => {
    const peer = await startHoldingServer();
    const client = await CoreClient.connect(peer.port);
    try {
      const requests = await openThree(client, peer);
      for (const s of peer.sockets) s.destroy();
      const error = await client.closed;
      assert.ok(error !== null, 'onConnectionClose carries an error');
      assert.equal(error.byPeer, true);
      for (const r of requests) {
        assert.equal(r.finished, true);
        assert.deepEqual([r.resetCode, r.resetByPeer], [error.code, true]);
      }
      await assertBothEnded(client, peer);
    } finally {
      client.close();
      await peer.close();
    }
  });

  test('node:http2 client drops the socket: every open stream of our server is reset, the close carries an error', async () => {
    const server = await startCoreGrpcServer();
    const socket = net.connect(server.port, '127.0.0.1');
    const session = http2.connect(`http://127.0.0.1:${server.port}`, { createConnection: () => socket });
    session.on('error', () => {});
    try {
      for (let i = 0; i < 3; i++) session.request({ ':method': 'POST', ':path': '/echo' }).on('error', () => {});
      await waitFor(() => server.history[0]?.connection.activeStreamCount === 3, { message: '3 streams open on our server' });
      socket.destroy();
      const c0 = server.history[0];
      await assertServerIdle(server);
      assert.ok(c0.closeError !== null && c0.closeError !== undefined, 'onConnectionClose carries an error');
      assert.equal(c0.closeError.byPeer, true);
      assert.deepEqual(
        c0.resets.map((r) => [r.id, r.code, r.byPeer]),
        [1, 3, 5].map((id) => [id, c0.closeError!.code, true]),
      );
      await waitFor(() => session.destroyed, { message: 'node session destroyed' });
    } finally {
      session.destroy();
      await server.close();
    }
  });
});

describe('our client shutting down', () => {
  test('shutdown(): GOAWAY sent, no new streams, closes once its streams complete', async () => {
    const peer = await startHoldingServer();
    const client = await CoreClient.connect(peer.port);
    try {
      const requests = await openThree(client, peer);
      client.connection.shutdown();
      assert.equal(client.connection.lifecycle.state, 'draining');
      assert.equal(client.connection.canOpenStream(), false);
      await waitFor(() => peer.goawaysReceived.length === 1, { message: 'server received GOAWAY' });
      assert.deepEqual(peer.goawaysReceived[0], { code: http2.constants.NGHTTP2_NO_ERROR, lastStreamId: 0 });
      assert.equal(client.closeError, undefined, 'still open while streams are in flight');
      for (const s of peer.held) answer(s);
      for (const r of await Promise.all(requests.map((q) => q.done))) assert.deepEqual([r.status, r.resetCode], [204, null]);
      await assertBothEnded(client, peer);
      assert.equal(client.closeError, null);
    } finally {
      client.close();
      await peer.close();
    }
  });
});
