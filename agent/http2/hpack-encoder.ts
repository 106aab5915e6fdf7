// HPACK encoder (RFC 7541): a flat [name, value, ...] list → a header block, indexing what repeats.

import { DynamicTable, entrySize } from './hpack-dynamic-table.ts';
import { huffmanEncode, huffmanEncodedLength } from './hpack-huffman.ts';
import { EncodedPrefix, RepeatedLists } from './hpack-repeats.ts';
import { STATIC_INDEX_BY_NAME, STATIC_NAMES, STATIC_TABLE_LENGTH, STATIC_VALUES } from './hpack-static-table.ts';

/**
 * Our table never exceeds the RFC's default even when the peer allows more: 4096 octets hold every field a gRPC
 * channel repeats, and each connection's memory stays small.
 */
const MAX_ENCODER_TABLE_SIZE = 4096;

const INCREMENTAL = 0;
const WITHOUT_INDEXING = 1;
const NEVER_INDEXED = 2;

/**
 * Fields not added to the table. Secrets are never indexed (RFC 7541 §7.1.3: an intermediary must keep that
 * representation, and indexing them would let a compression oracle probe them). Values that differ on nearly every
 * message would only evict fields that do repeat.
 */
const POLICY_BY_NAME: ReadonlyMap<string, number> = new Map([
  ['authorization', NEVER_INDEXED],
  ['proxy-authorization', NEVER_INDEXED],
  ['cookie', NEVER_INDEXED],
  ['set-cookie', NEVER_INDEXED],
  ['content-length', WITHOUT_INDEXING],
  ['grpc-timeout', WITHOUT_INDEXING],
  ['grpc-status-details-bin', WITHOUT_INDEXING],
  ['grpc-trace-bin', WITHOUT_INDEXING],
  ['traceparent', WITHOUT_INDEXING],
  ['x-request-id', WITHOUT_INDEXING],
  ['x-b3-traceid', WITHOUT_INDEXING],
  ['x-b3-spanid', WITHOUT_INDEXING],
  ['x-b3-parentspanid', WITHOUT_INDEXING],
  ['date', WITHOUT_INDEXING],
  ['age', WITHOUT_INDEXING],
  ['etag', WITHOUT_INDEXING],
  ['expires', WITHOUT_INDEXING],
  ['last-modified', WITHOUT_INDEXING],
]);

/**
 * What the encoder knows of a name before looking at its value, in one lookup: the first static index with that name
 * in the low 8 bits, the indexing policy above them.
 */
const POLICY_SHIFT = 8;
const STATIC_INDEX_MASK = 0xff;
const NAME_INFO: ReadonlyMap<string, number> = buildNameInfo();

function buildNameInfo(): Map<string, number> {
  const info = new Map<string, number>();
  for (const [name, index] of STATIC_INDEX_BY_NAME) info.set(name, index);
  for (const [name, policy] of POLICY_BY_NAME) info.set(name, (info.get(name) ?? 0) | (policy << POLICY_SHIFT));
  return info;
}

// Wire prefixes (RFC 7541 §6) and the width of the integer that follows them.
const INDEXED = 0x80;
const LITERAL_INCREMENTAL = 0x40;
const SIZE_UPDATE = 0x20;
const LITERAL_NEVER_INDEXED = 0x10;
const LITERAL_WITHOUT_INDEXING = 0x00;

/** Ring of keys by insertion counter; live entries are at most 4096 / 32 = 128, plus the ones just evicted. */
const KEY_RING_SIZE = 256;
const KEY_RING_MASK = KEY_RING_SIZE - 1;

/** Raw strings up to this length are copied by a JS loop; a native call costs more than it saves below it. */
const SHORT_STRING = 32;

type Latin1Buffer = Buffer & { latin1Write(str: string, offset: number): number };

const NO_RING: string[] = [];
/** Shared by every encoder that never inserted a field: only read (the first insertion gives an encoder its own). */
const NO_COUNTERS = new Map<string, number>();
const NO_OUTPUT = Buffer.alloc(0) as Latin1Buffer;
const FIRST_OUTPUT_SIZE = 1024;

export class HpackEncoder {
  /** The dynamic table as the peer's decoder will see it; exposed for tests and debugging. */
  readonly table = new DynamicTable(MAX_ENCODER_TABLE_SIZE);
  /** `name + '\0' + value` → insertion counter of the live entry holding that field. */
  private counterByField: Map<string, number> = NO_COUNTERS;
  /** name → insertion counter of the newest live entry with that name (the last of them to be evicted). */
  private counterByName: Map<string, number> = NO_COUNTERS;
  /** Allocated at the first insertion: a connection that never sends a header block (an idle one) holds none. */
  private ringKeys: string[] = NO_RING;
  private ringNames: string[] = NO_RING;
  /** Entries below this counter have been removed from the maps. */
  private sweptCounter = 0;
  /** Table size the peer's decoder will have once the pending size updates are sent. */
  private targetSize = MAX_ENCODER_TABLE_SIZE;
  /** Smallest size since the last block, or -1 when no size update is pending (RFC 7541 §4.2). */
  private pendingMinSize = -1;
  /** Output of the block being encoded; allocated by the first block. */
  private out = NO_OUTPUT;
  private pos = 0;
  /** Lists encoded lately without changing the table, and their octets. */
  private readonly repeats = new RepeatedLists();
  /** The last list encoded field by field, whose leading fields the next list may share (a new grpc-timeout). */
  private readonly prefix = new EncodedPrefix();
  /** The block being encoded has a field POLICY_BY_NAME leaves out of the table for varying per message. */
  private variesPerMessage = false;

