// Repeated header blocks (agent/http2/hpack-repeats.ts): a repeat is answered from what the last decode or encode
// gave only while the dynamic table is as it was, and a repeated list is checked once but refused every time it is bad.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode } from '../../agent/http2/constants.ts';
import { HpackDecoder } from '../../agent/http2/hpack-decoder.ts';
import { HpackEncoder } from '../../agent/http2/hpack-encoder.ts';
import { requestsWere, serverPeer } from '../support/connection-harness.ts';
import { REQUEST, headers } from '../support/raw-frames.ts';

// Octets by hand (RFC 7541 §6): 0x40 = literal with incremental indexing, new name; 0xbe = indexed field 62, the
// newest entry of the dynamic table.
function literalIndexed(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x40, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
}
const NEWEST = Buffer.from([0xbe]);

/** A seeded generator of integers below n, so that a failing round trip is replayed exactly. */
function seededBelow(start: number): (n: number) => number {
  let seed = start;
  return (n) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
}

test('decoder: a repeated block gives the same list until the table changes, then decodes afresh', () => {
  const decoder = new HpackDecoder();
  assert.deepEqual(decoder.decode(literalIndexed('x-a', '1')), ['x-a', '1']);
  const first = decoder.decode(NEWEST);
  assert.deepEqual(first, ['x-a', '1']);
  assert.equal(decoder.decode(NEWEST), first, 'the repeat is the very same list');
  // Another insertion makes index 62 another field: the same octets now mean x-b.
  assert.deepEqual(decoder.decode(literalIndexed('x-b', '2')), ['x-b', '2']);
  assert.deepEqual(decoder.decode(NEWEST), ['x-b', '2']);
  // A size update that empties the table, then the old octets: index 62 no longer exists.
  assert.deepEqual(decoder.decode(Buffer.from([0x20])), []);
  assert.throws(() => decoder.decode(NEWEST), /index-out-of-range/);
});

test('decoder: a block that inserts is decoded every time it comes (each insertion counts)', () => {
  const decoder = new HpackDecoder();
  const block = literalIndexed('x-a', '1');
  for (let i = 1; i <= 3; i++) {
    assert.deepEqual(decoder.decode(block), ['x-a', '1']);
    assert.equal(decoder.table.length, i);
  }
});

test('encoder: a repeated list gives the same octets, re-encoded once an insertion moved its indexes', () => {
  const encoder = new HpackEncoder();
  const a = ['x-a', '1'];
  const b = ['x-b', '2'];
  const inserting = Buffer.from(encoder.encode(a));
  const indexed = Buffer.from(encoder.encode(a));
  assert.notDeepEqual(indexed, inserting);
  assert.deepEqual(Buffer.from(encoder.encode(['x-a', '1'])), indexed, 'an equal list, not the same array');
  encoder.encode(b); // x-a moves from index 62 to 63
  const decoder = new HpackDecoder();
  decoder.decode(inserting);
  decoder.decode(literalIndexed('x-b', '2'));
  assert.deepEqual(decoder.decode(encoder.encode(a)), a);
});

test('round trip: random lists over a small table with size updates decode to what was encoded', () => {
  const fields = [
    [':status', '200'],
    ['content-type', 'application/grpc'],
    ['grpc-status', '0'],
    ['grpc-message', ''],
    ['x-long', 'v'.repeat(900)],
    ['x-id', 'a'],
    ['x-id', 'b'],
    ['date', 'Mon, 07 Dec 2026 20:00:00 GMT'],
  ];
  const next = seededBelow(12345);
  const encoder = new HpackEncoder();
  const decoder = new HpackDecoder();
  const lists: string[][] = [];
  for (let i = 0; i < 12; i++) {
    const list: string[] = [];
    for (let f = 1 + next(4); f > 0; f--) list.push(...fields[next(fields.length)]);
    lists.push(list);
  }
  for (let block = 0; block < 5000; block++) {
    if (next(200) === 0) encoder.setMaxTableSize([0, 256, 1024, 4096][next(4)]);
    const list = lists[next(lists.length)];
    assert.deepEqual(decoder.decode(encoder.encode(list)), list, `block ${block}`);
    assert.equal(decoder.table.length, encoder.table.length, `tables in step at block ${block}`);
  }
});

test('a repeated valid request is checked once and served each time; a repeated malformed one is refused each time', async () => {
  const peer = serverPeer({ handler: { respond: false } });
  // The test encoder writes literals without indexing: the same list is the same octets, on a table never changed.
  peer.send(headers(1, REQUEST, { endStream: true }), headers(3, REQUEST, { endStream: true }));
  const bad = [...REQUEST, 'X-Upper', 'a'];
  peer.send(headers(5, bad, { endStream: true }), headers(7, bad, { endStream: true }));
  peer.send(headers(9, REQUEST, { endStream: true }));
  await peer.settle();
  requestsWere([1, 3, 9])(peer);
  assert.deepEqual(
    peer.resets().filter((r) => r.stream === 5 || r.stream === 7),
    [
      { stream: 5, code: ErrorCode.PROTOCOL_ERROR },
      { stream: 7, code: ErrorCode.PROTOCOL_ERROR },
    ],
  );
});

