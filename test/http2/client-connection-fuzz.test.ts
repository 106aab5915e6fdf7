// Bounded, seeded fuzz of the client-role connection (what the agent speaks upstream): a hostile or buggy server's
// random and mutated frames in random splits, against invariants on what the connection writes and tells its handler.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Http2Connection } from '../../agent/http2/connection.ts';
import type { Http2ConnectionError, Http2Handler } from '../../agent/http2/handler.ts';
import { HpackDecoder } from '../../agent/http2/hpack-decoder.ts';
import type { Stream } from '../../agent/http2/stream.ts';
import { FakeTimers } from '../support/fake-timers.ts';
import { FuzzRandom, fuzzLoop } from '../support/fuzz-random.ts';
import { MAX_WINDOW, mutate, peerFrames, randomConversation, validConversation } from '../support/hostile-server-frames.ts';
import { MemoryTransport, nextTurn, settle } from '../support/memory-transport.ts';
import { F, PREFACE, REQUEST, S, T, data, headers, parseFrames, settings, settingsAck } from '../support/raw-frames.ts';

const MAX_ITERATIONS = 9000;
const TIME_BUDGET_MS = 10_000;

interface Reset {
  id: number;
  code: number;
  byPeer: boolean;
  /** The connection was still open when the stream was reset (not part of its close). */
  connectionOpen: boolean;
}

/** Records and checks every callback as it comes, and plays the relay's upstream side: consumes, resets, sends at random. */
class CheckingClientHandler implements Http2Handler {
  readonly violations: string[] = [];
  /** Streams we opened, by id. */
  readonly opened = new Map<number, Stream>();
  readonly heads = new Set<number>();
  readonly trailers = new Set<number>();
  readonly endings = new Map<number, number>();
  readonly resets: Reset[] = [];
  connectionCloses = 0;
  goawayLastIds: number[] = [];
  /** Bytes we asked the connection to send (DATA), for the output bound. */
  sentBytes = 0;
  pingAcks = 0;
  /** DATA bytes delivered, per stream and in all: the server may not send more than our windows allowed. */
  readonly received = new Map<number, number>();
  receivedTotal = 0;
  private readonly rng: FuzzRandom;

  constructor(rng: FuzzRandom) {
    this.rng = rng;
  }

  private live(what: string, stream?: Stream): void {
    if (this.connectionCloses > 0) this.violations.push(`${what} after onConnectionClose`);
    if (stream === undefined) return;
    if (this.opened.get(stream.id) !== stream) this.violations.push(`${what} on stream ${stream.id} we never opened`);
    if ((this.endings.get(stream.id) ?? 0) > 0) this.violations.push(`${what} on ended stream ${stream.id}`);
  }

  ownEnding(stream: Stream): void {
    this.endings.set(stream.id, (this.endings.get(stream.id) ?? 0) + 1);
  }

  /** What the relay might do on an event: consume, cancel, send more of the request. */
  act(connection: Http2Connection, stream: Stream): void {
    const r = this.rng.int(20);
    if (r === 0) {
      // resetStream() makes no callback: the handler's own reset is the stream's ending. A stream complete both ways
      // (END_STREAM received in the onData/onHeaders being handled) is not reset: onStreamClose follows instead.
      if (connection.getStream(stream.id) === stream && stream.state !== 'closed') this.ownEnding(stream);
      connection.resetStream(stream, this.rng.pick([0, 8, 2]));
    } else if (r === 1) {
      const body = Buffer.alloc(this.rng.int(3000), 1);
      this.sentBytes += body.length;
      connection.sendData(stream, body, this.rng.chance(0.5));
    }
  }

  onHeaders(connection: Http2Connection, stream: Stream, list: readonly string[], endStream: boolean, isTrailers: boolean): void {
    this.live('onHeaders', stream);
    if (isTrailers) {
      if (!this.heads.has(stream.id)) this.violations.push(`trailers before a response head on stream ${stream.id}`);
      if (!endStream) this.violations.push(`trailers without END_STREAM on stream ${stream.id}`);
      if (this.trailers.has(stream.id)) this.violations.push(`second trailers on stream ${stream.id}`);
      this.trailers.add(stream.id);
      if (list.some((name, i) => i % 2 === 0 && name.startsWith(':'))) this.violations.push(`pseudo-header in trailers on stream ${stream.id}`);
    } else {
      if (this.heads.has(stream.id)) this.violations.push(`second response head on stream ${stream.id}`);
      this.heads.add(stream.id);
      if (list[0] !== ':status' || !/^[2-5][0-9][0-9]$/.test(list[1])) this.violations.push(`response head without a final :status on stream ${stream.id}`);
    }
    this.act(connection, stream);
  }

