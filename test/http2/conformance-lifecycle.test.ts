// RFC 9113 connection lifecycle: GOAWAY from the client, graceful shutdown, goAway/destroy, SETTINGS and preface timeouts, client-role cases.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ErrorCode } from '../../agent/http2/constants.ts';
import type { Stream } from '../../agent/http2/stream.ts';
import { Peer, checkReaction, serverPeer } from '../support/connection-harness.ts';
import {
  F,
  PREFACE,
  REQUEST,
  S,
  T,
  data,
  frame,
  goaway,
  headers,
  hpackLiterals,
  ping,
  pings,
  request,
  settings,
  settingsAck,
  settingsPayload,
} from '../support/raw-frames.ts';

const E = ErrorCode;
const MAX_ID = 2 ** 31 - 1;

function stream(peer: Peer, id: number): Stream {
  const found = peer.handler.streams.get(id);
  assert.ok(found !== undefined, `the handler knows stream ${id}`);
  return found;
}

/** The client ends its request on `id` and the handler answers it. */
function finish(peer: Peer, id: number): void {
  peer.send(data(id, '', { endStream: true }));
  peer.handler.respond(peer.connection, stream(peer, id));
}

describe('§6.8 GOAWAY', () => {
  test('§6.8 GOAWAY from the client: the handler hears it, open streams complete, then the connection closes', async () => {
    const peer = serverPeer({ handler: { respond: false } });
    peer.send(request(1, false), request(3, false), goaway(3, E.NO_ERROR));
    await peer.settle();
    assert.deepEqual(peer.handler.events.at(-1), { kind: 'goaway', lastStreamId: 3, code: E.NO_ERROR });
    assert.equal(peer.connection.lifecycle.state, 'draining');
    finish(peer, 1);
    await peer.settle();
    assert.equal(peer.connection.lifecycle.state, 'draining', 'stream 3 is still open');
    finish(peer, 3);
    await peer.settle();
    assert.deepEqual([peer.handler.endings(1), peer.handler.endings(3)], [['close'], ['close']]);
    assert.deepEqual(peer.connection.lifecycle, { state: 'closed', error: null });
    assert.deepEqual(peer.handler.events.at(-1), { kind: 'connection-close', code: null });
    assert.equal(peer.transport.endCalls, 1);
    assert.ok(peer.goaways().every((g) => g.code === E.NO_ERROR));
  });

  test('§6.8 graceful shutdown: GOAWAY(2^31-1) + PING, final GOAWAY after the ACK, in-between streams served', async () => {
    const peer = serverPeer({ handler: { respond: false } });
    peer.send(request(1, false));
    await peer.settle();
    peer.connection.shutdown();
    await peer.settle();
    assert.deepEqual(peer.goaways(), [{ lastStreamId: MAX_ID, code: E.NO_ERROR, debug: '' }]);
    const probe = pings(peer.frames, false);
    assert.equal(probe.length, 1, 'one PING after the first GOAWAY');
    assert.equal(peer.connection.lifecycle.state, 'draining');
    // Opened before the client saw the first GOAWAY: still served.
    peer.send(request(3, false));
    peer.send(ping(probe[0], true));
    await peer.settle();
    assert.deepEqual(peer.goaways()[1], { lastStreamId: 3, code: E.NO_ERROR, debug: '' });
    // Above the final id: ignored entirely, no reset, no handler event, no connection error.
    peer.send(request(5, false), data(5, 'x'), headers(5, ['x-t', '1'], { endStream: true }));
    await peer.settle();
    assert.deepEqual(peer.handler.requests(), [1, 3]);
    assert.deepEqual(peer.resets(), []);
    assert.equal(peer.goaways().length, 2);
    finish(peer, 1);
    await peer.settle();
    assert.equal(peer.connection.lifecycle.state, 'draining');
    assert.equal(peer.transport.endCalls, 0);
    finish(peer, 3);
    await peer.settle();
    assert.deepEqual(peer.connection.lifecycle, { state: 'closed', error: null });
    assert.equal(peer.transport.endCalls, 1);
    assert.equal(peer.timers.activeCount, 0);
  });

  test('§6.8 graceful shutdown without streams closes once the PING comes back', async () => {
    const peer = serverPeer();
    peer.connection.shutdown();
    await peer.settle();
    assert.equal(peer.transport.endCalls, 0, 'waits for the PING ACK');
    peer.send(ping(pings(peer.frames, false)[0], true));
    await peer.settle();
    assert.deepEqual(peer.goaways().map((g) => g.lastStreamId), [MAX_ID, 0]);
    assert.deepEqual(peer.connection.lifecycle, { state: 'closed', error: null });
    assert.equal(peer.transport.endCalls, 1);
  });

  test('§6.8 goAway(NO_ERROR) names the last processed stream, ignores newer ones, closes when the rest finish', async () => {
    const peer = serverPeer({ handler: { respond: false } });
    peer.send(request(1, false));
    peer.connection.goAway(E.NO_ERROR);
    peer.send(request(3));
    await peer.settle();
    assert.deepEqual(peer.goaways(), [{ lastStreamId: 1, code: E.NO_ERROR, debug: '' }]);
    assert.deepEqual(peer.handler.requests(), [1]);
    finish(peer, 1);
    await peer.settle();
    assert.deepEqual(peer.connection.lifecycle, { state: 'closed', error: null });
    assert.equal(peer.transport.endCalls, 1);
  });

  test('§5.4.1 goAway(error) resets open streams and ends the transport at once', async () => {
    const peer = serverPeer({ handler: { respond: false } });
    peer.send(request(1, false));
    peer.connection.goAway(E.ENHANCE_YOUR_CALM, 'calm down');
    // Output asked for after the close (a flush was already scheduled this turn) must not reach the ended transport.
    peer.connection.ping();
    await checkReaction(peer, { connectionError: E.ENHANCE_YOUR_CALM });
    assert.equal(peer.goaways()[0].lastStreamId, 1);
    assert.deepEqual(peer.handler.endings(1), [`reset:${E.ENHANCE_YOUR_CALM}`]);
  });

  test('§8.1 a response may end before the request: half-closed (local) until the client ends its side', async () => {
    const peer = serverPeer({ handler: { respond: false } });
    peer.send(request(1, false));
    peer.handler.respond(peer.connection, stream(peer, 1));
    await peer.settle();
    assert.equal(stream(peer, 1).state, 'half-closed-local');
    assert.deepEqual(peer.handler.endings(1), []);
    peer.send(data(1, 'late request bytes'), data(1, '', { endStream: true }));
    await peer.settle();
    assert.deepEqual(peer.handler.endings(1), ['close']);
    assert.equal(peer.connection.activeStreamCount, 0);
    await peer.assertUsable();
  });

  test('destroy() and transportClosed() reset every open stream exactly once and report the close', async () => {
    for (const end of ['destroy', 'transportClosed'] as const) {
      const peer = serverPeer({ handler: { respond: false } });
      peer.send(request(1, false), request(3, false));
      peer.connection[end]();
      peer.connection[end]();
      await peer.settle();
      assert.deepEqual(peer.goaways(), [], `${end}: no GOAWAY on an abrupt close`);
      assert.equal(peer.handler.endings(1).length + peer.handler.endings(3).length, 2, end);
      assert.equal(peer.handler.events.filter((e) => e.kind === 'connection-close').length, 1, end);
      assert.equal(peer.connection.lifecycle.state, 'closed');
      assert.equal(peer.transport.destroyCalls, end === 'destroy' ? 1 : 0);
      assert.equal(peer.timers.activeCount, 0);
    }
  });
});

