// HPACK decoder (RFC 7541 §3, §6): a header block → a flat [name, value, ...] list, strict about every error.

import { DynamicTable, ENTRY_OVERHEAD } from './hpack-dynamic-table.ts';
import { HuffmanFailure, huffmanDecode, huffmanMaxDecodedLength } from './hpack-huffman.ts';
import { MAX_REPEAT_OCTETS, RepeatedBlocks } from './hpack-repeats.ts';
import { STATIC_NAMES, STATIC_TABLE_LENGTH, STATIC_VALUES } from './hpack-static-table.ts';

/** Why a header block could not be decoded; each one is a COMPRESSION_ERROR for the connection. */
export type HpackErrorReason =
  | 'index-zero'
  | 'index-out-of-range'
  | 'integer-overflow'
  | 'truncated'
  | 'string-past-end'
  | 'size-update-too-large'
  | 'size-update-not-first'
  | 'size-update-missing'
  | 'huffman-padding-too-long'
  | 'huffman-padding-not-eos'
  | 'huffman-eos';

/** A compression error (RFC 7541 §2.1, §5, §6). After one the decoder's state is undefined: close the connection. */
export class HpackError extends Error {
  readonly reason: HpackErrorReason;

  constructor(reason: HpackErrorReason, detail = '') {
    super(detail === '' ? `HPACK ${reason}` : `HPACK ${reason}: ${detail}`);
    this.name = 'HpackError';
    this.reason = reason;
  }
}

/** Integers above this are rejected (no length, index or size we accept comes close). */
const MAX_INTEGER = 2 ** 31 - 1;
/** A multiplier past this means a sixth continuation octet: more than 35 bits, an overlong encoding. */
const MAX_MULTIPLIER = 2 ** 28;
/** Largest Huffman scratch buffer a decoder keeps between strings. */
const MAX_KEPT_SCRATCH = 64 * 1024;

// Buffer's own latin1 slice: what toString('latin1', start, end) calls after normalising its arguments.
type Latin1Buffer = Buffer & { latin1Slice(start: number, end: number): string };

const EMPTY = Buffer.alloc(0) as Latin1Buffer;

/** The fields of the block being decoded, shared by every decoder of the process (one event loop, and a decode
 *  never nests) so that an idle connection holds no list. It keeps the last block's strings alive until the next
 *  block overwrites them: at most one header list's worth (maxHeaderListSize) for the whole process. */
const FIELDS: string[] = [];

export class HpackDecoder {
  /** The dynamic table, exposed read-only in spirit for tests and debugging. */
  readonly table: DynamicTable;
  /** Our advertised SETTINGS_HEADER_TABLE_SIZE: the largest size update the peer may send. */
  private limit: number;
  private readonly maxHeaderListSize: number;
  /** We lowered the limit below the table's size: the next block must start with a size update (RFC 7541 §4.2). */
  private sizeUpdateRequired = false;
  // The block being decoded and the read position, kept on the instance so the readers need no closures.
  private block: Latin1Buffer = EMPTY;
  private readonly cursor: HpackCursor = { pos: 0, end: 0 };
  /**
   * Huffman output; reused across strings and blocks, grown to the longest string seen. Allocated by the first Huffman
   * string (at least 256 octets): an idle connection holds none (a slice of Node's shared slab would pin the slab).
   */
  private scratch: Latin1Buffer = EMPTY;
  /** Blocks the peer may send again byte for byte, and what they decoded to. */
  private readonly repeats = new RepeatedBlocks();

  constructor(maxTableSize = 4096, maxHeaderListSize = 65536) {
    this.limit = maxTableSize;
    this.maxHeaderListSize = maxHeaderListSize;
    this.table = new DynamicTable(maxTableSize);
  }

  /**
   * Our SETTINGS_HEADER_TABLE_SIZE changed (call it once the peer acknowledged the SETTINGS frame). A smaller value
   * than the table's current maximum obliges the peer to begin its next block with a size update.
   */
  setMaxTableSize(n: number): void {
    this.limit = n;
    if (n < this.table.maxSize) this.sizeUpdateRequired = true;
  }

  /**
   * Decodes one complete header block. Returns null when the decoded header list is larger than
   * maxHeaderListSize (RFC 9113 §6.5.2 sizes); the whole block is still processed so the dynamic table stays in step
   * with the peer's encoder. Throws HpackError on any compression error, and nothing else.
   */
  decode(block: Uint8Array): readonly string[] | null {
    const buf = Buffer.isBuffer(block) ? block : Buffer.from(block.buffer, block.byteOffset, block.byteLength);
    return this.decodeRange(buf, 0, buf.length);
  }

  /**
   * decode() of the block `buf[start, end)`, read in place. A block that repeats one of the last few byte for byte,
   * on a table those did not change, gives the list they gave: the same array, which nobody may modify.
   */
  decodeRange(buf: Buffer, start: number, end: number): readonly string[] | null {
    const table = this.table;
    const generation = table.generation;
    const short = end - start <= MAX_REPEAT_OCTETS;
    if (short && !this.sizeUpdateRequired) {
      const repeated = this.repeats.find(buf, start, end, generation);
      if (repeated !== null) return repeated;
    }
    this.block = buf as Latin1Buffer;
    this.cursor.pos = start;
    this.cursor.end = end;
    let list: readonly string[] | null;
    try {
      list = this.decodeBlock();
    } finally {
      this.block = EMPTY; // do not keep the peer's bytes alive between blocks
    }
    if (short && list !== null && table.generation === generation) this.repeats.remember(buf, start, end, generation, list);
    return list;
  }

