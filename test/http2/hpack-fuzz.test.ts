// Bounded fuzz of the HPACK decoder (random and mutated blocks) and a differential run against node:http2 (nghttp2).

import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { HpackDecoder, HpackError } from '../../agent/http2/hpack-decoder.ts';
import { ENTRY_OVERHEAD, type DynamicTable } from '../../agent/http2/hpack-dynamic-table.ts';
import { HpackEncoder } from '../../agent/http2/hpack-encoder.ts';

const SEED = Number(process.env.HPACK_FUZZ_SEED ?? (Date.now() % 0x7fffffff) + 1) >>> 0 || 1;
console.log(`hpack fuzz seed ${SEED} (rerun with HPACK_FUZZ_SEED=${SEED})`);

/** xorshift32: small, seedable, good enough to spread mutations. */
function makeRandom(seed: number): (n: number) => number {
  let state = seed >>> 0 || 1;
  return (n: number): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) % n;
  };
}

const TIME_BUDGET_MS = 4000;
const MAX_CASES = 300_000;
// Decoding is linear in the block, so any case of a few KB takes microseconds; the bound is wide only so that a busy
// machine descheduling the test cannot fail it. It catches hangs and blow-ups.
const SLOW_DECODE_MS = 250;

/**
 * A full garbage collection, under plain `npm test` too: with --expose-gc set at run time, a new context gets a `gc`
 * function (the flag on the command line, which npm test does not pass, is not needed).
 */
