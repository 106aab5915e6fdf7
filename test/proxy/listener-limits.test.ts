// The client connection limits at the listener: the connection cap, connections left unread while the agent is over its
// buffer budget, new streams refused with REFUSED_STREAM then, and the handshake timeout.

import assert from 'node:assert/strict';
import net from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { ErrorCode } from '../../agent/http2/constants.ts';
import { AuthorityParser } from '../../agent/proxy/authority.ts';
import { BufferBudget } from '../../agent/proxy/buffer-budget.ts';
import { ProxyListener } from '../../agent/proxy/listener.ts';
import { Relay } from '../../agent/proxy/relay.ts';
import type { RouteTable } from '../../agent/proxy/route.ts';
import { realClock } from '../../agent/vocabulary/clock.ts';
import { waitFor } from '../../lab/wait-for.ts';
import { PREFACE, parseFrames, request, resets, settings, settingsAck, T } from '../support/raw-frames.ts';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startProxy(maxConnections: number, handshakeTimeoutMs = 5000) {
  const routes: RouteTable = { routeForAddress: () => null, routeForKey: () => null };
  const relay = new Relay({
    routes,
    authority: new AuthorityParser('cluster.local'),
    clock: realClock,
    random: Math.random,
    connectTimeoutMs: 2000,
    maxConnectionsPerEndpoint: 4,
    streamHeadroom: 8,
    observer: { onExchangeFinished: () => {}, onRequestRejected: () => {}, onUpstreamConnectionState: () => {}, onTransparentRetry: () => {}, onResponseStarted: () => {} },
  });
  const budget = new BufferBudget(1000, realClock, { onExhausted: () => {}, onRelieved: () => {} });
  const counts = { limit: 0, refusedStreams: 0, handshakeTimeouts: 0 };
  relay.downstreamHandler.limits = {
    budget,
    streamOpened: () => {},
    streamRefused: () => counts.refusedStreams++,
    handshakeTimedOut: () => counts.handshakeTimeouts++,
    flooded: () => {},
  };
  const listener = new ProxyListener({
    relay,
    routes,
    originalDestination: () => null,
    sniffTimeoutMs: 5000,
    connectTimeoutMs: 2000,
    limits: { maxConnections, handshakeTimeoutMs, budget },
    events: {
      onPassthroughError: () => {},
      onOriginalDestinationError: () => {},
      onConnectionOpened: () => {},
      onConnectionClosed: () => {},
      onConnectionLimit: () => counts.limit++,
    },
  });
  const { port } = await listener.listen('127.0.0.1', 0);
  cleanups.push(async () => {
    const drained = listener.drain(0);
    listener.destroyAll();
    await drained;
    relay.close();
  });
  return { listener, port, budget, counts };
}

function rawClient(port: number) {
  const socket = net.connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  const state = { closed: false };
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => {});
  socket.on('close', () => {
    state.closed = true;
  });
  cleanups.push(() => {
    socket.destroy();
  });
  return { socket, state, frames: () => parseFrames(Buffer.concat(chunks)) };
}

describe('ProxyListener: client connection limits', () => {
  it('refuses connections past the cap at accept, and serves the ones below it', async () => {
    const proxy = await startProxy(2);
    const first = rawClient(proxy.port);
    const second = rawClient(proxy.port);
    await waitFor(() => proxy.listener.openConnections === 2, { message: 'two accepted' });
    const third = rawClient(proxy.port);
    await waitFor(() => third.state.closed, { message: 'the third is closed' });
    assert.equal(proxy.counts.limit, 1);
    first.socket.write(Buffer.concat([PREFACE, settings(), settingsAck()]));
    await waitFor(() => first.frames().some((f) => f.type === T.SETTINGS), { message: 'the first is served' });
    assert.equal(second.state.closed, false);
  });

  it('over the buffer budget: new streams are refused with REFUSED_STREAM and new connections are not read until it recovers', async () => {
    const proxy = await startProxy(10);
    const served = rawClient(proxy.port);
    served.socket.write(Buffer.concat([PREFACE, settings(), settingsAck()]));
    await waitFor(() => served.frames().some((f) => f.type === T.SETTINGS), { message: 'served' });
    proxy.budget.add(2000);
    served.socket.write(request(1));
    await waitFor(() => resets(served.frames()).length === 1, { message: 'the stream is refused' });
    assert.deepEqual(resets(served.frames()), [{ stream: 1, code: ErrorCode.REFUSED_STREAM }]);
    assert.equal(proxy.counts.refusedStreams, 1);
    const waiting = rawClient(proxy.port);
    waiting.socket.write(Buffer.concat([PREFACE, settings(), settingsAck()]));
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(waiting.frames(), [], 'a connection accepted during the overload is not read');
    proxy.budget.add(-2000);
    await waitFor(() => waiting.frames().some((f) => f.type === T.SETTINGS), { message: 'read once the overload is over' });
  });

  it('closes a connection that does not complete its handshake in time with GOAWAY(SETTINGS_TIMEOUT)', async () => {
    const proxy = await startProxy(10, 150);
    const slow = rawClient(proxy.port);
    slow.socket.write(PREFACE);
    await waitFor(() => slow.state.closed, { message: 'closed', timeoutMs: 2000 });
    const goaway = slow.frames().find((f) => f.type === T.GOAWAY);
    assert.ok(goaway);
    assert.equal(goaway.payload.readUInt32BE(4), ErrorCode.SETTINGS_TIMEOUT);
    assert.equal(proxy.counts.handshakeTimeouts, 1);
  });
});
