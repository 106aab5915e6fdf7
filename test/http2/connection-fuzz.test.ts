// Bounded, seeded fuzz of the server-role connection: random and mutated frame sequences in random splits, checked against invariants.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inspect } from 'node:util';
import { Http2Connection } from '../../agent/http2/connection.ts';
import type { Http2ConnectionError, Http2Handler } from '../../agent/http2/handler.ts';
import type { Stream } from '../../agent/http2/stream.ts';
import { FakeTimers } from '../support/fake-timers.ts';
import { FuzzRandom } from '../support/fuzz-random.ts';
import { MemoryTransport, nextTurn, settle } from '../support/memory-transport.ts';
import {
  PREFACE,
  REQUEST,
  S,
  T,
  continuation,
  data,
  frame,
  goaway,
  headers,
  hpackLiterals,
  parseFrames,
  ping,
  priority,
  request,
  rstStream,
  settings,
  settingsAck,
  windowUpdate,
} from '../support/raw-frames.ts';

const MAX_ITERATIONS = Number(process.env.FUZZ_ITERATIONS ?? 8000);
const TIME_BUDGET_MS = 6000;


/** Records every callback, checks their order as they come, and plays a relay that answers, resets and consumes at random. */
class CheckingHandler implements Http2Handler {
  readonly violations: string[] = [];
  /** Stream id → number of onHeaders (request heads) and of endings (close or reset). */
  readonly heads = new Map<number, number>();
  readonly endings = new Map<number, number>();
  connectionCloses = 0;
  responses = 0;
  private readonly rng: FuzzRandom;

  constructor(rng: FuzzRandom) {
    this.rng = rng;
  }

  private live(what: string, stream?: Stream): void {
    if (this.connectionCloses > 0) this.violations.push(`${what} after onConnectionClose`);
    if (stream !== undefined && (this.endings.get(stream.id) ?? 0) > 0) this.violations.push(`${what} on ended stream ${stream.id}`);
  }

  private act(connection: Http2Connection, stream: Stream, ended: boolean): void {
    const r = this.rng.int(10);
    if (r === 0) {
      // resetStream() makes no callback: the handler's own reset is the stream's ending.
      if (connection.getStream(stream.id) === stream) this.endings.set(stream.id, (this.endings.get(stream.id) ?? 0) + 1);
      return connection.resetStream(stream, this.rng.pick([0, 2, 8]));
    }
    if (!ended || r === 1) return;
    this.responses++;
    connection.sendHeaders(stream, [':status', '200', 'content-type', 'application/grpc'], false);
    connection.sendData(stream, Buffer.alloc(this.rng.int(2000), 7), this.rng.chance(0.2));
    connection.sendTrailers(stream, ['grpc-status', '0']);
  }

  onHeaders(connection: Http2Connection, stream: Stream, _headers: readonly string[], endStream: boolean, isTrailers: boolean): void {
    this.live('onHeaders', stream);
    if (!isTrailers) {
      if (this.heads.has(stream.id)) this.violations.push(`second request head on stream ${stream.id}`);
      this.heads.set(stream.id, 1);
    } else if (!this.heads.has(stream.id)) {
      this.violations.push(`trailers before a head on stream ${stream.id}`);
    }
    this.act(connection, stream, endStream);
  }

  onData(connection: Http2Connection, stream: Stream, data: Buffer, endStream: boolean): void {
    this.live('onData', stream);
    if (!this.heads.has(stream.id)) this.violations.push(`DATA before a head on stream ${stream.id}`);
    if (this.rng.chance(0.8)) connection.consume(stream, data.length);
    this.act(connection, stream, endStream);
  }

  private ended(stream: Stream, how: string): void {
    this.live(how, stream);
    if (!this.heads.has(stream.id)) this.violations.push(`${how} for stream ${stream.id} the handler never saw`);
    this.endings.set(stream.id, (this.endings.get(stream.id) ?? 0) + 1);
  }

