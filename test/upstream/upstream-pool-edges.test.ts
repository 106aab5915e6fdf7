// Edges of the upstream pool and connection that the main suites leave open: a pool without an observer, cancelling
// the first waiter, the failure reason of an abandoned connect, backoff with only a draining connection, and
// connection-level flow control that one stalled response cannot exhaust.

import assert from 'node:assert/strict';
import type { ServerHttp2Stream } from 'node:http2';
import net from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import type { Http2Connection } from '../../agent/http2/connection.ts';
import type { Http2Handler } from '../../agent/http2/handler.ts';
import type { Stream } from '../../agent/http2/stream.ts';
import { UpstreamConnection } from '../../agent/upstream/upstream-connection.ts';
import { type PoolOptions, UpstreamPool } from '../../agent/upstream/upstream-pool.ts';
import { waitFor } from '../../lab/wait-for.ts';
import { FakeTimers } from '../support/fake-timers.ts';
import { type Peer, REQUEST, recordingWaiters, startPeer, upstreamEvents } from './http2-peer.ts';

describe('UpstreamPool edges', () => {
  const peers: Peer[] = [];
  const pools: UpstreamPool[] = [];
  const connections: UpstreamConnection[] = [];
  let clock = new FakeTimers();

  afterEach(async () => {
    for (const pool of pools.splice(0)) for (const connection of pool.connections) connection.http2.destroy();
    for (const connection of connections.splice(0)) connection.http2.destroy();
    for (const peer of peers.splice(0)) await peer.close();
    clock = new FakeTimers();
  });

  async function peer(settings: Parameters<typeof startPeer>[0] = {}): Promise<Peer> {
    const started = await startPeer(settings);
    peers.push(started);
    return started;
  }

  /** A pool with no observer at all (the third constructor argument left out). */
  function pool(port: number, options: Partial<PoolOptions> = {}): UpstreamPool {
    const created = new UpstreamPool(`127.0.0.1:${port}`, upstreamEvents, {
      host: '127.0.0.1',
      port,
      connectTimeoutMs: 5000,
      maxConnections: 2,
      streamHeadroom: 0,
      backoff: { initialMs: 100, maxMs: 1000 },
      clock,
      random: () => 0.5,
      ...options,
    });
    pools.push(created);
    return created;
  }


  it('a pool without an observer has no failure yet, connects, serves its waiters and drains to closed', async () => {
    const p = await peer();
    const subject = pool(p.port);
    assert.equal(subject.failureReason, '', 'no failure before any connect');
    const w = recordingWaiters();
    subject.wait(w.make('a'));
    assert.equal(subject.connections.length, 1);
    await waitFor(() => w.log.length === 1, { message: 'a served', timeoutMs: 2000 });
    assert.deepEqual(w.log, ['a served']);
    await waitFor(() => p.held.length === 1, { message: 'request at the peer', timeoutMs: 2000 });
    subject.drain();
    p.answerOldest();
    await waitFor(() => subject.state === 'closed', { message: 'pool closed', timeoutMs: 2000 });
    assert.equal(subject.failureReason, '', 'a drained ready connection is no failure');
  });

  it('cancelling the first of several waiters: it is never served, the others are, in order', async () => {
    const p = await peer();
    const subject = pool(p.port);
    const w = recordingWaiters();
    const first = w.make('first');
    subject.wait(first);
    subject.wait(w.make('b'));
    subject.wait(w.make('c'));
    subject.cancelWait(first);
    await waitFor(() => w.log.length === 2, { message: 'b and c served', timeoutMs: 2000 });
    await waitFor(() => p.held.length === 2, { message: 'two requests at the peer', timeoutMs: 2000 });
    assert.deepEqual(w.log, ['b served', 'c served']);
  });

  it('a connect abandoned by a drain is a failure without a socket error: "connection failed"', async () => {
    const p = await peer();
    const subject = pool(p.port);
    const w = recordingWaiters();
    subject.wait(w.make('a'));
    subject.drain();
    assert.deepEqual(w.log, ['a failed: endpoint removed']);
    await waitFor(() => subject.state === 'closed', { message: 'pool closed', timeoutMs: 2000 });
    assert.equal(subject.failureReason, 'connection failed');
    assert.deepEqual(w.log, ['a failed: endpoint removed']);
  });

  it('a recent connect failure with only a draining connection left is backoff: draining is not ready', async () => {
    // MAX_CONCURRENT_STREAMS 4 less a headroom of 1: c0 is full with three streams, so d asks for c1.
    const p = await peer({ maxConcurrentStreams: 4 });
    const subject = pool(p.port, { maxConnections: 2, streamHeadroom: 1 });
    const w = recordingWaiters();
    for (const label of ['a', 'b', 'c']) subject.wait(w.make(label));
    await waitFor(() => w.log.length === 3 && p.held.length === 3 && subject.connections[0].http2.remoteSettings.maxConcurrentStreams === 4, {
      message: 'c0 full',
      timeoutMs: 2000,
    });
    await p.stopListening();
    subject.wait(w.make('d'));
    await waitFor(() => w.log.length === 4, { message: 'the extra connection refused', timeoutMs: 2000 });
    assert.match(w.log[3], /^d failed: connect ECONNREFUSED/);
    assert.equal(subject.inBackoff, false, 'c0 is ready');
    // The endpoint sends GOAWAY on c0 with its streams still open: c0 drains, and nothing ready is left.
    p.sessions[0].goaway(0, 5);
    await waitFor(() => subject.connections[0].state.state === 'draining', { message: 'c0 draining', timeoutMs: 2000 });
    assert.equal(subject.connections.length, 1);
    assert.equal(subject.inBackoff, true, 'only a draining connection: the endpoint is in backoff');
  });

  it('one response whose reader stalls cannot use up the connection window: another stream still gets its data', async () => {
    const p = await peer();
    /** Streams whose DATA the handler does not consume (a client that reads nothing). */
    const stalled = new Set<Stream>();
    const received = new Map<Stream, number>();
    const handler: Http2Handler = {
      ...upstreamEvents,
      onData(connection: Http2Connection, stream: Stream, data: Buffer) {
        received.set(stream, (received.get(stream) ?? 0) + data.length);
        if (!stalled.has(stream)) connection.consume(stream, data.length);
      },
    };
    const connection = new UpstreamConnection({ onUpstreamStateChange() {}, onUpstreamStreamEnded() {} }, handler, {
      host: '127.0.0.1',
      port: p.port,
      connectTimeoutMs: 5000,
      clock,
    });
    connections.push(connection);
    await waitFor(() => connection.state.state === 'ready', { message: 'ready', timeoutMs: 2000 });
    // Sixteen stalled streams fill their 1 MiB stream windows: the whole 16 MiB connection window, unless the
    // connection window is credited on receive.
    const stalledCount = 16;
    const window = 1024 * 1024;
    for (let i = 0; i < stalledCount; i++) {
      const stream = connection.http2.openStream(REQUEST, true);
      assert.notEqual(stream, null);
      stalled.add(stream as Stream);
    }
    await waitFor(() => p.held.length === stalledCount, { message: 'stalled requests at the peer', timeoutMs: 2000 });
    const big = Buffer.alloc(window);
    for (const atPeer of p.held.splice(0) as ServerHttp2Stream[]) {
      atPeer.respond({ ':status': 200 });
      atPeer.write(big);
    }
    await waitFor(() => [...stalled].every((stream) => received.get(stream) === window), {
      message: 'every stalled stream got its full stream window',
      timeoutMs: 2500,
    });
    const probe = connection.http2.openStream(REQUEST, true) as Stream;
    assert.notEqual(probe, null);
    await waitFor(() => p.held.length === 1, { message: 'probe at the peer', timeoutMs: 2000 });
    const atPeer = p.held.shift() as ServerHttp2Stream;
    atPeer.respond({ ':status': 200 });
    atPeer.end(Buffer.alloc(1000));
    await waitFor(() => received.get(probe) === 1000, { message: 'the probe stream got its response', timeoutMs: 1000 });
  });
});