  private decodeBlock(): string[] | null {
    // Fields are collected in a list reused by every block and copied out at the exact size: one allocation per
    // block, where pushing to a new array grew it two or three times.
    const fields = FIELDS;
    let count = 0;
    const table = this.table;
    let listSize = 0;
    let tooLarge = false;
    let atStart = true;
    while (this.cursor.pos < this.cursor.end) {
      const octet = this.block[this.cursor.pos];
      if ((octet & 0xe0) === 0x20) {
        // Dynamic table size update (§6.3): only before the first field of a block (§4.2).
        if (!atStart) throw new HpackError('size-update-not-first');
        const size = readInteger(this.block, this.cursor, 5);
        if (size > this.limit) throw new HpackError('size-update-too-large', `${size} > ${this.limit}`);
        table.setMaxSize(size);
        this.sizeUpdateRequired = false;
        continue;
      }
      if (atStart) {
        if (this.sizeUpdateRequired) throw new HpackError('size-update-missing');
        atStart = false;
      }
      let name: string;
      let value: string;
      if (octet >= 0x80) {
        // Indexed field (§6.1).
        const index = readInteger(this.block, this.cursor, 7);
        if (index <= STATIC_TABLE_LENGTH) {
          if (index === 0) throw new HpackError('index-zero');
          name = STATIC_NAMES[index];
          value = STATIC_VALUES[index];
        } else {
          const position = index - STATIC_TABLE_LENGTH - 1;
          if (position >= table.length) throw new HpackError('index-out-of-range', `${index}`);
          name = table.nameAt(position);
          value = table.valueAt(position);
        }
      } else if (octet >= 0x40) {
        // Literal with incremental indexing (§6.2.1).
        name = this.readName(6);
        value = this.readString();
        table.add(name, value);
      } else {
        // Literal without indexing (0000xxxx) or never indexed (0001xxxx) (§6.2.2, §6.2.3): same layout.
        name = this.readName(4);
        value = this.readString();
      }
      listSize += name.length + value.length + ENTRY_OVERHEAD;
      if (listSize > this.maxHeaderListSize) tooLarge = true;
      else {
        fields[count++] = name;
        fields[count++] = value;
      }
    }
    return tooLarge ? null : fields.slice(0, count);
  }

  /** The name of a literal field: an index into either table, or 0 followed by a string literal. */
  private readName(prefixBits: number): string {
    const index = readInteger(this.block, this.cursor, prefixBits);
    if (index === 0) return this.readString();
    if (index <= STATIC_TABLE_LENGTH) return STATIC_NAMES[index];
    const position = index - STATIC_TABLE_LENGTH - 1;
    if (position >= this.table.length) throw new HpackError('index-out-of-range', `${index}`);
    return this.table.nameAt(position);
  }

  /** String literal (§5.2). The length is checked against the bytes left before anything is allocated. */
  private readString(): string {
    const block = this.block;
    const cursor = this.cursor;
    if (cursor.pos >= cursor.end) throw new HpackError('truncated', 'string literal expected');
    const huffman = block[cursor.pos] >= 0x80;
    const length = readInteger(block, cursor, 7);
    const start = cursor.pos;
    if (length > cursor.end - start) throw new HpackError('string-past-end', `${length} > ${cursor.end - start}`);
    cursor.pos = start + length;
    if (length === 0) return '';
    if (!huffman) return block.latin1Slice(start, cursor.pos);
    const capacity = huffmanMaxDecodedLength(length);
    let out = this.scratch;
    if (out.length < capacity) {
      // Sized from a length already checked against the block; only moderate sizes are kept for reuse, so one huge
      // string does not pin a huge buffer to the connection.
      out = Buffer.allocUnsafe(Math.max(capacity, out.length * 2, 256)) as Latin1Buffer;
      if (out.length <= MAX_KEPT_SCRATCH) this.scratch = out;
    }
    const decoded = huffmanDecode(block, start, cursor.pos, out);
    if (decoded < 0) throw huffmanError(decoded);
    return out.latin1Slice(0, decoded);
  }
}

/** A read position in a block and the block's end. */
export interface HpackCursor {
  pos: number;
  end: number;
}

/**
 * Reads an integer with a `prefixBits`-bit prefix (RFC 7541 §5.1) at `cursor.pos`, which must be below `cursor.end`,
 * and advances the cursor past it.
 */
export function readInteger(src: Uint8Array, cursor: HpackCursor, prefixBits: number): number {
  const mask = (1 << prefixBits) - 1;
  let value = src[cursor.pos++] & mask;
  if (value < mask) return value;
  let multiplier = 1;
  for (;;) {
    if (cursor.pos >= cursor.end) throw new HpackError('truncated', 'inside an integer');
    const octet = src[cursor.pos++];
    value += (octet & 0x7f) * multiplier;
    if (value > MAX_INTEGER) throw new HpackError('integer-overflow');
    if (octet < 0x80) return value;
    multiplier *= 128;
    if (multiplier > MAX_MULTIPLIER) throw new HpackError('integer-overflow', 'too many continuation octets');
  }
}

function huffmanError(failure: number): HpackError {
  if (failure === HuffmanFailure.EOS_IN_STRING) return new HpackError('huffman-eos');
  if (failure === HuffmanFailure.PADDING_TOO_LONG) return new HpackError('huffman-padding-too-long');
  return new HpackError('huffman-padding-not-eos');
}