describe('§6.5.3 and §3.4 timeouts (fake clock)', () => {
  test('§6.5.3 no SETTINGS ACK in time is a connection error SETTINGS_TIMEOUT', async () => {
    const peer = new Peer('server');
    peer.connection.start();
    peer.send(PREFACE, settings());
    peer.timers.advance(9_999);
    await peer.settle();
    assert.equal(peer.connection.lifecycle.state, 'open');
    peer.timers.advance(1);
    await checkReaction(peer, { connectionError: E.SETTINGS_TIMEOUT });
    assert.equal(peer.timers.activeCount, 0);
  });

  test('§6.5.3 an ACK in time cancels the SETTINGS timer', async () => {
    const peer = serverPeer({ settingsTimeoutMs: 500 });
    await peer.settle();
    assert.equal(peer.timers.activeCount, 0);
    peer.timers.advance(60_000);
    await peer.settle();
    assert.equal(peer.connection.lifecycle.state, 'open');
  });

  test('§3.4 no complete preface in time closes the connection (PROTOCOL_ERROR or SETTINGS_TIMEOUT)', async () => {
    const peer = new Peer('server', { prefaceTimeoutMs: 500 });
    peer.connection.start();
    peer.send(PREFACE.subarray(0, 10));
    peer.timers.advance(499);
    await peer.settle();
    assert.equal(peer.connection.lifecycle.state, 'open');
    peer.timers.advance(1);
    await checkReaction(peer, { connectionError: [E.PROTOCOL_ERROR, E.SETTINGS_TIMEOUT] });
    assert.equal(peer.timers.activeCount, 0);
  });

  test('§3.4 a preface followed by no SETTINGS in time also closes the connection', async () => {
    const peer = new Peer('server', { prefaceTimeoutMs: 500, settingsTimeoutMs: 60_000 });
    peer.connection.start();
    peer.send(PREFACE);
    peer.timers.advance(500);
    await checkReaction(peer, { connectionError: [E.PROTOCOL_ERROR, E.SETTINGS_TIMEOUT] });
  });
});