  onStreamReset(_connection: Http2Connection, stream: Stream): void {
    this.ended(stream, 'onStreamReset');
  }

  onStreamClose(_connection: Http2Connection, stream: Stream): void {
    this.ended(stream, 'onStreamClose');
  }

  onDataSent(_connection: Http2Connection, stream: Stream): void {
    this.live('onDataSent', stream);
  }

  onGoaway(): void {
    this.live('onGoaway');
  }

  onRemoteSettings(): void {
    this.live('onRemoteSettings');
  }

  onConnectionClose(_connection: Http2Connection, _error: Http2ConnectionError | null): void {
    this.connectionCloses++;
  }
}

function streamId(rng: FuzzRandom): number {
  const r = rng.int(20);
  if (r < 4) return 0;
  if (r < 14) return 1 + 2 * rng.int(8);
  if (r < 16) return 2 + 2 * rng.int(8);
  if (r < 18) return rng.next() & 0x7fffffff;
  return (0x80000000 | (1 + 2 * rng.int(8))) >>> 0;
}

function randomHeaderBlock(rng: FuzzRandom): Buffer {
  const r = rng.int(4);
  if (r === 0) return rng.bytes(rng.int(40));
  if (r === 1) return Buffer.from([0x83, 0x86, 0x84]); // POST, http, / from the static table
  const extra = rng.chance(0.3) ? [rng.pick(['te', 'content-length', 'x-a', 'X-B', ':path', 'connection']), rng.pick(['trailers', '3', '', 'v'])] : [];
  return hpackLiterals([...REQUEST, ...extra]);
}

/** A frame of any type that looks plausible: right-ish lengths, random flags, ids and values. */
function randomFrame(rng: FuzzRandom): Buffer {
  const type = rng.chance(0.08) ? 10 + rng.int(246) : rng.int(10);
  const flags = rng.chance(0.4) ? rng.next() & 0xff : rng.pick([0, 1, 4, 5, 8, 0x20, 0x25]);
  const id = streamId(rng);
  const wrongLength = rng.chance(0.05);
  let payload: Buffer;
  switch (type) {
    case T.DATA:
      payload = rng.bytes(rng.int(300));
      break;
    case T.HEADERS:
    case T.CONTINUATION:
    case T.PUSH_PROMISE:
      payload = randomHeaderBlock(rng);
      break;
    case T.PRIORITY:
      payload = rng.bytes(wrongLength ? rng.int(8) : 5);
      break;
    case T.SETTINGS: {
      const pairs: Array<[number, number]> = [];
      for (let n = rng.int(4); n > 0; n--) {
        pairs.push([1 + rng.int(7), rng.pick([0, 1, 2, 100, 16_384, 65_535, 1 << 20, 2 ** 31 - 1, 2 ** 31, 2 ** 24, rng.next()])]);
      }
      return frame(T.SETTINGS, rng.chance(0.2) ? 1 : 0, rng.chance(0.95) ? 0 : id, wrongLength ? rng.bytes(rng.int(13)) : settings(pairs).subarray(9));
    }
    case T.PING:
      payload = rng.bytes(wrongLength ? rng.int(12) : 8);
      break;
    case T.GOAWAY:
      payload = Buffer.concat([rng.bytes(wrongLength ? rng.int(8) : 8), rng.bytes(rng.int(10))]);
      break;
    case T.RST_STREAM:
    case T.WINDOW_UPDATE: {
      payload = Buffer.alloc(4);
      payload.writeUInt32BE(rng.pick([0, 1, 1000, 65_535, 2 ** 31 - 1, rng.next()]));
      if (wrongLength) payload = rng.bytes(rng.int(8));
      break;
    }
    default:
      payload = rng.bytes(rng.int(64));
  }
  if (rng.chance(0.005)) payload = Buffer.alloc(16_385);
  return frame(type, flags, id, payload);
}