function garbageCollector(): () => void {
  if (globalThis.gc) return globalThis.gc;
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

/** The table's size must equal the sum of its entries and never exceed its maximum or the advertised limit. */
function checkTable(table: DynamicTable, limit: number, context: string): void {
  let size = 0;
  for (let i = 0; i < table.length; i++) size += table.nameAt(i).length + table.valueAt(i).length + ENTRY_OVERHEAD;
  assert.equal(table.size, size, context);
  assert.ok(table.size <= table.maxSize, context);
  assert.ok(table.maxSize <= limit, context);
}

/**
 * Decodes and asserts the contract: a list within the size limit, null, or an HpackError; quickly. Returns the
 * outcome ('list', 'null' or the error reason) so the run can show it explored more than one path.
 */
function decodeChecked(decoder: HpackDecoder, block: Uint8Array, maxListSize: number, context: string): string {
  const started = performance.now();
  let outcome: string;
  try {
    const list = decoder.decode(block);
    outcome = list === null ? 'null' : 'list';
    if (list !== null) {
      assert.equal(list.length % 2, 0, context);
      let size = 0;
      for (let i = 0; i < list.length; i += 2) size += list[i].length + list[i + 1].length + ENTRY_OVERHEAD;
      assert.ok(size <= maxListSize, context);
    }
  } catch (error) {
    if (!(error instanceof HpackError)) assert.fail(`${context}: threw ${String(error)}`);
    outcome = error.reason;
  }
  const elapsed = performance.now() - started;
  assert.ok(elapsed < SLOW_DECODE_MS, `${context}: decode took ${elapsed.toFixed(1)} ms for ${block.length} bytes`);
  return outcome;
}

/** Valid blocks to mutate: some with Huffman strings, table references and size updates. */
function seedCorpus(random: (n: number) => number): Buffer[] {
  const corpus = [
    '828684418cf1e3c2e5f23a6ba0ab90f4ff',
    '828684be5886a8eb10649cbf',
    '828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf',
    '488264025885aec3771a4b6196d07abe941054d444a820059504' + '0b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3',
    '4883640effc1c0bf',
    '3fe10782',
    '203fe11f82',
    '100870617373776f726406736563726574',
  ].map((text) => Buffer.from(text, 'hex'));
  const encoder = new HpackEncoder();
  for (let i = 0; i < 40; i++) {
    if (i % 10 === 9) encoder.setMaxTableSize([0, 100, 4096][random(3)]);
    const list = [':method', 'POST', ':path', `/svc/M${random(5)}`, 'content-type', 'application/grpc'];
    for (let j = random(6); j > 0; j--) list.push(`x-h${random(8)}`, 'v'.repeat(random(40)) + random(1000));
    corpus.push(Buffer.from(encoder.encode(list)));
  }
  return corpus;
}

function mutate(random: (n: number) => number, corpus: Buffer[]): Buffer {
  const base = corpus[random(corpus.length)];
  switch (random(6)) {
    case 0: {
      const out = Buffer.allocUnsafe(random(64));
      for (let i = 0; i < out.length; i++) out[i] = random(256);
      return out;
    }
    case 1: {
      const out = Buffer.from(base);
      for (let flips = 1 + random(4); flips > 0 && out.length > 0; flips--) out[random(out.length)] ^= 1 << random(8);
      return out;
    }
    case 2:
      return base.subarray(0, random(base.length + 1));
    case 3: {
      const other = corpus[random(corpus.length)];
      return Buffer.concat([base.subarray(0, random(base.length + 1)), other.subarray(random(other.length + 1))]);
    }
    case 4: {
      // Octets that sit on boundaries of the representations: prefixes full, continuation bits, size updates.
      const special = [0x00, 0x0f, 0x10, 0x1f, 0x20, 0x3f, 0x40, 0x7f, 0x80, 0xff];
      const out = Buffer.from(base);
      if (out.length > 0) out[random(out.length)] = special[random(special.length)];
      return out;
    }
    default:
      return Buffer.concat([base, corpus[random(corpus.length)]]);
  }
}

test('fuzz: random and mutated blocks only ever give a list, null or HpackError', (t) => {
  const random = makeRandom(SEED);
  const corpus = seedCorpus(random);
  const longLived = new HpackDecoder(4096, 8192);
  // The table may stay above a lowered limit until the peer's next size update, never above the largest limit.
  let longLivedCeiling = 4096;
  const gc = garbageCollector();
  assert.equal(typeof gc, 'function');
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const deadline = performance.now() + TIME_BUDGET_MS;
  let cases = 0;
  const outcomes = new Map<string, number>();
  for (; cases < MAX_CASES && (cases & 255 || performance.now() < deadline); cases++) {
    const block = mutate(random, corpus);
    const context = `seed ${SEED} case ${cases} block ${block.toString('hex')}`;
    const limit = [0, 64, 256, 4096][random(4)];
    const maxListSize = 1 + random(2000);
    const fresh = new HpackDecoder(limit, maxListSize);
    const outcome = decodeChecked(fresh, block, maxListSize, context);
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    checkTable(fresh.table, limit, context);
    if (random(64) === 0) {
      const newLimit = [0, 128, 4096, 65536][random(4)];
      longLived.setMaxTableSize(newLimit);
      longLivedCeiling = Math.max(longLivedCeiling, newLimit);
    }
    decodeChecked(longLived, block, 8192, `${context} (long-lived)`);
    checkTable(longLived.table, longLivedCeiling, `${context} (long-lived)`);
    // Grow the corpus with blocks that decoded, so mutations go deeper than the seeds.
    if (corpus.length < 2000 && random(16) === 0) corpus.push(block);
  }
  console.log(`hpack fuzz: ${cases} cases`, Object.fromEntries(outcomes));
  assert.ok(cases >= 1000, 'the fuzz loop ran');
  assert.ok((outcomes.get('list') ?? 0) > 0 && (outcomes.get('null') ?? 0) > 0, 'valid and oversized lists were seen');
  assert.ok(outcomes.size >= 8, 'most error paths were reached');
  gc();
  const growth = process.memoryUsage().heapUsed - heapBefore;
  t.diagnostic(`heap grew by ${growth} bytes`);
  assert.ok(growth < 64 * 1024 * 1024, `heap grew by ${growth} bytes`);
});

// ---- Differential run: our encoder against nghttp2's decoder, nghttp2's encoder against our decoder. ----

type Frame = { type: number; flags: number; streamId: number; payload: Buffer };
const SETTINGS = 0x4;
const HEADERS = 0x1;
const CONTINUATION = 0x9;
const END_STREAM_AND_HEADERS = 0x5;
const END_HEADERS = 0x4;

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

/** Frames read from a socket, awaited one at a time; RST_STREAM and GOAWAY end the run with their payload. */
function frameReader(socket: net.Socket): () => Promise<Frame> {
  let pending = Buffer.alloc(0);
  const frames: Frame[] = [];
  let wake: (() => void) | null = null;
  let failure: Error | null = null;
  socket.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 9 && pending.length >= 9 + pending.readUIntBE(0, 3)) {
      const length = pending.readUIntBE(0, 3);
      const type = pending[3];
      const payload = pending.subarray(9, 9 + length);
      if (type === 0x3 || type === 0x7) failure = new Error(`peer sent frame type ${type}: ${payload.toString('hex')}`);
      frames.push({ type, flags: pending[4], streamId: pending.readUInt32BE(5) & 0x7fffffff, payload });
      pending = pending.subarray(9 + length);
    }
    wake?.();
  });
  socket.on('close', () => {
    failure ??= new Error('connection closed');
    wake?.();
  });
  return async () => {
    while (frames.length === 0) {
      if (failure) throw failure;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
    return frames.shift() as Frame;
  };
}