  onData(connection: Http2Connection, stream: Stream, chunk: Buffer, _endStream: boolean): void {
    this.live('onData', stream);
    if (!this.heads.has(stream.id)) this.violations.push(`DATA before a response head on stream ${stream.id}`);
    if (this.trailers.has(stream.id)) this.violations.push(`DATA after trailers on stream ${stream.id}`);
    this.received.set(stream.id, (this.received.get(stream.id) ?? 0) + chunk.length);
    this.receivedTotal += chunk.length;
    if (this.rng.chance(0.85)) connection.consume(stream, chunk.length);
    this.act(connection, stream);
  }

  private ended(connection: Http2Connection, stream: Stream, how: string): void {
    this.live(how, stream);
    this.endings.set(stream.id, (this.endings.get(stream.id) ?? 0) + 1);
    if (connection.getStream(stream.id) !== undefined) this.violations.push(`${how}: stream ${stream.id} still in the connection's table`);
  }

  onStreamReset(connection: Http2Connection, stream: Stream, code: number, byPeer: boolean): void {
    this.ended(connection, stream, 'onStreamReset');
    this.resets.push({ id: stream.id, code, byPeer, connectionOpen: connection.lifecycle.state !== 'closed' });
  }

  onStreamClose(connection: Http2Connection, stream: Stream): void {
    this.ended(connection, stream, 'onStreamClose');
    if (!this.heads.has(stream.id)) this.violations.push(`stream ${stream.id} closed normally without a response head`);
  }

  onDataSent(_connection: Http2Connection, stream: Stream): void {
    this.live('onDataSent', stream);
  }

  onGoaway(connection: Http2Connection, lastStreamId: number): void {
    this.live('onGoaway');
    this.goawayLastIds.push(lastStreamId);
    // Our streams above lastStreamId were refused just before this call.
    for (const [id] of this.opened) {
      if (id > lastStreamId && connection.getStream(id) !== undefined) this.violations.push(`stream ${id} above GOAWAY(${lastStreamId}) still open`);
    }
  }

  onRemoteSettings(): void {
    this.live('onRemoteSettings');
  }

  onConnectionClose(_connection: Http2Connection, _error: Http2ConnectionError | null): void {
    this.connectionCloses++;
  }
}

/** Opens a request stream the way the relay does (body or not), recording it. */
function openRequest(rng: FuzzRandom, connection: Http2Connection, handler: CheckingClientHandler): void {
  const endStream = rng.chance(0.3);
  const stream = connection.openStream(REQUEST, endStream);
  if (stream === null) return;
  if (handler.opened.has(stream.id)) handler.violations.push(`stream id ${stream.id} handed out twice`);
  handler.opened.set(stream.id, stream);
  if (!endStream && rng.chance(0.7)) {
    const body = Buffer.alloc(rng.pick([0, 5, 1000, 70_000]), 2);
    handler.sentBytes += body.length;
    connection.sendData(stream, body, rng.chance(0.6));
  }
}