/** A frame a well-behaved client could send next: new requests in order, then DATA, trailers and control frames for them. */
function plausibleFrame(rng: FuzzRandom, opened: number[]): Buffer {
  const r = rng.int(20);
  const id = opened.length === 0 ? 1 : rng.pick(opened);
  if (r < 8 || opened.length === 0) {
    const next = opened.length === 0 ? 1 : opened[opened.length - 1] + 2;
    opened.push(next);
    return request(next, rng.chance(0.5));
  }
  if (r < 13) return data(id, rng.bytes(rng.int(100)), { endStream: rng.chance(0.5), padding: rng.chance(0.2) ? rng.int(30) : undefined });
  if (r < 15) return headers(id, ['x-trailer', '1'], { endStream: true });
  if (r < 17) return windowUpdate(rng.chance(0.5) ? 0 : id, 1 + rng.int(100_000));
  if (r === 17) return rstStream(id, 8);
  if (r === 18) return ping('fuzzfuzz');
  return settings([[S.INITIAL_WINDOW_SIZE, rng.int(200_000)]]);
}

/** A valid client conversation touching every frame type; mutations start from it. */
function validConversation(rng: FuzzRandom): Buffer[] {
  const block = hpackLiterals(REQUEST);
  const cut = 1 + rng.int(block.length - 1);
  return [
    PREFACE,
    settings([[S.INITIAL_WINDOW_SIZE, rng.pick([0, 100, 65_535])], [S.MAX_FRAME_SIZE, 16_384]]),
    settingsAck(),
    request(1, false),
    data(1, 'hello'),
    headers(1, ['x-trailer', '1'], { endStream: true }),
    headers(3, block.subarray(0, cut), { endHeaders: false }),
    continuation(3, block.subarray(cut)),
    data(3, 'abc', { endStream: true, padding: rng.int(20) }),
    windowUpdate(0, 1000),
    windowUpdate(1, 5000),
    ping('pingpong'),
    priority(5, 3),
    request(5, false),
    rstStream(5, 8),
    request(7, false, ['content-length', '3']),
    data(7, 'abc', { endStream: true }),
    frame(0xfa, 0, 0, Buffer.from('ext')),
    ...(rng.chance(0.2) ? [goaway(7, 0)] : []),
  ];
}

function mutate(rng: FuzzRandom, frames: Buffer[]): Buffer {
  const list = [...frames];
  for (let n = 1 + rng.int(3); n > 0; n--) {
    const i = 1 + rng.int(list.length - 1);
    const j = 1 + rng.int(list.length - 1);
    const r = rng.int(5);
    if (r === 0) list.splice(j, 0, list[i]);
    else if (r === 1) [list[i], list[j]] = [list[j], list[i]];
    else if (r === 2) list.splice(i, 1);
    else if (r === 3) list.splice(j, 0, randomFrame(rng));
  }
  const bytes = Buffer.concat(list);
  for (let n = rng.int(4); n > 0; n--) {
    const at = rng.chance(0.9) ? 24 + rng.int(bytes.length - 24) : rng.int(bytes.length);
    bytes[at] ^= 1 << rng.int(8);
  }
  return rng.chance(0.2) ? bytes.subarray(0, rng.int(bytes.length)) : bytes;
}

function randomFrames(rng: FuzzRandom): Buffer[] {
  const opened: number[] = [];
  const plausible = rng.pick([0, 0.5, 0.9]);
  return Array.from({ length: 1 + rng.int(40) }, () => (rng.chance(plausible) ? plausibleFrame(rng, opened) : randomFrame(rng)));
}