function randomValue(random: (n: number) => number): string {
  const chars: number[] = [];
  for (let i = random(40); i > 0; i--) {
    const kind = random(8);
    chars.push(kind === 0 ? 0x80 + random(128) : kind === 1 ? 0x20 : 0x21 + random(94));
  }
  // nghttp2 rejects leading and trailing whitespace in a value (RFC 9113 §8.2.1).
  return String.fromCharCode(...chars).trim();
}

test('differential: header lists agree with node:http2 (nghttp2) in both directions', { timeout: 30_000 }, async () => {
  const random = makeRandom(SEED ^ 0x5bd1e995);
  const server = http2.createServer({ settings: { headerTableSize: 1024 } });
  const received: string[][] = [];
  server.on('stream', (stream, _headers, _flags, rawHeaders) => {
    received.push(rawHeaders);
    const response: Record<string, string> = { ':status': '200' };
    for (let i = 0; i < rawHeaders.length; i += 2) {
      if (rawHeaders[i].startsWith('x-')) response[rawHeaders[i]] = rawHeaders[i + 1];
    }
    stream.respond(response, { endStream: true });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  try {
    const nextFrame = frameReader(socket);
    const encoder = new HpackEncoder();
    const decoder = new HpackDecoder();
    // Our SETTINGS_HEADER_TABLE_SIZE is 256, the server's 1024: both sides must emit size updates.
    const ourSettings = Buffer.from([0x00, 0x01, 0x00, 0x00, 0x01, 0x00]);
    socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(SETTINGS, 0, 0, ourSettings)]));
    let settingsSeen = false;
    let ackSeen = false;
    while (!settingsSeen || !ackSeen) {
      const { type, flags, payload } = await nextFrame();
      if (type !== SETTINGS) continue;
      if (flags & 0x1) {
        ackSeen = true;
        decoder.setMaxTableSize(256);
        continue;
      }
      for (let i = 0; i + 6 <= payload.length; i += 6) {
        if (payload.readUInt16BE(i) === 0x1) encoder.setMaxTableSize(payload.readUInt32BE(i + 2));
      }
      socket.write(frame(SETTINGS, 0x1, 0, Buffer.alloc(0)));
      settingsSeen = true;
    }
    const extraNames = ['authorization', 'grpc-timeout', 'user-agent', 'content-type', 'cookie', 'te'];
    for (let n = 0; n < 300; n++) {
      const streamId = 2 * n + 1;
      const list = [':method', 'POST', ':scheme', 'http', ':path', `/pkg.S${random(3)}/M${random(20)}`];
      list.push(':authority', 'svc.ns.svc.cluster.local:50051');
      const echoed: string[] = [];
      const names = new Set<string>();
      for (let i = random(10); i > 0; i--) {
        const name = random(4) === 0 ? extraNames[random(extraNames.length)] : `x-h${random(12)}`;
        if (names.has(name)) continue;
        names.add(name);
        const value = name === 'te' ? 'trailers' : random(30) === 0 ? 'z'.repeat(1500) : randomValue(random);
        list.push(name, value);
        if (name.startsWith('x-')) echoed.push(name, value);
      }
      socket.write(frame(HEADERS, END_STREAM_AND_HEADERS, streamId, encoder.encode(list)));
      let block = Buffer.alloc(0);
      for (;;) {
        const { type, flags, streamId: id, payload } = await nextFrame();
        if ((type !== HEADERS && type !== CONTINUATION) || id !== streamId) continue;
        assert.equal(flags & 0x28, 0, 'no padding or priority fields expected from nghttp2');
        block = Buffer.concat([block, payload]);
        if (flags & END_HEADERS) break;
      }
      assert.deepEqual(received[n], list, `request ${n} as nghttp2 decoded it`);
      const response = decoder.decode(block);
      assert.ok(response !== null);
      assert.deepEqual(response.slice(0, -2), [':status', '200', ...echoed], `response ${n} as we decoded it`);
      assert.equal(response.at(-2), 'date');
      checkTable(decoder.table, 256, `response ${n}`);
    }
    // Both size updates took effect, and both tables were used.
    assert.equal(decoder.table.maxSize, 256);
    assert.equal(encoder.table.maxSize, 1024);
    assert.ok(decoder.table.length > 0 && encoder.table.length > 0);
  } finally {
    socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