/** One connection: our requests, the server's bytes in random slices with random outside calls, then every invariant. */
async function runOne(seed: number): Promise<void> {
  const rng = new FuzzRandom(seed);
  const transport = new MemoryTransport();
  const timers = new FakeTimers();
  const handler = new CheckingClientHandler(rng);
  const ourInitialWindow = rng.pick([100, 65_535, 1 << 20]);
  const connection = new Http2Connection(transport, handler, {
    role: 'client',
    clock: timers,
    settings: { initialWindowSize: ourInitialWindow, maxHeaderListSize: rng.pick([200, 65_536]) },
    connectionWindowSize: rng.pick([65_535, 1 << 20]),
    creditConnectionOnReceive: rng.chance(0.5),
  });
  transport.onDrain = () => connection.transportDrained();
  const started = Date.now();
  let pingAcked = 0;
  // Any exception out of the connection fails the run: a hostile server must never throw through the agent.
  connection.start();
  const preOpened = rng.int(6);
  for (let i = 0; i < preOpened; i++) openRequest(rng, connection, handler);
  const expectOpened = Math.max(1, preOpened + 2);
  const input = rng.chance(0.4) ? mutate(rng, validConversation(rng), expectOpened) : randomConversation(rng, expectOpened);
  const maxSlice = rng.pick([1, 9, 64, 1024, input.length || 1]);
  for (let at = 0; at < input.length; ) {
    const size = 1 + rng.int(maxSlice);
    connection.receive(input.subarray(at, at + size));
    at += size;
    const r = rng.int(1000);
    if (r < 100) await nextTurn();
    else if (r < 160) openRequest(rng, connection, handler);
    else if (r < 180) {
      const stream = rng.pick([...handler.opened.values()]);
      if (stream !== undefined) handler.act(connection, stream);
    } else if (r < 185) timers.advance(rng.pick([1000, 11_000]));
    else if (r < 188) connection.shutdown();
    else if (r < 195) connection.ping(() => pingAcked++);
    else if (r < 197) connection.goAway(rng.pick([0, 0, 2, 11]));
    else if (r < 207) transport.hold(2 << 20);
    else if (r < 217) transport.release();
  }
  transport.release();
  await settle(2);

  const state = connection.lifecycle;
  assert.ok(['open', 'draining', 'closed'].includes(state.state));
  const output = transport.output();
  assert.ok(output.subarray(0, PREFACE.length).equals(PREFACE), 'a client starts with the connection preface');
  const frames = parseFrames(output.subarray(PREFACE.length));
  assert.equal(frames[0]?.type, T.SETTINGS, 'our SETTINGS follow the preface');
  if (state.state === 'closed') {
    assert.ok(transport.endCalls + transport.destroyCalls >= 1, 'a closed connection ended its transport');
    if (state.error !== null && !state.error.byPeer) {
      const last = frames.at(-1);
      assert.equal(last?.type, T.GOAWAY, 'a connection error ends with GOAWAY');
      assert.equal(last?.payload.readUInt32BE(4), state.error.code, 'the GOAWAY carries the error code');
      assert.ok(state.error.code <= 0xd, `a registered error code (${state.error.code})`);
      assert.equal(last?.payload.readUInt32BE(0) & 0x7fffffff, 0, 'a client names no server stream as processed');
    }
  }
  assert.equal(transport.writesAfterClose, 0, 'no write after end()/destroy()');

  // What we wrote: only on our own (odd) streams, stream errors as RST_STREAM, DATA within the windows the peer gave.
  const peer = peerFrames(input);
  let connectionCredit = 65_535;
  const streamCredit = new Map<number, number>();
  let largestInitialWindow = 65_535;
  for (const f of peer) {
    if (f.type === T.WINDOW_UPDATE && f.payload.length === 4) {
      const increment = f.payload.readUInt32BE(0) & 0x7fffffff;
      if (f.streamId === 0) connectionCredit += increment;
      else streamCredit.set(f.streamId, (streamCredit.get(f.streamId) ?? 0) + increment);
    }
    if (f.type === T.SETTINGS && (f.flags & F.ACK) === 0 && f.payload.length % 6 === 0) {
      for (let i = 0; i < f.payload.length; i += 6) {
        const value = f.payload.readUInt32BE(i + 2);
        if (f.payload.readUInt16BE(i) === S.INITIAL_WINDOW_SIZE && value <= MAX_WINDOW) largestInitialWindow = Math.max(largestInitialWindow, value);
      }
    }
  }
  let dataSent = 0;
  const dataPerStream = new Map<number, number>();
  const rstSent = new Map<number, number[]>();
  for (const f of frames) {
    if (f.type === T.HEADERS || f.type === T.DATA) {
      assert.ok(handler.opened.has(f.streamId), `${f.type === T.DATA ? 'DATA' : 'HEADERS'} only on streams we opened (${f.streamId})`);
    }
    if (f.type === T.DATA) {
      dataSent += f.payload.length;
      dataPerStream.set(f.streamId, (dataPerStream.get(f.streamId) ?? 0) + f.payload.length);
    }
    if (f.type === T.RST_STREAM) {
      assert.ok(f.streamId !== 0 && f.streamId % 2 === 1, `RST_STREAM only on our streams (${f.streamId})`);
      rstSent.set(f.streamId, [...(rstSent.get(f.streamId) ?? []), f.payload.readUInt32BE(0)]);
    }
    if (f.type === T.WINDOW_UPDATE) assert.ok(f.streamId === 0 || f.streamId % 2 === 1, `WINDOW_UPDATE on stream 0 or ours (${f.streamId})`);
    if (f.type === T.PUSH_PROMISE) assert.fail('a client never sends PUSH_PROMISE');
  }
  assert.ok(dataSent <= connectionCredit, `DATA ${dataSent} bytes within the connection window ${connectionCredit}`);
  for (const [id, bytes] of dataPerStream) {
    const credit = largestInitialWindow + (streamCredit.get(id) ?? 0);
    assert.ok(bytes <= credit, `DATA ${bytes} bytes on stream ${id} within its window ${credit}`);
  }
  // Our receive windows hold: what was delivered fits in what we advertised and gave back (WINDOW_UPDATE).
  const given = new Map<number, number>();
  for (const f of frames) if (f.type === T.WINDOW_UPDATE) given.set(f.streamId, (given.get(f.streamId) ?? 0) + (f.payload.readUInt32BE(0) & 0x7fffffff));
  assert.ok(handler.receivedTotal <= 65_535 + (given.get(0) ?? 0), `${handler.receivedTotal} DATA bytes accepted within the connection window`);
  for (const [id, bytes] of handler.received) {
    const window = ourInitialWindow + (given.get(id) ?? 0);
    assert.ok(bytes <= window, `${bytes} DATA bytes accepted on stream ${id} within its window ${window}`);
  }
  for (const reset of handler.resets) {
    if (reset.byPeer || !reset.connectionOpen) continue;
    assert.ok(rstSent.get(reset.id)?.includes(reset.code), `stream error on ${reset.id} went out as RST_STREAM(${reset.code})`);
  }
  const bound = 16_384 + 40 * input.length + 2 * handler.sentBytes + 200 * handler.opened.size;
  assert.ok(transport.totalBytes <= bound, `output ${transport.totalBytes} bytes for ${input.length} input bytes`);
  assert.ok(connection.activeStreamCount <= handler.opened.size, 'no stream the handler does not know of');
  // (A closed connection drops its streams whole; while it is open, an ended stream must hold no output.)
  for (const stream of handler.opened.values()) {
    if (state.state !== 'closed' && connection.getStream(stream.id) === undefined) {
      assert.equal(stream.queuedBytes, 0, `nothing stays queued for ended stream ${stream.id} (connection ${connection.lifecycle.state}, stream ${stream.state})`);
    }
  }

  // Every END_STREAM the server sent ends its side: while the connection is open (so every whole frame was read), a
  // stream it ended is not left waiting for more.
  if (state.state !== 'closed') {
    for (const end of peerStreamEnds(peer)) {
      const stream = connection.getStream(end.id);
      if (stream === undefined || (stream.state !== 'open' && stream.state !== 'half-closed-local')) continue;
      handler.violations.push(`the server ended stream ${end.id} (END_STREAM${end.informational ? ' on a 1xx head' : ''}) yet it is still ${stream.state}`);
    }
  }

  connection.destroy();
  assert.equal(connection.lifecycle.state, 'closed');
  assert.equal(connection.activeStreamCount, 0);
  assert.equal(handler.connectionCloses, 1, 'onConnectionClose exactly once');
  for (const id of handler.opened.keys()) assert.equal(handler.endings.get(id) ?? 0, 1, `stream ${id} ended exactly once`);
  assert.equal(timers.activeCount, 0, 'no timer left running');
  assert.ok(pingAcked <= peer.filter((f) => f.type === T.PING && (f.flags & F.ACK) !== 0).length, 'a ping callback only for an ACK');
  assert.ok(Date.now() - started < 2000, 'one connection takes well under 2 s');
  assert.deepEqual(handler.violations, []);
}