/** One connection: feed the input in random slices with random outside calls, then check every invariant. */
async function runOne(seed: number): Promise<void> {
  const rng = new FuzzRandom(seed);
  const transport = new MemoryTransport();
  const timers = new FakeTimers();
  const handler = new CheckingHandler(rng);
  const connection = new Http2Connection(transport, handler, {
    role: 'server',
    clock: timers,
    settings: {
      maxConcurrentStreams: rng.pick([1, 2, 100]),
      initialWindowSize: rng.pick([100, 65_535, 1 << 20]),
      maxHeaderListSize: rng.pick([200, 65_536]),
    },
    connectionWindowSize: rng.pick([65_535, 1 << 20]),
  });
  transport.onDrain = () => connection.transportDrained();
  connection.start();
  const input = rng.chance(0.5)
    ? mutate(rng, validConversation(rng))
    : Buffer.concat([PREFACE, settings(), settingsAck(), ...randomFrames(rng)]);
  const maxSlice = rng.pick([1, 7, 64, 1024, input.length || 1]);
  for (let at = 0; at < input.length; ) {
    const size = 1 + rng.int(maxSlice);
    connection.receive(input.subarray(at, at + size));
    at += size;
    const r = rng.int(1000);
    if (r < 100) await nextTurn();
    else if (r < 105) timers.advance(rng.pick([1000, 11_000]));
    else if (r < 108) connection.shutdown();
    else if (r < 113) connection.ping();
    else if (r < 115) connection.goAway(0);
    else if (r < 125) transport.hold(2 << 20);
    else if (r < 135) transport.release();
  }
  transport.release();
  await settle(2);

  const state = connection.lifecycle;
  assert.ok(['open', 'draining', 'closed'].includes(state.state));
  const frames = parseFrames(transport.output(), 16_384);
  if (state.state === 'closed') {
    assert.ok(transport.endCalls + transport.destroyCalls >= 1, 'a closed connection ended its transport');
    if (state.error !== null && !state.error.byPeer) {
      const last = frames.at(-1);
      assert.equal(last?.type, T.GOAWAY, 'a connection error ends with GOAWAY');
      assert.equal(last?.payload.readUInt32BE(4), state.error.code, 'the GOAWAY carries the error code');
    }
  }
  assert.equal(transport.writesAfterClose, 0, 'no write after end()/destroy()');
  for (const f of frames) {
    if (f.type === T.DATA) assert.ok(handler.heads.has(f.streamId), `DATA only on streams the handler answered (${f.streamId})`);
    if (f.type === T.RST_STREAM || f.type === T.WINDOW_UPDATE) assert.ok(f.streamId === 0 ? f.type === T.WINDOW_UPDATE : f.streamId % 2 === 1);
  }
  const bound = 16_384 + 32 * input.length + 2200 * handler.responses;
  assert.ok(transport.totalBytes <= bound, `output ${transport.totalBytes} bytes for ${input.length} input bytes`);

  connection.destroy();
  assert.equal(connection.lifecycle.state, 'closed');
  assert.equal(handler.connectionCloses, 1, 'onConnectionClose exactly once');
  for (const id of handler.heads.keys()) assert.equal(handler.endings.get(id) ?? 0, 1, `stream ${id} ended exactly once`);
  assert.equal(timers.activeCount, 0, 'no timer left running');
  assert.deepEqual(handler.violations, []);
}

test('connection fuzz: random and mutated frame sequences keep every invariant', async (t) => {
  const only = process.env.FUZZ_ITERATION_SEED;
  const masterSeed = Number(process.env.FUZZ_SEED ?? Date.now() % 0x1_0000_0000) >>> 0;
  t.diagnostic(`FUZZ_SEED=${masterSeed}`);
  const master = new FuzzRandom(masterSeed);
  const started = Date.now();
  let iterations = 0;
  for (; iterations < MAX_ITERATIONS && Date.now() - started < TIME_BUDGET_MS; iterations++) {
    const seed = only === undefined ? master.next() : Number(only);
    try {
      await runOne(seed);
    } catch (error) {
      const detail = error instanceof assert.AssertionError ? ` (actual ${inspect(error.actual)}, expected ${inspect(error.expected)})` : '';
      assert.fail(`FUZZ_SEED=${masterSeed} FUZZ_ITERATION_SEED=${seed} (iteration ${iterations}): ${(error as Error).stack}${detail}`);
    }
    if (only !== undefined) break;
  }
  t.diagnostic(`${iterations} iterations in ${Date.now() - started} ms`);
});
