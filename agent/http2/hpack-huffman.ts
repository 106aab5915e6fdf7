// HPACK Huffman code (RFC 7541 Appendix B, §5.2): the code table, an encoder and a byte-at-a-time table decoder.

/**
 * RFC 7541 Appendix B, symbols 0..256 (256 is EOS), as pairs: code (hex, aligned to the least significant bit),
 * length in bits. Transcribed from the RFC; the self-check below rejects a table that is not a complete prefix code.
 */
// biome-ignore format: spec table, kept in the RFC's row order
const CODE_TABLE = [
  0x1ff8, 13, 0x7fffd8, 23, 0xfffffe2, 28, 0xfffffe3, 28, // 0-3
  0xfffffe4, 28, 0xfffffe5, 28, 0xfffffe6, 28, 0xfffffe7, 28, // 4-7
  0xfffffe8, 28, 0xffffea, 24, 0x3ffffffc, 30, 0xfffffe9, 28, // 8-11
  0xfffffea, 28, 0x3ffffffd, 30, 0xfffffeb, 28, 0xfffffec, 28, // 12-15
  0xfffffed, 28, 0xfffffee, 28, 0xfffffef, 28, 0xffffff0, 28, // 16-19
  0xffffff1, 28, 0xffffff2, 28, 0x3ffffffe, 30, 0xffffff3, 28, // 20-23
  0xffffff4, 28, 0xffffff5, 28, 0xffffff6, 28, 0xffffff7, 28, // 24-27
  0xffffff8, 28, 0xffffff9, 28, 0xffffffa, 28, 0xffffffb, 28, // 28-31
  0x14, 6, 0x3f8, 10, 0x3f9, 10, 0xffa, 12, // ' ' ! " #
  0x1ff9, 13, 0x15, 6, 0xf8, 8, 0x7fa, 11, // $ % & '
  0x3fa, 10, 0x3fb, 10, 0xf9, 8, 0x7fb, 11, // ( ) * +
  0xfa, 8, 0x16, 6, 0x17, 6, 0x18, 6, // , - . /
  0x0, 5, 0x1, 5, 0x2, 5, 0x19, 6, // 0 1 2 3
  0x1a, 6, 0x1b, 6, 0x1c, 6, 0x1d, 6, // 4 5 6 7
  0x1e, 6, 0x1f, 6, 0x5c, 7, 0xfb, 8, // 8 9 : ;
  0x7ffc, 15, 0x20, 6, 0xffb, 12, 0x3fc, 10, // < = > ?
  0x1ffa, 13, 0x21, 6, 0x5d, 7, 0x5e, 7, // @ A B C
  0x5f, 7, 0x60, 7, 0x61, 7, 0x62, 7, // D E F G
  0x63, 7, 0x64, 7, 0x65, 7, 0x66, 7, // H I J K
  0x67, 7, 0x68, 7, 0x69, 7, 0x6a, 7, // L M N O
  0x6b, 7, 0x6c, 7, 0x6d, 7, 0x6e, 7, // P Q R S
  0x6f, 7, 0x70, 7, 0x71, 7, 0x72, 7, // T U V W
  0xfc, 8, 0x73, 7, 0xfd, 8, 0x1ffb, 13, // X Y Z [
  0x7fff0, 19, 0x1ffc, 13, 0x3ffc, 14, 0x22, 6, // \ ] ^ _
  0x7ffd, 15, 0x3, 5, 0x23, 6, 0x4, 5, // ` a b c
  0x24, 6, 0x5, 5, 0x25, 6, 0x26, 6, // d e f g
  0x27, 6, 0x6, 5, 0x74, 7, 0x75, 7, // h i j k
  0x28, 6, 0x29, 6, 0x2a, 6, 0x7, 5, // l m n o
  0x2b, 6, 0x76, 7, 0x2c, 6, 0x8, 5, // p q r s
  0x9, 5, 0x2d, 6, 0x77, 7, 0x78, 7, // t u v w
  0x79, 7, 0x7a, 7, 0x7b, 7, 0x7ffe, 15, // x y z {
  0x7fc, 11, 0x3ffd, 14, 0x1ffd, 13, 0xffffffc, 28, // | } ~ 127
  0xfffe6, 20, 0x3fffd2, 22, 0xfffe7, 20, 0xfffe8, 20, // 128-131
  0x3fffd3, 22, 0x3fffd4, 22, 0x3fffd5, 22, 0x7fffd9, 23, // 132-135
  0x3fffd6, 22, 0x7fffda, 23, 0x7fffdb, 23, 0x7fffdc, 23, // 136-139
  0x7fffdd, 23, 0x7fffde, 23, 0xffffeb, 24, 0x7fffdf, 23, // 140-143
  0xffffec, 24, 0xffffed, 24, 0x3fffd7, 22, 0x7fffe0, 23, // 144-147
  0xffffee, 24, 0x7fffe1, 23, 0x7fffe2, 23, 0x7fffe3, 23, // 148-151
  0x7fffe4, 23, 0x1fffdc, 21, 0x3fffd8, 22, 0x7fffe5, 23, // 152-155
  0x3fffd9, 22, 0x7fffe6, 23, 0x7fffe7, 23, 0xffffef, 24, // 156-159
  0x3fffda, 22, 0x1fffdd, 21, 0xfffe9, 20, 0x3fffdb, 22, // 160-163
  0x3fffdc, 22, 0x7fffe8, 23, 0x7fffe9, 23, 0x1fffde, 21, // 164-167
  0x7fffea, 23, 0x3fffdd, 22, 0x3fffde, 22, 0xfffff0, 24, // 168-171
  0x1fffdf, 21, 0x3fffdf, 22, 0x7fffeb, 23, 0x7fffec, 23, // 172-175
  0x1fffe0, 21, 0x1fffe1, 21, 0x3fffe0, 22, 0x1fffe2, 21, // 176-179
  0x7fffed, 23, 0x3fffe1, 22, 0x7fffee, 23, 0x7fffef, 23, // 180-183
  0xfffea, 20, 0x3fffe2, 22, 0x3fffe3, 22, 0x3fffe4, 22, // 184-187
  0x7ffff0, 23, 0x3fffe5, 22, 0x3fffe6, 22, 0x7ffff1, 23, // 188-191
  0x3ffffe0, 26, 0x3ffffe1, 26, 0xfffeb, 20, 0x7fff1, 19, // 192-195
  0x3fffe7, 22, 0x7ffff2, 23, 0x3fffe8, 22, 0x1ffffec, 25, // 196-199
  0x3ffffe2, 26, 0x3ffffe3, 26, 0x3ffffe4, 26, 0x7ffffde, 27, // 200-203
  0x7ffffdf, 27, 0x3ffffe5, 26, 0xfffff1, 24, 0x1ffffed, 25, // 204-207
  0x7fff2, 19, 0x1fffe3, 21, 0x3ffffe6, 26, 0x7ffffe0, 27, // 208-211
  0x7ffffe1, 27, 0x3ffffe7, 26, 0x7ffffe2, 27, 0xfffff2, 24, // 212-215
  0x1fffe4, 21, 0x1fffe5, 21, 0x3ffffe8, 26, 0x3ffffe9, 26, // 216-219
  0xffffffd, 28, 0x7ffffe3, 27, 0x7ffffe4, 27, 0x7ffffe5, 27, // 220-223
  0xfffec, 20, 0xfffff3, 24, 0xfffed, 20, 0x1fffe6, 21, // 224-227
  0x3fffe9, 22, 0x1fffe7, 21, 0x1fffe8, 21, 0x7ffff3, 23, // 228-231
  0x3fffea, 22, 0x3fffeb, 22, 0x1ffffee, 25, 0x1ffffef, 25, // 232-235
  0xfffff4, 24, 0xfffff5, 24, 0x3ffffea, 26, 0x7ffff4, 23, // 236-239
  0x3ffffeb, 26, 0x7ffffe6, 27, 0x3ffffec, 26, 0x3ffffed, 26, // 240-243
  0x7ffffe7, 27, 0x7ffffe8, 27, 0x7ffffe9, 27, 0x7ffffea, 27, // 244-247
  0x7ffffeb, 27, 0xffffffe, 28, 0x7ffffec, 27, 0x7ffffed, 27, // 248-251
  0x7ffffee, 27, 0x7ffffef, 27, 0x7fffff0, 27, 0x3ffffee, 26, // 252-255
  0x3fffffff, 30, // EOS (256)
];