/**
 * The streams the server's complete header blocks and DATA frames ended (END_STREAM), in the frames the connection
 * read; `informational` when the block that ended it is a 1xx head (decoded on its own: the fuzzer's blocks are literals).
 */
function peerStreamEnds(frames: ReturnType<typeof peerFrames>): Array<{ id: number; informational: boolean }> {
  const ends: Array<{ id: number; informational: boolean }> = [];
  for (let i = 0; i < frames.length; i++) {
    const f = frames[i];
    if (f.type === T.DATA && (f.flags & F.END_STREAM) !== 0) ends.push({ id: f.streamId, informational: false });
    if (f.type !== T.HEADERS || (f.flags & F.END_STREAM) === 0) continue;
    let block = f.payload;
    let complete = (f.flags & F.END_HEADERS) !== 0;
    for (let j = i + 1; !complete && j < frames.length && frames[j].type === T.CONTINUATION && frames[j].streamId === f.streamId; j++) {
      block = Buffer.concat([block, frames[j].payload]);
      complete = (frames[j].flags & F.END_HEADERS) !== 0;
    }
    if (!complete) continue;
    let informational = false;
    try {
      const start = ((f.flags & F.PADDED) !== 0 ? 1 : 0) + ((f.flags & F.PRIORITY) !== 0 ? 5 : 0);
      const end = (f.flags & F.PADDED) !== 0 ? block.length - f.payload[0] : block.length;
      const list = new HpackDecoder().decode(Buffer.concat([f.payload.subarray(start, Math.max(start, Math.min(end, f.payload.length))), block.subarray(f.payload.length)]));
      informational = list !== null && list[0] === ':status' && list[1].startsWith('1');
    } catch {
      // Not decodable on its own: not a 1xx head this fuzzer wrote.
    }
    ends.push({ id: f.streamId, informational });
  }
  return ends;
}