  /**
   * The peer's SETTINGS_HEADER_TABLE_SIZE. The table uses at most the smaller of it and 4096; a change is signalled
   * at the start of the next block, preceded by the smallest size reached in between when that was lower.
   */
  setMaxTableSize(peerHeaderTableSize: number): void {
    const size = Math.min(peerHeaderTableSize, MAX_ENCODER_TABLE_SIZE);
    if (size === this.targetSize) return;
    this.pendingMinSize = this.pendingMinSize < 0 ? size : Math.min(this.pendingMinSize, size);
    this.targetSize = size;
  }

  /**
   * Encodes a flat header list. Names and values are latin1 strings, one char per octet, as the decoder produces them
   * (a char above 0xff keeps only its low 8 bits). The result is a view into a buffer reused by the next call: write
   * or copy it before encoding again.
   */
  encode(headers: readonly string[]): Buffer {
    const length = this.encodeInPlace(headers);
    return this.out.subarray(0, length);
  }

  /** encode() without the view: the block is `output[0, length)`, where length is what this returns. */
  encodeInPlace(headers: readonly string[]): number {
    this.pos = 0;
    const generation = this.table.generation;
    let first = 0;
    if (this.pendingMinSize < 0) {
      const repeated = this.repeats.find(headers, generation);
      if (repeated !== null) {
        // The repeat's octets overwrite the output; those of the fields it shares with the recorded list are the same
        // octets (the same fields on the same table), so the record stays good up to there.
        this.prefix.keepFirst(this.prefix.matchingFields(headers, generation));
        this.writeRaw(repeated);
        return this.pos;
      }
      // The octets of the fields this list shares with the last one are still at the start of the output.
      first = this.prefix.matchingFields(headers, generation);
      this.pos = this.prefix.octetsBefore(first);
    } else {
      this.writeSizeUpdates(); // a new table generation: the recorded prefix no longer matches
    }
    const count = headers.length >> 1;
    this.variesPerMessage = false;
    for (let k = first; k < count; k++) {
      const name = headers[k << 1];
      const value = headers[(k << 1) + 1];
      this.encodeField(name, value);
      this.prefix.noteField(k, name, value, this.pos);
    }
    // A block that changed the table left it at a generation the recorded prefix cannot match. A list with a field
    // whose value differs on nearly every message (POLICY_BY_NAME) is not kept to be repeated whole.
    if (this.table.generation === generation) {
      if (!this.variesPerMessage) this.repeats.remember(headers, this.out, this.pos, generation);
      this.prefix.recorded(count, generation);
    }
    return this.pos;
  }

  /** The buffer the last block was encoded into (replaced when a block outgrows it). */
  get output(): Buffer {
    return this.out;
  }

  private encodeField(name: string, value: string): void {
    this.reserve(name.length + value.length + 16);
    const info = NAME_INFO.get(name) ?? 0;
    const staticIndex = info & STATIC_INDEX_MASK;
    if (staticIndex !== 0) {
      for (let index = staticIndex; index <= STATIC_TABLE_LENGTH && STATIC_NAMES[index] === name; index++) {
        if (STATIC_VALUES[index] === value) {
          this.writeInteger(INDEXED, 7, index);
          return;
        }
      }
    }
    const policy = info >>> POLICY_SHIFT;
    const newest = this.counterByName.get(name);
    let key = '';
    if (policy === INCREMENTAL) {
      // Most names carry one value per connection: compare with the newest entry of that name first, which needs no
      // key string (building and hashing one costs more than the rest of the field).
      if (newest !== undefined && this.table.valueOfCounter(newest) === value) {
        this.writeInteger(INDEXED, 7, this.indexOfCounter(newest));
        return;
      }
      key = `${name}\0${value}`;
      const counter = this.counterByField.get(key);
      if (counter !== undefined) {
        this.writeInteger(INDEXED, 7, this.indexOfCounter(counter));
        return;
      }
    }
    let nameIndex = staticIndex;
    if (nameIndex === 0 && newest !== undefined) nameIndex = this.indexOfCounter(newest);
    // A field taking most of the table would flush everything that repeats, for a field that may not.
    const indexed = policy === INCREMENTAL && entrySize(name, value) * 4 <= this.table.maxSize * 3;
    if (indexed) this.writeInteger(LITERAL_INCREMENTAL, 6, nameIndex);
    else if (policy === NEVER_INDEXED) this.writeInteger(LITERAL_NEVER_INDEXED, 4, nameIndex);
    else {
      this.writeInteger(LITERAL_WITHOUT_INDEXING, 4, nameIndex);
      if (policy === WITHOUT_INDEXING) this.variesPerMessage = true;
    }
    if (nameIndex === 0) this.writeString(name);
    this.writeString(value);
    if (indexed) this.insert(name, value, key);
  }

