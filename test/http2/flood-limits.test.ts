// A client connection (server role) held to its flood limits, frame by frame: rapid reset, refused streams, PING and
// SETTINGS floods end in GOAWAY(ENHANCE_YOUR_CALM); what real gRPC clients do (BDP pings after a WINDOW_UPDATE, dropping
// long-lived streams, keepalives) does not; a client-role connection has no such limits.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ErrorCode as E } from '../../agent/http2/constants.ts';
import { Peer, checkReaction, serverPeer } from '../support/connection-harness.ts';
import { S, T, ping, pings, request, rstStream, settings, settingsAck, windowUpdate } from '../support/raw-frames.ts';

/** Client stream ids 1, 3, 5, ... */
const streamIds = (count: number, first = 1): number[] => Array.from({ length: count }, (_, i) => first + 2 * i);

/** A server connection whose handler never answers, so the client's streams stay open until it resets them. */
const silentServer = (): Peer => serverPeer({ handler: { respond: false } });

describe('rapid reset (CVE-2023-44487)', () => {
  test('HEADERS + RST_STREAM pairs: the 501st young reset closes with ENHANCE_YOUR_CALM, naming the last stream seen', async () => {
    const peer = silentServer();
    for (const id of streamIds(600)) peer.send(request(id, true), rstStream(id, E.CANCEL));
    await checkReaction(peer, { connectionError: E.ENHANCE_YOUR_CALM });
    const [goaway] = peer.goaways();
    assert.equal(goaway.lastStreamId, 1001, 'the 501st stream (id 1001) was the last one read');
    assert.match(goaway.debug, /^rapid reset: /);
    assert.equal(peer.handler.requests().length, 501, 'nothing after the trip reaches the handler');
    const byPeer = peer.handler.events.filter((e) => e.kind === 'reset' && e.byPeer).length;
    assert.equal(byPeer, 500, 'the first 500 resets were applied as the client asked');
  });

  test('dropping 1000 streams older than a second is not a flood: no GOAWAY, every reset applied', async () => {
    const peer = silentServer();
    const ids = streamIds(1000);
    for (const id of ids) peer.send(request(id, false));
    peer.timers.advance(2000);
    for (const id of ids) peer.send(rstStream(id, E.CANCEL));
    await checkReaction(peer, {
      ok: (p) => assert.equal(p.handler.events.filter((e) => e.kind === 'reset' && e.byPeer).length, 1000),
    });
  });

  test('a steady 150 young resets a second is within the rate: 10 s of it, no GOAWAY', async () => {
    const peer = silentServer();
    let next = 1;
    for (let second = 0; second < 10; second++) {
      for (const id of streamIds(150, next)) peer.send(request(id, true), rstStream(id, E.CANCEL));
      next += 300;
      peer.timers.advance(1000);
    }
    await checkReaction(peer, { ok: (p) => assert.equal(p.handler.requests().length, 1500) });
  });

  test('streams refused over MAX_CONCURRENT_STREAMS count too: the 501st refusal closes the connection', async () => {
    const peer = silentServer();
    for (const id of streamIds(1000)) peer.send(request(id, false));
    for (const id of streamIds(600, 2001)) peer.send(request(id, false));
    await checkReaction(peer, { connectionError: E.ENHANCE_YOUR_CALM });
    const refused = peer.resets().filter((r) => r.code === E.REFUSED_STREAM).length;
    assert.equal(refused, 500);
  });

  test('malformed request heads count too: 600 of them close the connection after 500 stream errors', async () => {
    const peer = silentServer();
    for (const id of streamIds(600)) peer.send(request(id, true, [':path', '/twice']));
    await checkReaction(peer, { connectionError: E.ENHANCE_YOUR_CALM });
    assert.equal(peer.resets().filter((r) => r.code === E.PROTOCOL_ERROR).length, 500);
    assert.equal(peer.handler.requests().length, 0);
  });
});

describe('PING flood', () => {
  test('150 PINGs without data: 100 are answered, then GOAWAY(ENHANCE_YOUR_CALM)', async () => {
    const peer = serverPeer();
    for (let i = 0; i < 150; i++) peer.send(ping(String(i).padStart(8, '0')));
    await checkReaction(peer, { connectionError: E.ENHANCE_YOUR_CALM });
    assert.equal(pings(peer.frames, true).length, 100);
    assert.match(peer.goaways()[0].debug, /^PING flood: /);
  });

  test("grpc-go's BDP pattern (WINDOW_UPDATE, then PING) 10,000 times at once: every PING answered", async () => {
    const peer = serverPeer();
    for (let i = 0; i < 10_000; i++) peer.send(windowUpdate(0, 100), ping(String(i).padStart(8, '0')));
    await checkReaction(peer, { ok: (p) => assert.equal(pings(p.frames, true).length, 10_001) });
  });

  test('keepalive PINGs once a second for an hour: never a flood', async () => {
    const peer = serverPeer();
    for (let i = 0; i < 3600; i++) {
      peer.send(ping(String(i).padStart(8, '0')));
      peer.timers.advance(1000);
    }
    await checkReaction(peer, { ok: (p) => assert.equal(pings(p.frames, true).length, 3601) });
  });
});

describe('SETTINGS flood', () => {
  test('150 SETTINGS: the first 100 (the preface\'s among them) are acknowledged, then GOAWAY(ENHANCE_YOUR_CALM)', async () => {
    const peer = serverPeer();
    for (let i = 0; i < 149; i++) peer.send(settings([[S.MAX_FRAME_SIZE, 16_384]]));
    await checkReaction(peer, { connectionError: E.ENHANCE_YOUR_CALM });
    const acks = peer.frames.filter((f) => f.type === T.SETTINGS && (f.flags & 1) === 1).length;
    assert.equal(acks, 100);
    assert.match(peer.goaways()[0].debug, /^SETTINGS flood: /);
  });

  test('SETTINGS that change the initial window with 1000 streams open: at most 100 walks over the streams', async (t) => {
    const peer = silentServer();
    for (const id of streamIds(1000)) peer.send(request(id, false));
    let walks = 0;
    const started = performance.now();
    for (let i = 0; i < 10_000 && peer.connection.lifecycle.state === 'open'; i++) {
      peer.send(settings([[S.INITIAL_WINDOW_SIZE, 65_535 + (i % 2)]]));
      walks++;
    }
    const elapsedMs = performance.now() - started;
    await checkReaction(peer, { connectionError: E.ENHANCE_YOUR_CALM });
    assert.equal(walks, 100, 'the 100th SETTINGS (the 101st with the preface\'s) closed the connection');
    t.diagnostic(`100 SETTINGS over 1000 streams: ${elapsedMs.toFixed(1)} ms`);
  });
});

describe('client role', () => {
  test('a connection to an endpoint has no flood limits: 1000 PINGs and 200 SETTINGS from the server are all answered', async () => {
    const peer = new Peer('client');
    peer.connection.start();
    peer.send(settings([]), settingsAck());
    for (let i = 0; i < 1000; i++) peer.send(ping(String(i).padStart(8, '0')));
    for (let i = 0; i < 200; i++) peer.send(settings([[S.MAX_FRAME_SIZE, 16_384]]));
    await peer.settle();
    assert.deepEqual(peer.goaways(), []);
    assert.equal(pings(peer.frames, true).length, 1000);
    assert.equal(peer.connection.lifecycle.state, 'open');
  });
});