const SYMBOL_COUNT = 257;
const EOS = 256;

/** Code of each symbol, right-aligned. */
export const HUFFMAN_CODES = new Uint32Array(SYMBOL_COUNT);
/** Length in bits of each symbol's code. */
export const HUFFMAN_LENGTHS = new Uint8Array(SYMBOL_COUNT);
for (let sym = 0; sym < SYMBOL_COUNT; sym++) {
  HUFFMAN_CODES[sym] = CODE_TABLE[2 * sym];
  HUFFMAN_LENGTHS[sym] = CODE_TABLE[2 * sym + 1];
}

/** Octets `str` takes when Huffman-encoded (each char is one latin1 octet). */
export function huffmanEncodedLength(str: string): number {
  let bits = 0;
  for (let i = 0; i < str.length; i++) bits += HUFFMAN_LENGTHS[str.charCodeAt(i) & 0xff];
  return (bits + 7) >>> 3;
}

/**
 * Huffman-encodes `str` into `out` at `offset` and returns the offset after it. The caller reserves
 * `huffmanEncodedLength(str)` octets. Bits are gathered in a 32-bit accumulator that holds fewer than 8 pending bits
 * between symbols; codes too long to fit beside them are added in two halves.
 */
export function huffmanEncode(str: string, out: Uint8Array, offset: number): number {
  let pos = offset;
  let acc = 0;
  let pending = 0;
  for (let i = 0; i < str.length; i++) {
    const sym = str.charCodeAt(i) & 0xff;
    const code = HUFFMAN_CODES[sym];
    const length = HUFFMAN_LENGTHS[sym];
    if (pending + length > 31) {
      const high = length - 16;
      acc = (acc << high) | (code >>> 16);
      pending += high;
      while (pending >= 8) {
        pending -= 8;
        out[pos++] = acc >>> pending;
      }
      acc = ((acc & ((1 << pending) - 1)) << 16) | (code & 0xffff);
      pending += 16;
    } else {
      acc = (acc << length) | code;
      pending += length;
    }
    while (pending >= 8) {
      pending -= 8;
      out[pos++] = acc >>> pending;
    }
    acc &= (1 << pending) - 1;
  }
  // Pad with the most significant bits of EOS (all ones), RFC 7541 §5.2.
  if (pending > 0) out[pos++] = (acc << (8 - pending)) | (0xff >>> pending);
  return pos;
}

