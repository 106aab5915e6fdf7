// Tests for HPACK: every example of RFC 7541 Appendix C, the Huffman code, the encoder's policy, every decoder error.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HpackDecoder, HpackError, type HpackErrorReason, readInteger } from '../../agent/http2/hpack-decoder.ts';
import type { DynamicTable } from '../../agent/http2/hpack-dynamic-table.ts';
import { HpackEncoder, writeInteger } from '../../agent/http2/hpack-encoder.ts';
import { STATIC_NAMES, STATIC_TABLE_LENGTH, STATIC_VALUES } from '../../agent/http2/hpack-static-table.ts';
import {
  HUFFMAN_CODES,
  HUFFMAN_LENGTHS,
  huffmanDecode,
  huffmanEncode,
  huffmanEncodedLength,
} from '../../agent/http2/hpack-huffman.ts';

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');

/** Dynamic table as the RFC prints it: newest first, "name: value". */
function entries(table: DynamicTable): string[] {
  const out: string[] = [];
  for (let i = 0; i < table.length; i++) out.push(`${table.nameAt(i)}: ${table.valueAt(i)}`);
  return out;
}

function expectHpackError(reason: HpackErrorReason, run: () => unknown): void {
  assert.throws(run, (error: unknown) => error instanceof HpackError && error.reason === reason);
}

test('huffman table is the canonical code of its lengths (catches transcription slips)', () => {
  const order = [...Array(257).keys()].sort((a, b) => HUFFMAN_LENGTHS[a] - HUFFMAN_LENGTHS[b] || a - b);
  let code = 0;
  for (let k = 0; k < order.length; k++) {
    if (k > 0) code = (code + 1) * 2 ** (HUFFMAN_LENGTHS[order[k]] - HUFFMAN_LENGTHS[order[k - 1]]);
    assert.equal(HUFFMAN_CODES[order[k]], code, `symbol ${order[k]}`);
  }
  assert.equal(HUFFMAN_CODES[256], 0x3fffffff);
  assert.equal(HUFFMAN_LENGTHS[256], 30);
});

