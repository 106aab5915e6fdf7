// Requests that wait on an endpoint's pool while it backs off wait for its next attempt — at most WAITING_RETRY_MS
// after the failure, however long the backoff has grown — and are served as soon as the endpoint is back; a connection
// the endpoint drains (GOAWAY, its streams still open) does not count toward the connection limit.

import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { type PoolOptions, UpstreamPool, WAITING_RETRY_MS } from '../../agent/upstream/upstream-pool.ts';
import { waitFor } from '../../lab/wait-for.ts';
import { FakeTimers } from '../support/fake-timers.ts';
import { type Peer, recordingWaiters, refusingPort, startPeer, upstreamEvents } from './http2-peer.ts';

describe('UpstreamPool: waiting through backoff, draining outside the limit', () => {
  const peers: Peer[] = [];
  const pools: UpstreamPool[] = [];
  let clock = new FakeTimers();
  const at = (ms: number): void => clock.advance(ms - clock.now());

  afterEach(async () => {
    for (const pool of pools.splice(0)) for (const connection of pool.connections) connection.http2.destroy();
    for (const peer of peers.splice(0)) await peer.close();
    clock = new FakeTimers();
  });

  function pool(port: number, options: Partial<PoolOptions> = {}): UpstreamPool {
    const created = new UpstreamPool(`127.0.0.1:${port}`, upstreamEvents, {
      host: '127.0.0.1',
      port,
      connectTimeoutMs: 5000,
      maxConnections: 1,
      streamHeadroom: 0,
      // A backoff that has grown long: the waiters' retry must not wait for it.
      backoff: { initialMs: 10_000, maxMs: 10_000 },
      clock,
      random: () => 0.5,
      ...options,
    });
    pools.push(created);
    return created;
  }

  it('a waiter in a long backoff is tried again WAITING_RETRY_MS after the failure, and served once the endpoint listens', async () => {
    const p = await startPeer();
    peers.push(p);
    await p.stopListening();
    const subject = pool(p.port);
    const w = recordingWaiters();
    at(1000);
    subject.wait(w.make('a'));
    await waitFor(() => w.log.length === 1, { message: 'the first connect refused', timeoutMs: 2000 });
    assert.match(w.log[0], /^a failed: connect ECONNREFUSED/);
    assert.equal(subject.inBackoff, true, 'backoff 7.5 s');
    subject.wait(w.make('b'));
    at(1000 + WAITING_RETRY_MS - 1);
    assert.equal(subject.connections.length, 0, 'not before WAITING_RETRY_MS');
    await p.listenAgain();
    at(1000 + WAITING_RETRY_MS);
    assert.equal(subject.connections.length, 1, 'the attempt b waited for');
    await waitFor(() => w.log.length === 2, { message: 'b served', timeoutMs: 2000 });
    assert.deepEqual(w.log.slice(1), ['b served']);
    assert.equal(subject.inBackoff, false);
  });

  it('no waiter, no retry: a backoff with nobody waiting leaves no attempt scheduled', async () => {
    const port = await refusingPort();
    const subject = pool(port);
    const w = recordingWaiters();
    const a = w.make('a');
    subject.wait(a);
    await waitFor(() => w.log.length === 1, { message: 'refused', timeoutMs: 2000 });
    assert.equal(clock.activeCount, 0);
    const b = w.make('b');
    subject.wait(b);
    assert.equal(clock.activeCount, 1, 'one attempt scheduled for b');
    subject.cancelWait(b);
    at(WAITING_RETRY_MS * 4);
    assert.equal(subject.connections.length, 0, 'b gave up: nothing connects');
  });

  it('a connection the endpoint drains with streams open is outside the limit: the next request gets a new one', async () => {
    const p = await startPeer();
    peers.push(p);
    const subject = pool(p.port, { maxConnections: 1 });
    const w = recordingWaiters();
    subject.wait(w.make('a'));
    await waitFor(() => w.log.length === 1 && p.held.length === 1, { message: 'a at the peer', timeoutMs: 2000 });
    // GOAWAY with the last stream id above a's: a runs on, c0 takes nothing new.
    p.sessions[0].goaway(0, 101);
    await waitFor(() => subject.connections[0].state.state === 'draining', { message: 'c0 draining', timeoutMs: 2000 });
    subject.wait(w.make('b'));
    await waitFor(() => w.log.length === 2, { message: 'b served on a second connection', timeoutMs: 2000 });
    assert.deepEqual(w.log, ['a served', 'b served']);
    assert.equal(subject.connections.length, 2);
    assert.deepEqual(subject.connections.map((c) => c.state.state), ['draining', 'ready']);
  });
});