/** Negative results of `huffmanDecode`. */
export const HuffmanFailure = {
  PADDING_TOO_LONG: -1,
  PADDING_NOT_EOS_PREFIX: -2,
  EOS_IN_STRING: -3,
} as const;

// Decoder transition table. The code is a complete prefix code over 257 leaves, so its tree has 256 internal nodes;
// a decoder state is one internal node (0 = root, nothing pending). For each state and input octet one entry says
// where the walk ends and which symbols it completed (at most two: the shortest code has 5 bits). Built once at load
// so decoding costs one table read per input octet instead of one branch per bit.
const NEXT_STATE_MASK = 0xff;
const SYMBOL1_SHIFT = 8;
const SYMBOL2_SHIFT = 16;
const COUNT_SHIFT = 24;
/** The state after this octet is at a valid end: the pending bits are at most 7 and all ones (an EOS prefix). */
const ACCEPTS = 1 << 26;
/** The walk completed the EOS symbol. */
const HITS_EOS = 1 << 27;
/** The pending bits contain a zero, so they cannot be padding. */
const NOT_EOS_PREFIX = 1 << 28;

const DECODE_TABLE = buildDecodeTable();

function buildDecodeTable(): Uint32Array {
  // Tree nodes: children[2 * node + bit] is an internal node id, or ~symbol (negative) for a leaf, or 0 when unset
  // (the root is never a child, so 0 is free to mean "unset").
  const children = new Int32Array(2 * 256);
  let nodeCount = 1;
  let kraft = 0;
  for (let sym = 0; sym < SYMBOL_COUNT; sym++) {
    const code = HUFFMAN_CODES[sym];
    const length = HUFFMAN_LENGTHS[sym];
    kraft += 2 ** -length;
    let node = 0;
    for (let bit = length - 1; bit > 0; bit--) {
      const slot = 2 * node + ((code >>> bit) & 1);
      if (children[slot] < 0) throw new Error(`huffman table: code of ${sym} extends another code`);
      if (children[slot] === 0) {
        if (nodeCount === 256) throw new Error('huffman table: too many internal nodes');
        children[slot] = nodeCount++;
      }
      node = children[slot];
    }
    const slot = 2 * node + (code & 1);
    if (children[slot] !== 0) throw new Error(`huffman table: code of ${sym} collides`);
    children[slot] = ~sym;
  }
  if (kraft !== 1 || nodeCount !== 256) throw new Error('huffman table: not a complete prefix code');

  // Per state: how many pending bits it stands for, and whether they are all ones.
  const depth = new Uint8Array(256);
  const allOnes = new Uint8Array(256);
  allOnes[0] = 1;
  for (let node = 0; node < 256; node++) {
    for (let bit = 0; bit < 2; bit++) {
      const child = children[2 * node + bit];
      if (child > 0) {
        depth[child] = depth[node] + 1;
        allOnes[child] = allOnes[node] & bit;
      }
    }
  }

  // First what each 4-bit nibble does from each state (at most one symbol: the shortest code has 5 bits), walking
  // the tree bit by bit; then each octet as two nibbles, which costs far less at load than walking 8 bits per entry.
  const nibbles = new Uint32Array(256 * 16);
  for (let state = 0; state < 256; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let entry = 0;
      for (let bit = 3; bit >= 0; bit--) {
        const child = children[2 * node + ((nibble >>> bit) & 1)];
        if (child >= 0) {
          node = child;
          continue;
        }
        entry |= ~child === EOS ? HITS_EOS : (~child << SYMBOL1_SHIFT) | (1 << COUNT_SHIFT);
        node = 0;
      }
      entry |= node;
      if (allOnes[node] === 0) entry |= NOT_EOS_PREFIX;
      else if (depth[node] <= 7) entry |= ACCEPTS;
      nibbles[state * 16 + nibble] = entry;
    }
  }
  const table = new Uint32Array(256 * 256);
  for (let state = 0; state < 256; state++) {
    for (let octet = 0; octet < 256; octet++) {
      const high = nibbles[state * 16 + (octet >>> 4)];
      const low = nibbles[(high & NEXT_STATE_MASK) * 16 + (octet & 15)];
      const highCount = (high >>> COUNT_SHIFT) & 3;
      const lowCount = (low >>> COUNT_SHIFT) & 3;
      let entry = (low & (NEXT_STATE_MASK | ACCEPTS | NOT_EOS_PREFIX)) | ((high | low) & HITS_EOS);
      entry |= (highCount + lowCount) << COUNT_SHIFT;
      if (highCount !== 0) {
        entry |= high & (0xff << SYMBOL1_SHIFT);
        if (lowCount !== 0) entry |= ((low >>> SYMBOL1_SHIFT) & 0xff) << SYMBOL2_SHIFT;
      } else if (lowCount !== 0) {
        entry |= low & (0xff << SYMBOL1_SHIFT);
      }
      table[state * 256 + octet] = entry >>> 0;
    }
  }
  return table;
}

