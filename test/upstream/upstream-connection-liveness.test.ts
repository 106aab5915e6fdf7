// An upstream connection's liveness against real sockets on loopback, with the keepalive and drain timers on a fake
// clock: ready only on the endpoint's SETTINGS, a silent endpoint given up by the PING keepalive, a live one kept, a
// drain after the endpoint's GOAWAY bounded, TCP keepalive on the socket.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { PEER_GOAWAY_DRAIN_DEADLINE_MS, UpstreamConnection, type UpstreamConnectionOwner } from '../../agent/upstream/upstream-connection.ts';
import { waitFor } from '../../lab/wait-for.ts';
import { FakeTimers } from '../support/fake-timers.ts';
import { type Peer, REQUEST, startPeer, upstreamEvents } from './http2-peer.ts';

/** An empty SETTINGS frame: what an endpoint sends first. */
const SETTINGS_FRAME = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);

function recorder(): { owner: UpstreamConnectionOwner; events: string[] } {
  const events: string[] = [];
  return {
    events,
    owner: {
      onUpstreamStateChange: (connection, previous) => events.push(`${previous}→${connection.state.state}@${connection.state.since}`),
      onUpstreamStreamEnded: () => events.push('stream ended'),
    },
  };
}

/** A TCP listener that accepts and keeps every byte it gets, answering nothing until told: a frozen process's kernel. */
async function silentListener(): Promise<{ port: number; sockets: net.Socket[]; received: () => number; close(): Promise<void> }> {
  const sockets: net.Socket[] = [];
  let received = 0;
  const server = net.createServer((socket) => {
    sockets.push(socket);
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    sockets,
    received: () => received,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A relay in front of a peer that can freeze: from then on it drops every byte both ways (the peer hears nothing). */
async function freezableRelay(targetPort: number): Promise<{ port: number; freeze(): void; close(): Promise<void> }> {
  let frozen = false;
  const sockets: net.Socket[] = [];
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.push(client, upstream);
    client.on('data', (chunk: Buffer) => {
      if (!frozen) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!frozen) client.write(chunk);
    });
    client.on('error', () => {});
    upstream.on('error', () => {});
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    freeze() {
      frozen = true;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('UpstreamConnection liveness', () => {
  const cleanups: Array<() => unknown> = [];
  let clock = new FakeTimers();
  const at = (ms: number): void => clock.advance(ms - clock.now());

  function connect(owner: UpstreamConnectionOwner, port: number, connectTimeoutMs = 5000): UpstreamConnection {
    const connection = new UpstreamConnection(owner, upstreamEvents, { host: '127.0.0.1', port, connectTimeoutMs, clock });
    cleanups.push(() => connection.http2.destroy());
    return connection;
  }

  async function peerWithOneRequestHeld(through?: (port: number) => Promise<number>) {
    const peer = await startPeer();
    cleanups.push(() => peer.close());
    const port = through === undefined ? peer.port : await through(peer.port);
    const r = recorder();
    const connection = connect(r.owner, port);
    await waitFor(() => connection.state.state === 'ready', { message: 'ready' });
    // As the pool does: the connection is handed out, then the stream opens.
    assert.equal(connection.hasCapacity(0), true);
    connection.http2.openStream(REQUEST, false);
    await waitFor(() => peer.held.length === 1, { message: 'the request at the peer' });
    return { peer, r, connection };
  }

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    clock = new FakeTimers();
  });

  it('TCP connected is not ready: ready comes with the endpoint\'s SETTINGS', async () => {
    const listener = await silentListener();
    cleanups.push(() => listener.close());
    const r = recorder();
    const connection = connect(r.owner, listener.port);
    // The client preface and our SETTINGS reached the endpoint: TCP is up.
    await waitFor(() => listener.received() >= 24 + 9, { message: 'our preface at the listener' });
    assert.equal(connection.state.state, 'connecting');
    assert.equal(connection.hasCapacity(0), false);
    at(15);
    listener.sockets[0].write(SETTINGS_FRAME);
    await waitFor(() => connection.state.state === 'ready', { message: 'ready' });
    assert.deepEqual(r.events, ['connecting→ready@15']);
    assert.equal(connection.keepalive.state.state, 'idle', 'watching starts with ready');
  });

  it('an endpoint that accepts TCP and never sends SETTINGS is a connect failure after the connect timeout', async () => {
    const listener = await silentListener();
    cleanups.push(() => listener.close());
    const r = recorder();
    const started = performance.now();
    const connection = connect(r.owner, listener.port, 200);
    await waitFor(() => connection.state.state === 'closed', { message: 'closed', timeoutMs: 3000 });
    const took = performance.now() - started;
    assert.ok(took >= 190 && took < 1000, `closed after ${Math.round(took)} ms`);
    assert.deepEqual(r.events, ['connecting→closed@0']);
    assert.deepEqual(connection.state, { state: 'closed', since: 0, error: 'no HTTP/2 SETTINGS from the endpoint: handshake timeout after 200 ms' });
  });

  it('a frozen endpoint with a stream open: PING after 1 s of silence, lost 2 s later, the stream ends as on a lost connection', async () => {
    let relay: Awaited<ReturnType<typeof freezableRelay>> | null = null;
    const { r, connection } = await peerWithOneRequestHeld(async (port) => {
      relay = await freezableRelay(port);
      cleanups.push(() => relay?.close());
      return relay.port;
    });
    (relay as unknown as { freeze(): void }).freeze();
    at(999);
    assert.equal(connection.keepalive.state.state, 'watching');
    at(1000);
    assert.deepEqual(connection.keepalive.state, { state: 'pinging', sentAt: 1000 });
    at(3000);
    await waitFor(() => connection.state.state === 'closed', { message: 'closed' });
    assert.deepEqual(r.events, ['connecting→ready@0', 'stream ended', 'ready→closed@3000']);
    assert.deepEqual(connection.state, {
      state: 'closed',
      since: 3000,
      error: 'endpoint silent: no answer to a PING within 2000 ms, nothing received for 3000 ms',
    });
    // Closed by the transport, not for a protocol fault: the relay's verdict is a lost connection (UNAVAILABLE).
    const lifecycle = connection.http2.lifecycle;
    assert.equal(lifecycle.state, 'closed');
    assert.equal(lifecycle.state === 'closed' && lifecycle.error?.byPeer, true);
  });

  it('a live endpoint answers the PING: the connection stays, the stream is untouched', async () => {
    const { r, connection, peer } = await peerWithOneRequestHeld();
    at(1000);
    assert.equal(connection.keepalive.state.state, 'pinging');
    await waitFor(() => connection.keepalive.state.state === 'watching', { message: 'the ACK' });
    at(3000);
    assert.equal(connection.state.state, 'ready');
    assert.deepEqual(r.events, ['connecting→ready@0']);
    peer.answerOldest();
    await waitFor(() => r.events.length === 2, { message: 'the stream ended' });
  });

  it('draining after the endpoint\'s GOAWAY is bounded: a stream still open after 10 min closes the connection', async () => {
    const { r, connection, peer } = await peerWithOneRequestHeld();
    // Keep the keepalive satisfied with a live peer: only the drain deadline may close it.
    at(100);
    peer.sessions[0].goaway(0, 1);
    await waitFor(() => connection.state.state === 'draining', { message: 'draining' });
    assert.equal(PEER_GOAWAY_DRAIN_DEADLINE_MS, 600_000);
    // The keepalive's PINGs are answered meanwhile (a real peer): step in seconds, letting each ACK in.
    for (let t = 1100; t < 100 + PEER_GOAWAY_DRAIN_DEADLINE_MS; t += 60_000) {
      at(t);
      await waitFor(() => connection.keepalive.state.state !== 'pinging', { message: `PING at ${t} answered` });
    }
    at(100 + PEER_GOAWAY_DRAIN_DEADLINE_MS - 1);
    assert.equal(connection.state.state, 'draining');
    at(100 + PEER_GOAWAY_DRAIN_DEADLINE_MS);
    await waitFor(() => connection.state.state === 'closed', { message: 'closed' });
    assert.deepEqual(r.events, ['connecting→ready@0', 'ready→draining@100', 'stream ended', `draining→closed@${100 + PEER_GOAWAY_DRAIN_DEADLINE_MS}`]);
    assert.deepEqual(connection.state, {
      state: 'closed',
      since: 100 + PEER_GOAWAY_DRAIN_DEADLINE_MS,
      error: "1 stream(s) still open 600 s after the endpoint's GOAWAY",
    });
  });

  it('a drain that finishes in time leaves no timer behind', async () => {
    const { connection, peer } = await peerWithOneRequestHeld();
    peer.sessions[0].goaway(0, 1);
    await waitFor(() => connection.state.state === 'draining', { message: 'draining' });
    peer.answerOldest();
    await waitFor(() => connection.state.state === 'closed', { message: 'closed' });
    assert.equal(clock.activeCount, 0, 'no keepalive tick, no drain deadline');
  });

  it('the socket has TCP keepalive after 10 s idle: the kernel shows its keepalive timer', async () => {
    const peer: Peer = await startPeer();
    cleanups.push(() => peer.close());
    const connection = connect(recorder().owner, peer.port);
    await waitFor(() => connection.state.state === 'ready', { message: 'ready' });
    let shown = '';
    // Right after the handshake the kernel may show its retransmission timer instead; the keepalive one follows.
    await waitFor(
      () => {
        shown = execFileSync('ss', ['-tnoH', 'state', 'established', `( dport = :${peer.port} )`], { encoding: 'utf8' });
        return /timer:\(keepalive,/.test(shown);
      },
      { message: 'a keepalive timer on the socket', timeoutMs: 3000 },
    );
    // ss prints a timer under a minute as seconds with a "ms" suffix ("9.944ms"), one over a minute as "1min39sec".
    const seconds = Number(/timer:\(keepalive,([0-9.]+)(ms|sec)/.exec(shown)?.[1]);
    assert.ok(seconds > 5 && seconds <= 10, `first probe in ${seconds} s: ${shown}`);
  });
});