test('huffman encodes the strings of RFC 7541 C.4 and C.6 and decodes them back', () => {
  const cases: Array<[string, string]> = [
    ['www.example.com', 'f1e3 c2e5 f23a 6ba0 ab90 f4ff'],
    ['no-cache', 'a8eb 1064 9cbf'],
    ['custom-key', '25a8 49e9 5ba9 7d7f'],
    ['custom-value', '25a8 49e9 5bb8 e8b4 bf'],
    ['302', '6402'],
    ['307', '640e ff'],
    ['private', 'aec3 771a 4b'],
    ['Mon, 21 Oct 2013 20:13:21 GMT', 'd07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff'],
    ['https://www.example.com', '9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3'],
    ['gzip', '9bd9 ab'],
    [
      'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1',
      `94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1
       ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
    ],
  ];
  for (const [text, encoded] of cases) {
    const expected = hex(encoded);
    assert.equal(huffmanEncodedLength(text), expected.length, text);
    const out = Buffer.alloc(expected.length);
    assert.equal(huffmanEncode(text, out, 0), expected.length);
    assert.deepEqual(out, expected, text);
    const decoded = Buffer.alloc(64);
    const length = huffmanDecode(expected, 0, expected.length, decoded);
    assert.equal(decoded.toString('latin1', 0, length), text);
  }
});

test('huffman round-trips every octet value, alone and in runs', () => {
  const all = String.fromCharCode(...Array.from({ length: 256 }, (_, i) => i));
  for (const text of [all, all.split('').reverse().join(''), ...all.split(''), '\u00ff\u00fe\u0000a']) {
    const out = Buffer.alloc(huffmanEncodedLength(text));
    assert.equal(huffmanEncode(text, out, 0), out.length);
    const decoded = Buffer.alloc(out.length * 2);
    const length = huffmanDecode(out, 0, out.length, decoded);
    assert.equal(decoded.toString('latin1', 0, length), text);
  }
});

test('static table: 61 entries, spot checks against RFC 7541 Appendix A', () => {
  assert.equal(STATIC_TABLE_LENGTH, 61);
  assert.equal(STATIC_NAMES.length, 62);
  const spots: Array<[number, string, string]> = [
    [1, ':authority', ''],
    [16, 'accept-encoding', 'gzip, deflate'],
    [31, 'content-type', ''],
    [58, 'user-agent', ''],
    [61, 'www-authenticate', ''],
  ];
  for (const [index, name, value] of spots) {
    assert.deepEqual([STATIC_NAMES[index], STATIC_VALUES[index]], [name, value]);
  }
});

test('C.1 integer representation examples', () => {
  const out = Buffer.alloc(8);
  // C.1.1: 10 with a 5-bit prefix; the three high bits belong to the representation and are kept.
  assert.deepEqual(out.subarray(0, writeInteger(out, 0, 0xe0, 5, 10)), hex('ea'));
  assert.equal(readInteger(hex('ea'), { pos: 0, end: 1 }, 5), 10);
  // C.1.2: 1337 with a 5-bit prefix.
  assert.deepEqual(out.subarray(0, writeInteger(out, 0, 0, 5, 1337)), hex('1f 9a 0a'));
  const cursor = { pos: 0, end: 3 };
  assert.equal(readInteger(hex('1f 9a 0a'), cursor, 5), 1337);
  assert.equal(cursor.pos, 3);
  // C.1.3: 42 starting at an octet boundary (8-bit prefix).
  assert.deepEqual(out.subarray(0, writeInteger(out, 0, 0, 8, 42)), hex('2a'));
  assert.equal(readInteger(hex('2a'), { pos: 0, end: 1 }, 8), 42);
  // The same integers on the wire: dynamic table size updates use a 5-bit prefix.
  const encoder = new HpackEncoder();
  encoder.setMaxTableSize(1337);
  assert.deepEqual(encoder.encode([]), hex('3f 9a 0a'));
  const decoder = new HpackDecoder();
  assert.deepEqual(decoder.decode(hex('3f 9a 0a')), []);
  assert.equal(decoder.table.maxSize, 1337);
});

test('C.2.1 literal header field with indexing', () => {
  const decoder = new HpackDecoder();
  const block = hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572');
  assert.deepEqual(decoder.decode(block), ['custom-key', 'custom-header']);
  assert.deepEqual(entries(decoder.table), ['custom-key: custom-header']);
  assert.equal(decoder.table.size, 55);
});

test('C.2.2 literal header field without indexing', () => {
  const decoder = new HpackDecoder();
  assert.deepEqual(decoder.decode(hex('040c 2f73 616d 706c 652f 7061 7468')), [':path', '/sample/path']);
  assert.deepEqual(entries(decoder.table), []);
  assert.equal(decoder.table.size, 0);
});

test('C.2.3 literal header field never indexed', () => {
  const decoder = new HpackDecoder();
  assert.deepEqual(decoder.decode(hex('1008 7061 7373 776f 7264 0673 6563 7265 74')), ['password', 'secret']);
  assert.deepEqual(entries(decoder.table), []);
});

test('C.2.4 indexed header field', () => {
  const decoder = new HpackDecoder();
  assert.deepEqual(decoder.decode(hex('82')), [':method', 'GET']);
  assert.deepEqual(entries(decoder.table), []);
});

const REQUESTS = [
  [':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'www.example.com'],
  [':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'www.example.com', 'cache-control', 'no-cache'],
  [
    ...[':method', 'GET', ':scheme', 'https', ':path', '/index.html', ':authority', 'www.example.com'],
    ...['custom-key', 'custom-value'],
  ],
];
const REQUEST_TABLES: Array<[string[], number]> = [
  [[':authority: www.example.com'], 57],
  [['cache-control: no-cache', ':authority: www.example.com'], 110],
  [['custom-key: custom-value', 'cache-control: no-cache', ':authority: www.example.com'], 164],
];

function checkSequence(
  decoder: HpackDecoder,
  blocks: string[],
  lists: string[][],
  tables: Array<[string[], number]>,
): void {
  for (let i = 0; i < blocks.length; i++) {
    assert.deepEqual(decoder.decode(hex(blocks[i])), lists[i], `block ${i + 1}`);
    assert.deepEqual(entries(decoder.table), tables[i][0], `table after block ${i + 1}`);
    assert.equal(decoder.table.size, tables[i][1], `table size after block ${i + 1}`);
  }
}

test('C.3 request examples without Huffman coding', () => {
  const blocks = [
    '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
    '8286 84be 5808 6e6f 2d63 6163 6865',
    '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
  ];
  checkSequence(new HpackDecoder(), blocks, REQUESTS, REQUEST_TABLES);
});

const C4_BLOCKS = [
  '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
  '8286 84be 5886 a8eb 1064 9cbf',
  '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
];

test('C.4 request examples with Huffman coding', () => {
  checkSequence(new HpackDecoder(), C4_BLOCKS, REQUESTS, REQUEST_TABLES);
});

test('the encoder reproduces C.4 byte for byte', () => {
  const encoder = new HpackEncoder();
  for (let i = 0; i < REQUESTS.length; i++) {
    assert.deepEqual(encoder.encode(REQUESTS[i]), hex(C4_BLOCKS[i]), `request ${i + 1}`);
    assert.deepEqual(entries(encoder.table), REQUEST_TABLES[i][0]);
  }
});

const DATE1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
const DATE2 = 'Mon, 21 Oct 2013 20:13:22 GMT';
const LOCATION = 'https://www.example.com';
const COOKIE = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
const RESPONSES = [
  [':status', '302', 'cache-control', 'private', 'date', DATE1, 'location', LOCATION],
  [':status', '307', 'cache-control', 'private', 'date', DATE1, 'location', LOCATION],
  [
    ...[':status', '200', 'cache-control', 'private', 'date', DATE2, 'location', LOCATION],
    ...['content-encoding', 'gzip', 'set-cookie', COOKIE],
  ],
];
const RESPONSE_TABLES: Array<[string[], number]> = [
  [[`location: ${LOCATION}`, `date: ${DATE1}`, 'cache-control: private', ':status: 302'], 222],
  [[':status: 307', `location: ${LOCATION}`, `date: ${DATE1}`, 'cache-control: private'], 222],
  [[`set-cookie: ${COOKIE}`, 'content-encoding: gzip', `date: ${DATE2}`], 215],
];

test('C.5 response examples without Huffman coding (256-octet table, evictions)', () => {
  const blocks = [
    `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
     2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d`,
    '4803 3330 37c1 c0bf',
    `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
     54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
     5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31`,
  ];
  checkSequence(new HpackDecoder(256), blocks, RESPONSES, RESPONSE_TABLES);
});

test('C.6 response examples with Huffman coding (256-octet table, evictions)', () => {
  const blocks = [
    `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
     2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
    '4883 640e ffc1 c0bf',
    `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
     77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
     9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
  ];
  checkSequence(new HpackDecoder(256), blocks, RESPONSES, RESPONSE_TABLES);
});

test('encoder: full static matches are indexed', () => {
  const encoder = new HpackEncoder();
  assert.deepEqual(encoder.encode([':method', 'POST', ':scheme', 'http', ':status', '200']), hex('83 86 88'));
  assert.equal(encoder.table.length, 0);
});

test('encoder: content-type is a literal with incremental indexing, then indexed', () => {
  const encoder = new HpackEncoder();
  const decoder = new HpackDecoder();
  const first = Buffer.from(encoder.encode(['content-type', 'application/grpc']));
  assert.equal(first[0], 0x40 | 31); // literal with incremental indexing, name from static index 31
  assert.deepEqual(decoder.decode(first), ['content-type', 'application/grpc']);
  assert.deepEqual(entries(encoder.table), ['content-type: application/grpc']);
  assert.deepEqual(encoder.encode(['content-type', 'application/grpc']), hex('be'));
  // A new field pushes the older one to index 63.
  encoder.encode(['x-tenant', 'blue']);
  assert.deepEqual(encoder.encode(['content-type', 'application/grpc', 'x-tenant', 'blue']), hex('bf be'));
});

test('encoder: sensitive fields are never indexed, per-request values are not indexed', () => {
  const encoder = new HpackEncoder();
  const decoder = new HpackDecoder();
  for (let round = 0; round < 2; round++) {
    const auth = encoder.encode(['authorization', 'Bearer abc']);
    assert.deepEqual(auth.subarray(0, 2), hex('1f 08')); // never indexed, name index 23
    assert.deepEqual(decoder.decode(auth), ['authorization', 'Bearer abc']);
    const cookie = encoder.encode(['cookie', 'a=b']);
    assert.equal(cookie[0], 0x1f); // never indexed, name index 32 = 15 + 17
    assert.equal(cookie[1], 17);
    const length = encoder.encode(['content-length', '42']);
    assert.deepEqual(length.subarray(0, 2), hex('0f 0d')); // without indexing, name index 28
    const timeout = encoder.encode(['grpc-timeout', '999m']);
    assert.equal(timeout[0], 0x00); // without indexing, literal name
    assert.deepEqual(decoder.decode(timeout), ['grpc-timeout', '999m']);
  }
  assert.equal(encoder.table.length, 0);
  assert.equal(decoder.table.length, 0);
});

test('encoder: a literal name is indexed from the dynamic table once present', () => {
  const encoder = new HpackEncoder();
  encoder.encode(['x-tenant', 'blue']);
  const block = encoder.encode(['x-tenant', 'green']);
  assert.equal(block[0], 0x40 | 62); // literal with incremental indexing, name from dynamic index 62
});

test('encoder: a field too large for the table is sent without indexing', () => {
  const encoder = new HpackEncoder();
  encoder.encode(['x-keep', 'me']);
  const big = 'v'.repeat(4000);
  const block = encoder.encode(['x-big', big]);
  assert.equal(block[0], 0x00);
  assert.deepEqual(entries(encoder.table), ['x-keep: me']);
  assert.deepEqual(new HpackDecoder().decode(block), ['x-big', big]);
});

test('encoder: size updates at the start of the next block, smallest then final', () => {
  const encoder = new HpackEncoder();
  const decoder = new HpackDecoder();
  decoder.decode(encoder.encode(['x-a', '1', 'x-b', '2']));
  encoder.setMaxTableSize(65536); // above our 4096 cap: no change, no update
  assert.deepEqual(encoder.encode([':method', 'GET']), hex('82'));
  encoder.setMaxTableSize(1024);
  decoder.setMaxTableSize(1024);
  assert.deepEqual(encoder.encode([':method', 'GET']), hex('3f e1 07 82')); // 1024
  assert.deepEqual(encoder.encode([':method', 'GET']), hex('82'));
  encoder.setMaxTableSize(0);
  encoder.setMaxTableSize(2048);
  decoder.setMaxTableSize(0);
  decoder.setMaxTableSize(2048);
  const block = encoder.encode(['x-c', '3']);
  assert.deepEqual(block.subarray(0, 4), hex('20 3f e1 0f')); // 0, then 2048
  assert.deepEqual(decoder.decode(block), ['x-c', '3']);
  assert.deepEqual(entries(decoder.table), ['x-c: 3']);
  assert.deepEqual(entries(encoder.table), ['x-c: 3']);
  assert.equal(decoder.table.maxSize, 2048);
});

test('encoder: random header lists round-trip with table size changes, tables stay equal', () => {
  let seed = 0x9e3779b9;
  const random = (n: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const names = [':path', ':authority', 'content-type', 'authorization', 'grpc-timeout', 'x-a', 'x-b', 'x-c', 'date'];
  const pick = (): string => {
    const kind = random(4);
    if (kind === 0) return names[random(names.length)];
    if (kind === 1) return `v${random(20)}`;
    if (kind === 2) return 'x'.repeat(random(300));
    return String.fromCharCode(...Array.from({ length: random(12) }, () => random(256)));
  };
  const encoder = new HpackEncoder();
  const decoder = new HpackDecoder();
  for (let round = 0; round < 3000; round++) {
    if (random(50) === 0) {
      const size = [0, 64, 256, 1000, 4096, 8192][random(6)];
      encoder.setMaxTableSize(size);
      decoder.setMaxTableSize(size);
    }
    const list: string[] = [];
    const count = random(12);
    for (let i = 0; i < count; i++) list.push(random(3) === 0 ? pick() : names[random(names.length)], pick());
    assert.deepEqual(decoder.decode(encoder.encode(list)), list, `round ${round}`);
    assert.deepEqual(entries(decoder.table), entries(encoder.table), `round ${round}`);
    assert.equal(decoder.table.size, encoder.table.size);
    assert.ok(encoder.table.size <= encoder.table.maxSize && encoder.table.maxSize <= 4096);
  }
});

test('decoder errors: indexes', () => {
  expectHpackError('index-zero', () => new HpackDecoder().decode(hex('80')));
  expectHpackError('index-out-of-range', () => new HpackDecoder().decode(hex('be')));
  expectHpackError('index-out-of-range', () => new HpackDecoder().decode(hex('7e 01 61'))); // name index 62
  expectHpackError('index-out-of-range', () => new HpackDecoder().decode(hex('0f 30 01 61'))); // name index 63
  expectHpackError('index-out-of-range', () => new HpackDecoder().decode(hex('ff ff ff ff 07'))); // huge index
});

test('decoder errors: integer overflow and overlong integers', () => {
  expectHpackError('integer-overflow', () => new HpackDecoder().decode(hex('ff ff ff ff ff 0f')));
  expectHpackError('integer-overflow', () => new HpackDecoder().decode(hex('ff 80 80 80 80 80 00')));
  expectHpackError('integer-overflow', () => new HpackDecoder().decode(hex('00 7f ff ff ff ff 0f')));
});

test('decoder errors: truncated blocks and strings past the end', () => {
  expectHpackError('truncated', () => new HpackDecoder().decode(hex('ff'))); // integer cut
  expectHpackError('truncated', () => new HpackDecoder().decode(hex('ff 80'))); // integer cut after a continuation
  expectHpackError('truncated', () => new HpackDecoder().decode(hex('40'))); // name string missing
  expectHpackError('truncated', () => new HpackDecoder().decode(hex('40 01 61'))); // value string missing
  expectHpackError('string-past-end', () => new HpackDecoder().decode(hex('40 05 61 62'))); // name longer than block
  expectHpackError('string-past-end', () => new HpackDecoder().decode(hex('04 8a ff'))); // Huffman value too
  expectHpackError('string-past-end', () => new HpackDecoder().decode(hex('04 7f ff ff ff 07'))); // 2^28: no alloc
});

test('decoder errors: dynamic table size updates', () => {
  expectHpackError('size-update-too-large', () => new HpackDecoder().decode(hex('3f e2 1f'))); // 4097 > 4096
  expectHpackError('size-update-too-large', () => new HpackDecoder(256).decode(hex('3f e2 01'))); // 257 > 256
  expectHpackError('size-update-not-first', () => new HpackDecoder().decode(hex('82 20')));
  expectHpackError('size-update-not-first', () => new HpackDecoder().decode(hex('20 82 3f e1 07')));
  const decoder = new HpackDecoder();
  decoder.setMaxTableSize(1024);
  expectHpackError('size-update-missing', () => decoder.decode(hex('82')));
  const obliged = new HpackDecoder();
  obliged.setMaxTableSize(1024);
  assert.deepEqual(obliged.decode(hex('3f e1 07 82')), [':method', 'GET']);
  assert.deepEqual(obliged.decode(hex('82')), [':method', 'GET']); // only the first block after the change
  // Two updates at the start are allowed (smallest, then final), and a raised limit needs no update.
  assert.deepEqual(new HpackDecoder().decode(hex('20 3f e1 1f 82')), [':method', 'GET']);
  const raised = new HpackDecoder();
  raised.setMaxTableSize(8192);
  assert.deepEqual(raised.decode(hex('82')), [':method', 'GET']);
});

test('decoder errors: Huffman padding and EOS', () => {
  // Literal without indexing, literal name "a", Huffman value.
  expectHpackError('huffman-padding-too-long', () => new HpackDecoder().decode(hex('00 01 61 82 1f ff')));
  expectHpackError('huffman-padding-too-long', () => new HpackDecoder().decode(hex('00 01 61 81 ff')));
  expectHpackError('huffman-padding-not-eos', () => new HpackDecoder().decode(hex('00 01 61 81 18'))); // 'a' + 000
  expectHpackError('huffman-padding-not-eos', () => new HpackDecoder().decode(hex('00 01 61 81 fe')));
  expectHpackError('huffman-eos', () => new HpackDecoder().decode(hex('00 01 61 84 ff ff ff ff')));
  assert.deepEqual(new HpackDecoder().decode(hex('00 01 61 81 1f')), ['a', 'a']); // 'a' + 111: valid
});

test('header list too large: null, and the dynamic table stays in step', () => {
  const encoder = new HpackEncoder();
  const decoder = new HpackDecoder(4096, 200);
  const block = encoder.encode(['x-big', 'b'.repeat(300), 'x-small', 'kept']);
  assert.equal(decoder.decode(block), null);
  assert.deepEqual(entries(decoder.table), entries(encoder.table));
  // Both were added, x-small after the list was already too large.
  assert.deepEqual(entries(decoder.table), ['x-small: kept', `x-big: ${'b'.repeat(300)}`]);
  const next = encoder.encode(['x-small', 'kept', ':method', 'GET']);
  assert.deepEqual(next, hex('be 82'));
  assert.deepEqual(decoder.decode(next), ['x-small', 'kept', ':method', 'GET']);
  // The limit counts name + value + 32 per field (RFC 9113 §6.5.2): exactly at the limit is accepted.
  const exact = new HpackDecoder(4096, 32 + 7 + 3);
  assert.deepEqual(exact.decode(hex('8d')), [':status', '404']);
  assert.equal(new HpackDecoder(4096, 32 + 7 + 2).decode(hex('8d')), null);
});