  /** HPACK index of the live entry with insertion counter `counter`: the newest entry is index 62. */
  private indexOfCounter(counter: number): number {
    return STATIC_TABLE_LENGTH + this.table.insertCount - counter;
  }

  private insert(name: string, value: string, key: string): void {
    const counter = this.table.insertCount;
    this.table.add(name, value);
    const slot = counter & KEY_RING_MASK;
    if (this.ringKeys === NO_RING) {
      this.ringKeys = new Array<string>(KEY_RING_SIZE).fill('');
      this.ringNames = new Array<string>(KEY_RING_SIZE).fill('');
      this.counterByField = new Map();
      this.counterByName = new Map();
    }
    this.ringKeys[slot] = key;
    this.ringNames[slot] = name;
    this.counterByField.set(key, counter);
    this.counterByName.set(name, counter);
    this.forgetEvicted();
  }

  /** Drops map entries of fields the table evicted, unless a newer entry took the key over. */
  private forgetEvicted(): void {
    const oldest = this.table.oldestCounter;
    for (let counter = this.sweptCounter; counter < oldest; counter++) {
      const slot = counter & KEY_RING_MASK;
      const key = this.ringKeys[slot];
      if (this.counterByField.get(key) === counter) this.counterByField.delete(key);
      const name = this.ringNames[slot];
      if (this.counterByName.get(name) === counter) this.counterByName.delete(name);
      this.ringKeys[slot] = '';
      this.ringNames[slot] = '';
    }
    this.sweptCounter = oldest;
  }

  private writeSizeUpdates(): void {
    this.reserve(12);
    if (this.pendingMinSize < this.targetSize) {
      this.writeInteger(SIZE_UPDATE, 5, this.pendingMinSize);
      this.table.setMaxSize(this.pendingMinSize);
    }
    this.writeInteger(SIZE_UPDATE, 5, this.targetSize);
    this.table.setMaxSize(this.targetSize);
    this.forgetEvicted();
    this.pendingMinSize = -1;
  }

  /** String literal, Huffman-coded when that is shorter (RFC 7541 §5.2). Room was reserved by the caller. */
  private writeString(str: string): void {
    const huffmanLength = huffmanEncodedLength(str);
    if (huffmanLength < str.length) {
      this.writeInteger(0x80, 7, huffmanLength);
      this.pos = huffmanEncode(str, this.out, this.pos);
      return;
    }
    this.writeInteger(0x00, 7, str.length);
    this.writeRaw(str);
  }

  /** The octets of a latin1 string, as they are. Room was reserved by the caller, or is reserved here. */
  private writeRaw(str: string): void {
    if (this.pos + str.length > this.out.length) this.reserve(str.length);
    if (str.length > SHORT_STRING) {
      this.pos += this.out.latin1Write(str, this.pos);
      return;
    }
    const out = this.out;
    let pos = this.pos;
    for (let i = 0; i < str.length; i++) out[pos++] = str.charCodeAt(i);
    this.pos = pos;
  }

  private writeInteger(pattern: number, prefixBits: number, value: number): void {
    this.pos = writeInteger(this.out, this.pos, pattern, prefixBits, value);
  }

  /** Makes room for `bytes` more octets (an upper bound of what the next field takes). */
  private reserve(bytes: number): void {
    const needed = this.pos + bytes;
    if (needed <= this.out.length) return;
    let capacity = Math.max(this.out.length * 2, FIRST_OUTPUT_SIZE);
    while (capacity < needed) capacity *= 2;
    const next = Buffer.allocUnsafe(capacity) as Latin1Buffer;
    this.out.copy(next, 0, 0, this.pos);
    this.out = next;
  }
}

/**
 * Writes `value` as an integer with a `prefixBits`-bit prefix (RFC 7541 §5.1) at `offset`, or'ing `pattern` into the
 * first octet, and returns the offset after it. `out` must have room (at most 6 octets for values below 2^32).
 */
export function writeInteger(
  out: Uint8Array,
  offset: number,
  pattern: number,
  prefixBits: number,
  value: number,
): number {
  let pos = offset;
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out[pos++] = pattern | value;
    return pos;
  }
  out[pos++] = pattern | max;
  let rest = value - max;
  while (rest >= 0x80) {
    out[pos++] = (rest & 0x7f) | 0x80;
    rest = Math.floor(rest / 0x80);
  }
  out[pos++] = rest;
  return pos;
}
