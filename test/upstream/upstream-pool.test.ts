// One endpoint's pool against a real node:http2 peer on loopback: connections opened on demand, waiters served or failed, backoff, drain.

import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { Http2Connection } from '../../agent/http2/connection.ts';
import type { UpstreamConnection } from '../../agent/upstream/upstream-connection.ts';
import { type PoolOptions, UpstreamPool } from '../../agent/upstream/upstream-pool.ts';
import { waitFor } from '../../lab/wait-for.ts';
import { FakeTimers } from '../support/fake-timers.ts';
import { type Peer, recordingWaiters, refusingPort, startPeer, upstreamEvents } from './http2-peer.ts';

type Connection = Http2Connection<unknown, unknown>;

describe('UpstreamPool', () => {
  const peers: Peer[] = [];
  const pools: UpstreamPool[] = [];
  let clock = new FakeTimers();
  const at = (ms: number): void => clock.advance(ms - clock.now());

  afterEach(async () => {
    for (const pool of pools.splice(0)) for (const connection of pool.connections) connection.http2.destroy();
    for (const peer of peers.splice(0)) await peer.close();
    clock = new FakeTimers();
  });

  async function peer(settings: Parameters<typeof startPeer>[0] = {}): Promise<Peer> {
    const started = await startPeer(settings);
    peers.push(started);
    return started;
  }

  /** A pool, the observer's record (`c<n> previous→state`, n in creation order) and a name for each connection. */
  function pool(port: number, options: Partial<PoolOptions> = {}) {
    const events: string[] = [];
    const numbers = new Map<unknown, number>();
    const name = (connection: UpstreamConnection | Connection): string => {
      const key = 'http2' in connection ? connection.http2 : connection;
      return `c${numbers.get(key)}`;
    };
    const created = new UpstreamPool(
      `127.0.0.1:${port}`,
      upstreamEvents,
      {
        host: '127.0.0.1',
        port,
        connectTimeoutMs: 5000,
        maxConnections: 2,
        streamHeadroom: 0,
        backoff: { initialMs: 100, maxMs: 1000 },
        clock,
        random: () => 0.5,
        ...options,
      },
      {
        onConnectionStateChange: (_pool, connection, previous) => {
          if (!numbers.has(connection.http2)) numbers.set(connection.http2, numbers.size);
          events.push(`${name(connection)} ${previous}→${connection.state.state}`);
        },
      },
    );
    pools.push(created);
    return { pool: created, events, name };
  }


  it('the first request opens one connection; requests while it connects wait, then are served in order on it', async () => {
    const p = await peer();
    const { pool: subject, events, name } = pool(p.port);
    const w = recordingWaiters(name);
    assert.equal(subject.acquire(), null);
    assert.equal(subject.acquire(), null);
    subject.wait(w.make('a'));
    subject.wait(w.make('b'));
    subject.wait(w.make('c'));
    assert.deepEqual(events, ['c0 null→connecting'], 'one connection however many ask');
    assert.equal(subject.connections.length, 1);
    await waitFor(() => w.log.length === 3, { message: 'waiters served' });
    assert.deepEqual(w.log, ['a on c0', 'b on c0', 'c on c0']);
    assert.deepEqual(events, ['c0 null→connecting', 'c0 connecting→ready']);
    assert.equal(subject.acquire(), subject.connections[0].http2, 'ready with room: handed out at once');
    assert.equal(subject.state, 'active');
    assert.equal(subject.inBackoff, false);
    await waitFor(() => p.held.length === 3, { message: 'three requests at the peer' });
  });

  it('a full connection gets a second one, up to maxConnections; beyond that requests wait for a stream to end', async () => {
    // MAX_CONCURRENT_STREAMS 4 less a headroom of 1: three streams per connection.
    const p = await peer({ maxConcurrentStreams: 4 });
    const { pool: subject, events, name } = pool(p.port, { maxConnections: 2, streamHeadroom: 1 });
    const w = recordingWaiters(name);
    for (const label of ['a', 'b', 'c']) subject.wait(w.make(label));
    await waitFor(() => w.log.length === 3 && p.held.length === 3, { message: 'first three on c0' });
    await waitFor(() => subject.connections[0].http2.remoteSettings.maxConcurrentStreams === 4, { message: "peer's SETTINGS" });
    assert.equal(subject.acquire(), null, 'c0 is full');
    for (const label of ['d', 'e', 'f']) subject.wait(w.make(label));
    await waitFor(() => w.log.length === 6, { message: 'next three on c1' });
    await waitFor(() => subject.connections[1].http2.remoteSettings.maxConcurrentStreams === 4, { message: "peer's SETTINGS on c1" });
    assert.equal(subject.acquire(), null);
    subject.wait(w.make('g'));
    subject.wait(w.make('h'));
    assert.deepEqual(events, ['c0 null→connecting', 'c0 connecting→ready', 'c1 null→connecting', 'c1 connecting→ready'], 'no third connection');
    assert.deepEqual(w.log, ['a on c0', 'b on c0', 'c on c0', 'd on c1', 'e on c1', 'f on c1']);
    await waitFor(() => p.held.length === 6, { message: 'six requests at the peer' });
    // The oldest stream (a, on c0) ends: g takes its place; h still waits.
    p.answerOldest();
    await waitFor(() => w.log.length === 7, { message: 'g served' });
    assert.deepEqual(w.log.slice(6), ['g on c0']);
    p.answerOldest();
    await waitFor(() => w.log.length === 8, { message: 'h served' });
    assert.deepEqual(w.log.slice(6), ['g on c0', 'h on c0']);
  });

  it('a waiter that gave up is never served', async () => {
    const p = await peer();
    const { pool: subject, name } = pool(p.port);
    const w = recordingWaiters(name);
    const gone = w.make('gone');
    subject.wait(w.make('a'));
    subject.wait(gone);
    subject.wait(w.make('b'));
    subject.cancelWait(gone);
    subject.cancelWait(gone);
    await waitFor(() => w.log.length === 2, { message: 'the two others served' });
    assert.deepEqual(w.log, ['a on c0', 'b on c0']);
    await waitFor(() => p.held.length === 2, { message: 'two requests at the peer' });
  });

  it('a refused connect fails the waiters with the reason and starts backoff (equal jitter, doubling per failure), which later waiters wait out', async () => {
    const port = await refusingPort();
    const { pool: subject, events, name } = pool(port);
    const w = recordingWaiters(name);
    const refused = `connect ECONNREFUSED 127.0.0.1:${port}`;
    at(1000);
    subject.wait(w.make('a'));
    subject.wait(w.make('b'));
    await waitFor(() => w.log.length === 2, { message: 'waiters failed' });
    assert.deepEqual(w.log, [`a failed: ${refused}`, `b failed: ${refused}`]);
    assert.deepEqual(events, ['c0 null→connecting', 'c0 connecting→closed']);
    assert.equal(subject.connections.length, 0);
    assert.equal(subject.failureReason, refused);
    // First failure: ceiling 100 ms, random 0.5 → 50 + 25 = 75 ms.
    at(1074);
    assert.equal(subject.inBackoff, true);
    // In backoff, a request waits for the next attempt and nothing connects before it.
    assert.equal(subject.acquire(), null);
    subject.wait(w.make('c'));
    assert.deepEqual(w.log.slice(2), []);
    assert.equal(subject.connections.length, 0);
    assert.equal(events.length, 2);
    // The backoff's end (before WAITING_RETRY_MS): the attempt c waited for; d joins it.
    at(1075);
    assert.equal(subject.inBackoff, false);
    assert.equal(events.length, 3);
    subject.wait(w.make('d'));
    await waitFor(() => w.log.length === 4, { message: 'second attempt failed' });
    assert.deepEqual(w.log.slice(2), [`c failed: ${refused}`, `d failed: ${refused}`]);
    // Second failure: ceiling 200 ms → 100 + 50 = 150 ms.
    at(1224);
    assert.equal(subject.inBackoff, true);
    at(1225);
    assert.equal(subject.inBackoff, false);
    assert.equal(subject.acquire(), null);
    await waitFor(() => events.length === 6, { message: 'third attempt failed' });
    // Third failure: ceiling 400 ms → 200 + 100 = 300 ms.
    at(1524);
    assert.equal(subject.inBackoff, true);
    at(1525);
    assert.equal(subject.inBackoff, false);
    assert.deepEqual(events, [
      'c0 null→connecting',
      'c0 connecting→closed',
      'c1 null→connecting',
      'c1 connecting→closed',
      'c2 null→connecting',
      'c2 connecting→closed',
    ]);
  });

  it('a connection that gets ready ends the backoff: the next failure starts again from the first delay', async () => {
    const p = await peer();
    const port = p.port;
    await p.stopListening();
    const { pool: subject, name } = pool(port);
    const w = recordingWaiters(name);
    subject.wait(w.make('a'));
    await waitFor(() => w.log.length === 1, { message: 'first connect refused' });
    at(75);
    subject.wait(w.make('b'));
    await waitFor(() => w.log.length === 2, { message: 'second connect refused' });
    at(225);
    // The endpoint is back: the third attempt connects, and b's successor is served.
    await p.listenAgain();
    subject.wait(w.make('c'));
    await waitFor(() => w.log.length === 3, { message: 'c served' });
    assert.deepEqual(w.log.slice(2), ['c on c2']);
    assert.equal(subject.inBackoff, false);
    // The endpoint goes away entirely (a pod that died): the ready connection closes, which is no connect failure.
    await p.stopListening();
    for (const socket of p.sockets) socket.destroy();
    await waitFor(() => subject.connections.length === 0, { message: 'connection closed' });
    assert.equal(subject.inBackoff, false, 'losing a ready connection is not a connect failure');
    at(1000);
    subject.wait(w.make('d'));
    await waitFor(() => w.log.length === 4, { message: 'd failed' });
    // Counted as the first failure again: 75 ms, not the 300 ms a third would give.
    at(1074);
    assert.equal(subject.inBackoff, true);
    at(1075);
    assert.equal(subject.inBackoff, false);
  });

  it('a failed extra connection does not put an endpoint with a ready connection in backoff', async () => {
    const p = await peer({ maxConcurrentStreams: 4 });
    const { pool: subject, events, name } = pool(p.port, { maxConnections: 2, streamHeadroom: 1 });
    const w = recordingWaiters(name);
    for (const label of ['a', 'b', 'c']) subject.wait(w.make(label));
    await waitFor(() => w.log.length === 3 && subject.connections[0].http2.remoteSettings.maxConcurrentStreams === 4, {
      message: 'c0 full',
    });
    await p.stopListening();
    subject.wait(w.make('d'));
    await waitFor(() => w.log.length === 4, { message: 'the extra connection refused' });
    assert.match(w.log[3], /^d failed: connect ECONNREFUSED/);
    assert.deepEqual(events, ['c0 null→connecting', 'c0 connecting→ready', 'c1 null→connecting', 'c1 connecting→closed']);
    assert.equal(subject.inBackoff, false);
    assert.equal(subject.connections.length, 1);
  });

  it('a ready connection lost while requests wait is replaced, and they are served on the new one', async () => {
    const p = await peer({ maxConcurrentStreams: 4 });
    const { pool: subject, events, name } = pool(p.port, { maxConnections: 1, streamHeadroom: 1 });
    const w = recordingWaiters(name);
    for (const label of ['a', 'b', 'c']) subject.wait(w.make(label));
    await waitFor(() => w.log.length === 3 && subject.connections[0].http2.remoteSettings.maxConcurrentStreams === 4, {
      message: 'c0 full',
    });
    subject.wait(w.make('d'));
    assert.deepEqual(w.log, ['a on c0', 'b on c0', 'c on c0']);
    p.sockets[0].destroy();
    await waitFor(() => w.log.length === 4, { message: 'd served' });
    assert.deepEqual(w.log.slice(3), ['d on c1']);
    assert.deepEqual(events, ['c0 null→connecting', 'c0 connecting→ready', 'c0 ready→closed', 'c1 null→connecting', 'c1 connecting→ready']);
    assert.equal(subject.inBackoff, false);
  });

  it('drain: waiters fail, no new connection, streams in flight finish, then every connection closes and the pool is closed', async () => {
    const p = await peer({ maxConcurrentStreams: 4 });
    const { pool: subject, events, name } = pool(p.port, { maxConnections: 1, streamHeadroom: 1 });
    const w = recordingWaiters(name);
    for (const label of ['a', 'b', 'c']) subject.wait(w.make(label));
    await waitFor(() => w.log.length === 3 && p.held.length === 3 && subject.connections[0].http2.remoteSettings.maxConcurrentStreams === 4, {
      message: 'c0 full',
    });
    subject.wait(w.make('d'));
    subject.drain();
    assert.deepEqual(w.log.slice(3), ['d failed: endpoint removed']);
    assert.equal(subject.state, 'draining');
    assert.equal(subject.acquire(), null);
    subject.wait(w.make('e'));
    subject.drain();
    assert.deepEqual(events, ['c0 null→connecting', 'c0 connecting→ready', 'c0 ready→draining']);
    await waitFor(() => p.goaways.length === 1, { message: 'GOAWAY at the peer' });
    p.answerOldest();
    p.answerOldest();
    await waitFor(() => p.held.length === 1 && subject.connections[0]?.http2.activeStreamCount === 1, { message: 'two of three done' });
    assert.equal(subject.state, 'draining');
    p.answerOldest();
    await waitFor(() => subject.state === 'closed', { message: 'pool closed' });
    assert.deepEqual(events, ['c0 null→connecting', 'c0 connecting→ready', 'c0 ready→draining', 'c0 draining→closed']);
    assert.equal(subject.connections.length, 0);
    assert.equal(subject.acquire(), null);
    assert.equal(subject.connections.length, 0, 'a closed pool opens nothing');
  });

  it('drain of a pool with no connection closes it at once', async () => {
    const port = await refusingPort();
    const { pool: subject, events } = pool(port);
    subject.drain();
    assert.equal(subject.state, 'closed');
    assert.equal(subject.acquire(), null);
    assert.deepEqual(events, []);
  });

  it('drain while connecting abandons the connect and fails the waiters once', async () => {
    const p = await peer();
    const { pool: subject, events, name } = pool(p.port);
    const w = recordingWaiters(name);
    subject.wait(w.make('a'));
    subject.drain();
    assert.deepEqual(w.log, ['a failed: endpoint removed']);
    await waitFor(() => subject.state === 'closed', { message: 'pool closed' });
    assert.deepEqual(events, ['c0 null→connecting', 'c0 connecting→closed']);
    assert.deepEqual(w.log, ['a failed: endpoint removed']);
  });
});