/**
 * A loopback listener that never accepts: it listens with a backlog of 1 in a worker whose event loop is then blocked,
 * so once the kernel's accept queue is full, further SYNs are dropped and a connect hangs (no iptables needed).
 */
async function blackHole(): Promise<{ port: number; fillers: net.Socket[]; release(): Promise<void> }> {
  const gate = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(
    `const net = require('node:net');
     const { parentPort, workerData } = require('node:worker_threads');
     const server = net.createServer();
     server.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
       parentPort.postMessage(server.address().port);
       Atomics.wait(workerData, 0, 0);
       server.close();
     });`,
    { eval: true, workerData: gate },
  );
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  // Fill the accept queue (a backlog of 1 holds two connections, never accepted): the next connect hangs.
  const fillers: net.Socket[] = [];
  for (let i = 0; i < 2; i++) {
    const filler = net.connect({ port, host: '127.0.0.1' });
    filler.on('error', () => {});
    fillers.push(filler);
    await new Promise<void>((resolve) => filler.once('connect', () => resolve()));
  }
  return {
    port,
    fillers,
    async release() {
      for (const socket of fillers) socket.destroy();
      Atomics.store(gate, 0, 1);
      Atomics.notify(gate, 0);
      await worker.terminate();
    },
  };
}

describe('UpstreamConnection connect timeout', () => {
  it('a connect that hangs is abandoned after connectTimeoutMs: connecting → closed, the timeout as the reason', async () => {
    const hole = await blackHole();
    const events: string[] = [];
    const connection = new UpstreamConnection(
      { onUpstreamStateChange: (c, previous) => events.push(`${previous}→${c.state.state}`), onUpstreamStreamEnded() {} },
      upstreamEvents,
      { host: '127.0.0.1', port: hole.port, connectTimeoutMs: 100, clock: new FakeTimers() },
    );
    try {
      assert.equal(connection.state.state, 'connecting');
      await waitFor(() => connection.state.state === 'closed', { message: 'connect timed out', timeoutMs: 1500 });
      assert.deepEqual(events, ['connecting→closed']);
      assert.equal(connection.closeReason, 'connect timeout after 100 ms');
      assert.deepEqual(connection.state, { state: 'closed', since: 0, error: 'connect timeout after 100 ms' });
    } finally {
      connection.http2.destroy();
      await hole.release();
    }
  });
});