test('encoder: a list changed by its owner after encoding is encoded from what it holds now', () => {
  const encoder = new HpackEncoder();
  const decoder = new HpackDecoder();
  const list = ['x-a', '1'];
  decoder.decode(encoder.encode(list));
  decoder.decode(encoder.encode(list)); // indexed now, and kept
  list[1] = '2';
  assert.deepEqual(decoder.decode(encoder.encode(list)), ['x-a', '2']);
});

// A gRPC request head as a client that sets a deadline on every call sends it: the same fields, then a new
// grpc-timeout each time.
function requestWithTimeout(timeout: string): string[] {
  return [
    ':method', 'POST', ':scheme', 'http', ':path', '/bench.Bench/Call', ':authority', 'bench:50051',
    'content-type', 'application/grpc', 'user-agent', 'grpc-go/1.33.3', 'te', 'trailers', 'grpc-timeout', timeout,
  ];
}

test('encoder: a list sharing its leading fields with the last one keeps their octets, and decodes to itself', () => {
  const encoder = new HpackEncoder();
  const decoder = new HpackDecoder();
  for (const timeout of ['999u', '998u']) assert.deepEqual(decoder.decode(encoder.encode(requestWithTimeout(timeout))), requestWithTimeout(timeout));
  const before = Buffer.from(encoder.encode(requestWithTimeout('997u')));
  const after = Buffer.from(encoder.encode(requestWithTimeout('1000u')));
  assert.deepEqual(decoder.decode(before), requestWithTimeout('997u'));
  assert.deepEqual(decoder.decode(after), requestWithTimeout('1000u'));
  // Everything before grpc-timeout's value is the same by now: the blocks differ in the value (a length octet and at
  // most four octets of it).
  const shared = before.length - 5;
  assert.deepEqual(after.subarray(0, shared), before.subarray(0, shared));
});

test('encoder: the shared leading octets are not reused once an insertion moved the indexes', () => {
  const encoder = new HpackEncoder();
  const decoder = new HpackDecoder();
  const roundTrip = (list: string[]) => assert.deepEqual(decoder.decode(encoder.encode(list)), list);
  roundTrip(requestWithTimeout('1u'));
  roundTrip(requestWithTimeout('2u')); // field by field on an unchanged table: recorded
  roundTrip(['x-new', 'inserted']); // the output now holds another block, and every index moved by one
  roundTrip(requestWithTimeout('3u'));
  assert.equal(decoder.table.length, encoder.table.length);
});

test('encoder: the shared leading octets are not reused once another block overwrote the output', () => {
  const encoder = new HpackEncoder();
  const decoder = new HpackDecoder();
  const roundTrip = (list: string[]) => assert.deepEqual(decoder.decode(encoder.encode(list)), list);
  const other = ['te', 'trailers', ':method', 'POST'];
  roundTrip(requestWithTimeout('1u')); // inserts the head's fields
  roundTrip(other); // static and indexed fields only: kept as a repeat
  roundTrip(requestWithTimeout('2u')); // recorded for its leading fields
  roundTrip(other); // answered from the repeats: its octets at the start of the output
  roundTrip(requestWithTimeout('3u'));
  // A list longer than what is recorded of it, encoded field by field over the recorded one without changing the table.
  roundTrip(new Array<string[]>(40).fill([':method', 'POST']).flat());
  roundTrip(requestWithTimeout('4u'));
});

test('round trip: heads with a new timeout each, other heads, insertions and size updates decode to what was encoded', () => {
  const next = seededBelow(4242);
  const encoder = new HpackEncoder();
  const decoder = new HpackDecoder();
  const others = [['te', 'trailers'], [':status', '200', 'content-type', 'application/grpc'], ['x-id', 'fixed']];
  for (let block = 0; block < 5000; block++) {
    if (next(300) === 0) encoder.setMaxTableSize([0, 128, 512, 4096][next(4)]);
    const kind = next(10);
    let list: string[];
    // Few timeout values, so that whole lists repeat often between lists that share only their leading fields.
    if (kind < 6) list = requestWithTimeout(`${next(30)}m`);
    else if (kind < 8) list = others[next(others.length)];
    else if (kind < 9) list = [...requestWithTimeout(`${next(50)}m`), `x-call-${next(40)}`, 'y'];
    else list = requestWithTimeout(`${next(30)}m`).map((field, i) => (i === 5 ? `/bench.Bench/Other${next(3)}` : field));
    assert.deepEqual(decoder.decode(encoder.encode(list)), list, `block ${block}`);
    assert.equal(decoder.table.length, encoder.table.length, `tables in step at block ${block}`);
  }
});