describe('client role', () => {
  function clientPeer(serverSettings: ReadonlyArray<readonly [number, number]> = []): Peer {
    const peer = new Peer('client');
    peer.connection.start();
    peer.send(settings(serverSettings), settingsAck());
    return peer;
  }

  test('§3.4 the client sends the preface, then SETTINGS with ENABLE_PUSH=0, and ACKs the server SETTINGS', async () => {
    const peer = clientPeer();
    await peer.settle();
    assert.ok(peer.transport.output().subarray(0, 24).equals(PREFACE));
    const first = peer.frames[0];
    assert.equal(first.type, T.SETTINGS);
    const pairs: Array<[number, number]> = [];
    for (let at = 0; at < first.payload.length; at += 6) pairs.push([first.payload.readUInt16BE(at), first.payload.readUInt32BE(at + 2)]);
    assert.ok(pairs.some(([id, value]) => id === S.ENABLE_PUSH && value === 0));
    assert.ok(peer.frames.some((f) => f.type === T.SETTINGS && f.flags === F.ACK));
  });

  test('§8.4 PUSH_PROMISE from the server is a connection error PROTOCOL_ERROR', async () => {
    const peer = clientPeer();
    peer.connection.openStream(REQUEST, true);
    const promised = Buffer.concat([Buffer.from([0, 0, 0, 2]), hpackLiterals(REQUEST)]);
    peer.send(frame(T.PUSH_PROMISE, F.END_HEADERS, 1, promised));
    await checkReaction(peer, { connectionError: E.PROTOCOL_ERROR });
  });

  test('§6.5.2 ENABLE_PUSH=1 from the server is a connection error PROTOCOL_ERROR', async () => {
    const peer = new Peer('client');
    peer.connection.start();
    peer.send(frame(T.SETTINGS, 0, 0, settingsPayload([[S.ENABLE_PUSH, 1]])));
    await checkReaction(peer, { connectionError: E.PROTOCOL_ERROR });
  });

  test('§8.3.2 a response without :status is a stream error PROTOCOL_ERROR', async () => {
    const peer = clientPeer();
    peer.connection.openStream(REQUEST, true);
    peer.send(headers(1, ['content-type', 'application/grpc'], { endStream: true }));
    await checkReaction(peer, { streamError: { stream: 1, code: E.PROTOCOL_ERROR } });
  });

  test('§6.8 GOAWAY below an open stream resets it with REFUSED_STREAM; streams at or below complete', async () => {
    const peer = clientPeer([[S.MAX_CONCURRENT_STREAMS, 10]]);
    const first = peer.connection.openStream(REQUEST, true);
    const second = peer.connection.openStream(REQUEST, true);
    assert.deepEqual([first?.id, second?.id], [1, 3]);
    peer.send(goaway(1, E.NO_ERROR));
    await peer.settle();
    const tail = peer.handler.events.slice(-2);
    assert.deepEqual(tail, [
      { kind: 'reset', stream: 3, code: E.REFUSED_STREAM, byPeer: true },
      { kind: 'goaway', lastStreamId: 1, code: E.NO_ERROR },
    ]);
    assert.equal(peer.connection.canOpenStream(), false);
    assert.equal(peer.connection.openStream(REQUEST, true), null);
    peer.send(headers(1, [':status', '200']), data(1, 'x'), headers(1, ['grpc-status', '0'], { endStream: true }));
    await peer.settle();
    assert.deepEqual(peer.handler.endings(1), ['close']);
    assert.deepEqual(peer.handler.endings(3), [`reset:${E.REFUSED_STREAM}`]);
    assert.equal(peer.connection.lifecycle.state, 'closed');
    assert.equal(peer.transport.endCalls, 1);
  });

  test('§6.5.2 the client respects the server MAX_CONCURRENT_STREAMS', async () => {
    const peer = clientPeer([[S.MAX_CONCURRENT_STREAMS, 1]]);
    assert.ok(peer.connection.openStream(REQUEST, false) !== null);
    assert.equal(peer.connection.canOpenStream(), false);
    assert.equal(peer.connection.openStream(REQUEST, false), null);
  });
});