/**
 * Fixed, and kept so by the invariants and the tests below: a 1xx head with END_STREAM (a malformed response, RFC 9113
 * §8.1) left the stream half-closed for good, and DATA before the response head reached the handler (and, through the
 * relay, the client ahead of any HEADERS); both are now stream errors (PROTOCOL_ERROR).
 */

test('client connection fuzz: a hostile server\'s random and mutated frames keep every invariant', async (t) => {
  await fuzzLoop(t, { maxIterations: MAX_ITERATIONS, budgetMs: TIME_BUDGET_MS }, runOne);
});

test('client connection: DATA before the response head is a malformed response (minimal reproduction)', async () => {
  const transport = new MemoryTransport();
  const timers = new FakeTimers();
  const handler = new CheckingClientHandler(new FuzzRandom(1));
  const connection = new Http2Connection(transport, handler, { role: 'client', clock: timers });
  connection.start();
  const stream = connection.openStream(REQUEST, true);
  assert.ok(stream !== null);
  handler.opened.set(stream.id, stream);
  connection.receive(Buffer.concat([settings(), settingsAck(), data(1, 'body before any HEADERS', { endStream: true })]));
  await settle(2);
  const sent = parseFrames(transport.output().subarray(PREFACE.length));
  connection.destroy();
  assert.deepEqual(handler.violations, []);
  assert.ok(sent.some((f) => f.type === T.RST_STREAM && f.streamId === 1 && f.payload.readUInt32BE(0) === 1), 'RST_STREAM(PROTOCOL_ERROR) on stream 1');
});

test('client connection: a 1xx head with END_STREAM ends or resets the stream (minimal reproduction)', async () => {
  const transport = new MemoryTransport();
  const handler = new CheckingClientHandler(new FuzzRandom(1));
  const connection = new Http2Connection(transport, handler, { role: 'client', clock: new FakeTimers() });
  connection.start();
  const stream = connection.openStream(REQUEST, true);
  assert.ok(stream !== null);
  handler.opened.set(stream.id, stream);
  connection.receive(Buffer.concat([settings(), settingsAck(), headers(1, [':status', '100'], { endStream: true })]));
  await settle(2);
  const sent = parseFrames(transport.output().subarray(PREFACE.length));
  const state = stream.state;
  connection.destroy();
  assert.equal(state, 'closed', 'the stream the server ended is not left half-closed (local)');
  assert.ok(sent.some((f) => f.type === T.RST_STREAM && f.streamId === 1 && f.payload.readUInt32BE(0) === 1), 'RST_STREAM(PROTOCOL_ERROR) on stream 1');
});
