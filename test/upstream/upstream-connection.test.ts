// One upstream connection against a real node:http2 peer on loopback: its exact state sequence, capacity, GOAWAY, loss, reset budget.

import assert from 'node:assert/strict';
import type { ServerHttp2Stream } from 'node:http2';
import { afterEach, describe, it } from 'node:test';
import { UpstreamConnection, type UpstreamConnectionOwner } from '../../agent/upstream/upstream-connection.ts';
import { waitFor } from '../../lab/wait-for.ts';
import { FakeTimers } from '../support/fake-timers.ts';
import { type Peer, REQUEST, refusingPort, startPeer, upstreamEvents } from './http2-peer.ts';

interface Recorded {
  owner: UpstreamConnectionOwner;
  /** `previous→state@since`, and `stream ended` for each stream end reported. */
  events: string[];
}

function recorder(): Recorded {
  const events: string[] = [];
  return {
    events,
    owner: {
      onUpstreamStateChange: (connection, previous) => events.push(`${previous}→${connection.state.state}@${connection.state.since}`),
      onUpstreamStreamEnded: () => events.push('stream ended'),
    },
  };
}

describe('UpstreamConnection', () => {
  let peer: Peer | null = null;
  const open: UpstreamConnection[] = [];
  /** The test's clock: moved by hand, so every `since` is exact. */
  let clock = new FakeTimers();
  const at = (ms: number): void => clock.advance(ms - clock.now());

  function connect(r: Recorded, port: number, connectTimeoutMs = 5000): UpstreamConnection {
    const connection = new UpstreamConnection(r.owner, upstreamEvents, { host: '127.0.0.1', port, connectTimeoutMs, clock });
    open.push(connection);
    return connection;
  }

  /** A peer, a ready connection to it, and one request the peer holds open. */
  async function readyWithOneRequestHeld(): Promise<{ r: Recorded; connection: UpstreamConnection; peer: Peer; atPeer: Peer['held'][number] }> {
    const started = await startPeer();
    peer = started;
    const r = recorder();
    const connection = connect(r, peer.port);
    await waitFor(() => connection.state.state === 'ready', { message: 'ready' });
    connection.http2.openStream(REQUEST, false);
    await waitFor(() => started.held.length === 1, { message: 'request at the peer' });
    return { r, connection, peer: started, atPeer: started.held[0] };
  }

  afterEach(async () => {
    for (const connection of open.splice(0)) connection.http2.destroy();
    await peer?.close();
    peer = null;
    clock = new FakeTimers();
  });

  it('connecting → ready → draining → closed, with the time of each step; an idle connection closes at once, cleanly', async () => {
    peer = await startPeer();
    const r = recorder();
    at(10);
    const connection = connect(r, peer.port);
    assert.deepEqual(connection.state, { state: 'connecting', since: 10 });
    assert.equal(connection.isConnecting, true);
    assert.equal(connection.hasCapacity(0), false, 'no capacity before the socket connects');
    at(20);
    await waitFor(() => connection.state.state === 'ready', { message: 'ready' });
    assert.deepEqual(connection.state, { state: 'ready', since: 20 });
    assert.equal(connection.isConnecting, false);
    assert.equal(connection.hasCapacity(0), true);
    at(30);
    connection.drain();
    assert.equal(connection.hasCapacity(0), false, 'a draining connection takes no new stream');
    await waitFor(() => connection.state.state === 'closed', { message: 'closed' });
    assert.deepEqual(r.events, ['connecting→ready@20', 'ready→draining@30', 'draining→closed@30']);
    assert.deepEqual(connection.state, { state: 'closed', since: 30, error: null });
    assert.equal(connection.closeReason, null);
  });

  it('a drain sends GOAWAY, waits for the open streams, then closes', async () => {
    peer = await startPeer();
    const r = recorder();
    const connection = connect(r, peer.port);
    await waitFor(() => connection.state.state === 'ready', { message: 'ready' });
    assert.notEqual(connection.http2.openStream(REQUEST, true), null);
    await waitFor(() => peer?.held.length === 1, { message: 'the peer got the request' });
    at(5);
    connection.drain();
    connection.drain();
    assert.deepEqual(connection.state, { state: 'draining', since: 5 });
    await waitFor(() => peer?.goaways.length === 1, { message: 'the peer got GOAWAY' });
    assert.deepEqual(peer.goaways, [0], 'GOAWAY with NO_ERROR');
    assert.equal(connection.state.state, 'draining', 'still draining while the stream runs');
    peer.answerOldest();
    await waitFor(() => connection.state.state === 'closed', { message: 'closed after the stream' });
    assert.deepEqual(r.events, ['connecting→ready@0', 'ready→draining@5', 'stream ended', 'draining→closed@5']);
  });

  it('a refused connect goes from connecting straight to closed, with the socket error as the reason', async () => {
    const port = await refusingPort();
    const r = recorder();
    at(7);
    const connection = connect(r, port);
    await waitFor(() => connection.state.state === 'closed', { message: 'closed' });
    assert.deepEqual(r.events, ['connecting→closed@7']);
    assert.deepEqual(connection.state, { state: 'closed', since: 7, error: `connect ECONNREFUSED 127.0.0.1:${port}` });
    assert.equal(connection.closeReason, `connect ECONNREFUSED 127.0.0.1:${port}`);
    assert.equal(connection.isConnecting, false);
  });

  it('drain while connecting abandons the connect: connecting → closed, no error', async () => {
    peer = await startPeer();
    const r = recorder();
    const connection = connect(r, peer.port);
    connection.drain();
    await waitFor(() => connection.state.state === 'closed', { message: 'closed' });
    assert.deepEqual(r.events, ['connecting→closed@0']);
    assert.deepEqual(connection.state, { state: 'closed', since: 0, error: null });
  });

  it('stays ready past the connect timeout: the timeout covers only the connect', async () => {
    peer = await startPeer();
    const r = recorder();
    const connection = connect(r, peer.port, 50);
    await waitFor(() => connection.state.state === 'ready', { message: 'ready' });
    // An idle HTTP/2 connection exchanges nothing after SETTINGS: a connect timeout left armed would fire here.
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(r.events, ['connecting→ready@0']);
    assert.equal(connection.state.state, 'ready');
  });

  it('capacity: ready, below the peer\'s MAX_CONCURRENT_STREAMS less a headroom of at most a quarter of it', async () => {
    peer = await startPeer({ maxConcurrentStreams: 8 });
    const r = recorder();
    const connection = connect(r, peer.port);
    await waitFor(() => connection.state.state === 'ready' && connection.http2.remoteSettings.maxConcurrentStreams === 8, {
      message: "the peer's SETTINGS applied",
    });
    const table: string[] = [];
    for (let active = 0; active <= 8; active++) {
      assert.equal(connection.http2.activeStreamCount, active);
      table.push(`${active}: ${[0, 1, 2, 3, 100].map((headroom) => (connection.hasCapacity(headroom) ? 'y' : 'n')).join('')}`);
      if (active < 8) assert.notEqual(connection.http2.openStream(REQUEST, true), null);
    }
    // Headroom 3 and 100 are capped at 8 / 4 = 2 streams kept free.
    assert.deepEqual(table, [
      '0: yyyyy',
      '1: yyyyy',
      '2: yyyyy',
      '3: yyyyy',
      '4: yyyyy',
      '5: yyyyy',
      '6: yynnn',
      '7: ynnnn',
      '8: nnnnn',
    ]);
  });

  it("the peer's GOAWAY: ready → draining, no new streams; closed once the open stream ends", async () => {
    peer = await startPeer();
    const r = recorder();
    const connection = connect(r, peer.port);
    await waitFor(() => peer?.sessions.length === 1 && connection.state.state === 'ready', { message: 'ready' });
    connection.http2.openStream(REQUEST, true);
    await waitFor(() => peer?.held.length === 1, { message: 'request at the peer' });
    at(40);
    peer.sessions[0].goaway(0, 1);
    await waitFor(() => connection.state.state === 'draining', { message: 'draining' });
    assert.deepEqual(connection.state, { state: 'draining', since: 40 });
    assert.equal(connection.hasCapacity(0), false);
    at(50);
    peer.answerOldest();
    await waitFor(() => connection.state.state === 'closed', { message: 'closed' });
    assert.deepEqual(r.events, ['connecting→ready@0', 'ready→draining@40', 'stream ended', 'draining→closed@50']);
    assert.deepEqual(connection.state, { state: 'closed', since: 50, error: null });
  });

  it("the peer's GOAWAY on an idle connection: ready → draining → closed at once", async () => {
    peer = await startPeer();
    const r = recorder();
    const connection = connect(r, peer.port);
    await waitFor(() => peer?.sessions.length === 1 && connection.state.state === 'ready', { message: 'ready' });
    at(40);
    peer.sessions[0].goaway(0);
    await waitFor(() => connection.state.state === 'closed', { message: 'closed' });
    assert.deepEqual(r.events, ['connecting→ready@0', 'ready→draining@40', 'draining→closed@40']);
    assert.deepEqual(connection.state, { state: 'closed', since: 40, error: null });
  });

  it('every stream that ends is reported to the owner, answered or reset', async () => {
    peer = await startPeer();
    const r = recorder();
    const connection = connect(r, peer.port);
    await waitFor(() => connection.state.state === 'ready', { message: 'ready' });
    connection.http2.openStream(REQUEST, true);
    connection.http2.openStream(REQUEST, true);
    await waitFor(() => peer?.held.length === 2, { message: 'two requests at the peer' });
    peer.answerOldest();
    await waitFor(() => r.events.length === 2, { message: 'first end reported' });
    (peer.held.shift() as ServerHttp2Stream).close(8);
    await waitFor(() => r.events.length === 3, { message: 'second end reported' });
    assert.deepEqual(r.events, ['connecting→ready@0', 'stream ended', 'stream ended']);
    assert.equal(connection.http2.activeStreamCount, 0);
    assert.equal(connection.state.state, 'ready');
  });

  it('an endpoint lost with a stream open: ready → closed with the reason', async () => {
    const { r, connection, peer: endpoint } = await readyWithOneRequestHeld();
    at(60);
    endpoint.sockets[0].destroy();
    await waitFor(() => connection.state.state === 'closed', { message: 'closed' });
    assert.deepEqual(r.events, ['connecting→ready@0', 'stream ended', 'ready→closed@60']);
    assert.deepEqual(connection.state, { state: 'closed', since: 60, error: 'transport closed with streams open' });
  });

  it('close() (a drain past its deadline) ends it at once: open streams reset, ready → closed', async () => {
    const { r, connection, atPeer } = await readyWithOneRequestHeld();
    at(70);
    connection.close();
    assert.deepEqual(r.events, ['connecting→ready@0', 'stream ended', 'ready→closed@70']);
    assert.deepEqual(connection.state, { state: 'closed', since: 70, error: 'connection destroyed' });
    await waitFor(() => atPeer.closed, { message: 'the stream ended at the peer' });
  });

  it('after closed nothing moves it: a second close, a drain or a GOAWAY report nothing', async () => {
    peer = await startPeer();
    const r = recorder();
    const connection = connect(r, peer.port);
    await waitFor(() => connection.state.state === 'ready', { message: 'ready' });
    at(3);
    connection.onClosed('gone');
    assert.deepEqual(connection.state, { state: 'closed', since: 3, error: 'gone' });
    at(4);
    connection.onClosed('again');
    connection.onPeerGoaway();
    connection.drain();
    assert.deepEqual(r.events, ['connecting→ready@0', 'ready→closed@3']);
    assert.deepEqual(connection.state, { state: 'closed', since: 3, error: 'gone' });
  });

  it('a GOAWAY while draining changes nothing (draining is reported once)', async () => {
    const { r, connection } = await readyWithOneRequestHeld();
    connection.onPeerGoaway();
    at(9);
    connection.onPeerGoaway();
    connection.drain();
    assert.deepEqual(r.events, ['connecting→ready@0', 'ready→draining@0']);
  });

  it('each connection has its own reset budget: a burst of 100, then 20 per second', async () => {
    peer = await startPeer();
    const connection = connect(recorder(), peer.port);
    const other = connect(recorder(), peer.port);
    let granted = 0;
    for (let i = 0; i < 150; i++) if (connection.resetBudget.take(0)) granted++;
    assert.equal(granted, 100);
    assert.equal(connection.resetBudget.take(49), false);
    assert.equal(connection.resetBudget.take(50), true);
    assert.equal(connection.resetBudget.take(50), false);
    assert.equal(other.resetBudget.take(0), true, 'the other connection still has its own');
  });
});