/**
 * Decodes the Huffman string in `src[start, end)` into `out` from index 0 and returns the decoded length, or a
 * negative `HuffmanFailure`. `out` must hold `huffmanMaxDecodedLength(end - start)` octets. Returning a code instead
 * of throwing keeps this module free of the decoder's error type and the loop free of throw sites.
 */
export function huffmanDecode(src: Uint8Array, start: number, end: number, out: Uint8Array): number {
  let state = 0;
  let length = 0;
  let entry = ACCEPTS;
  for (let i = start; i < end; i++) {
    entry = DECODE_TABLE[(state << 8) | src[i]];
    if ((entry & HITS_EOS) !== 0) return HuffmanFailure.EOS_IN_STRING;
    const count = (entry >>> COUNT_SHIFT) & 3;
    if (count !== 0) {
      out[length++] = entry >>> SYMBOL1_SHIFT; // the Uint8Array store keeps the low 8 bits
      if (count === 2) out[length++] = entry >>> SYMBOL2_SHIFT;
    }
    state = entry & NEXT_STATE_MASK;
  }
  if ((entry & ACCEPTS) !== 0) return length;
  return (entry & NOT_EOS_PREFIX) !== 0 ? HuffmanFailure.PADDING_NOT_EOS_PREFIX : HuffmanFailure.PADDING_TOO_LONG;
}

/** Upper bound of the decoded length of `encodedLength` Huffman octets (the shortest code has 5 bits). */
export function huffmanMaxDecodedLength(encodedLength: number): number {
  return Math.floor((encodedLength * 8) / 5);
}
