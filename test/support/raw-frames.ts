// Test-side HTTP/2 frames, written apart from agent/http2 so tests cross-check it: builders, a literal-only HPACK encoder, and an output parser.

import type { HpackDecoder } from '../../agent/http2/hpack-decoder.ts';

/** Frame types, flags and settings of RFC 9113, spelled out again here on purpose. */
export const T = {
  DATA: 0,
  HEADERS: 1,
  PRIORITY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PUSH_PROMISE: 5,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const;
export const F = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;
export const S = {
  HEADER_TABLE_SIZE: 1,
  ENABLE_PUSH: 2,
  MAX_CONCURRENT_STREAMS: 3,
  INITIAL_WINDOW_SIZE: 4,
  MAX_FRAME_SIZE: 5,
  MAX_HEADER_LIST_SIZE: 6,
} as const;

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** A gRPC unary request head. */
export const REQUEST: readonly string[] = [
  ':method', 'POST', ':scheme', 'http', ':path', '/echo.Echo/Say', ':authority', 'echo:50051',
  'content-type', 'application/grpc', 'te', 'trailers',
];

/** Any frame. With `padding`, PADDED is set and the payload becomes [pad length][payload][padding zeros]. */
export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0), padding?: number): Buffer {
  let body = payload;
  if (padding !== undefined) {
    flags |= F.PADDED;
    body = Buffer.concat([Buffer.from([padding]), payload, Buffer.alloc(padding)]);
  }
  const header = Buffer.alloc(9);
  header.writeUIntBE(body.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId >>> 0, 5);
  return Buffer.concat([header, body]);
}

export function settingsPayload(pairs: ReadonlyArray<readonly [number, number]>): Buffer {
  const payload = Buffer.alloc(pairs.length * 6);
  pairs.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, i * 6);
    payload.writeUInt32BE(value >>> 0, i * 6 + 2);
  });
  return payload;
}

export function settings(pairs: ReadonlyArray<readonly [number, number]> = []): Buffer {
  return frame(T.SETTINGS, 0, 0, settingsPayload(pairs));
}

export function settingsAck(): Buffer {
  return frame(T.SETTINGS, F.ACK, 0);
}

/** The client's connection preface: magic, SETTINGS, and an ACK of the server's SETTINGS. */
export function clientPreface(pairs: ReadonlyArray<readonly [number, number]> = []): Buffer {
  return Buffer.concat([PREFACE, settings(pairs), settingsAck()]);
}

export function ping(opaque: string | Buffer, ack = false): Buffer {
  return frame(T.PING, ack ? F.ACK : 0, 0, typeof opaque === 'string' ? Buffer.from(opaque, 'latin1') : opaque);
}

export function windowUpdate(streamId: number, increment: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(increment >>> 0);
  return frame(T.WINDOW_UPDATE, 0, streamId, payload);
}

export function rstStream(streamId: number, code: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(code >>> 0);
  return frame(T.RST_STREAM, 0, streamId, payload);
}

export function goaway(lastStreamId: number, code: number, debug = ''): Buffer {
  const payload = Buffer.alloc(8 + Buffer.byteLength(debug));
  payload.writeUInt32BE(lastStreamId >>> 0, 0);
  payload.writeUInt32BE(code >>> 0, 4);
  payload.write(debug, 8);
  return frame(T.GOAWAY, 0, 0, payload);
}

export function priorityFields(dependency: number, weight = 16, exclusive = false): Buffer {
  const fields = Buffer.alloc(5);
  fields.writeUInt32BE(((exclusive ? 0x80000000 : 0) | dependency) >>> 0, 0);
  fields[4] = weight - 1;
  return fields;
}

export function priority(streamId: number, dependency: number, weight = 16): Buffer {
  return frame(T.PRIORITY, 0, streamId, priorityFields(dependency, weight));
}

export interface DataOptions {
  endStream?: boolean;
  padding?: number;
}

export function data(streamId: number, payload: Buffer | string, { endStream = false, padding }: DataOptions = {}): Buffer {
  const bytes = typeof payload === 'string' ? Buffer.from(payload) : payload;
  return frame(T.DATA, endStream ? F.END_STREAM : 0, streamId, bytes, padding);
}

export interface HeadersOptions {
  endStream?: boolean;
  endHeaders?: boolean;
  padding?: number;
  /** Adds the PRIORITY flag and fields with this dependency. */
  dependency?: number;
}

/** HEADERS carrying `block`, or the literal encoding of a header list. */
export function headers(streamId: number, list: readonly string[] | Buffer, options: HeadersOptions = {}): Buffer {
  const { endStream = false, endHeaders = true, padding, dependency } = options;
  let block = Buffer.isBuffer(list) ? list : hpackLiterals(list);
  let flags = (endStream ? F.END_STREAM : 0) | (endHeaders ? F.END_HEADERS : 0);
  if (dependency !== undefined) {
    flags |= F.PRIORITY;
    block = Buffer.concat([priorityFields(dependency), block]);
  }
  return frame(T.HEADERS, flags, streamId, block, padding);
}

export function continuation(streamId: number, block: Buffer, endHeaders = true): Buffer {
  return frame(T.CONTINUATION, endHeaders ? F.END_HEADERS : 0, streamId, block);
}

/** A request on `streamId` (REQUEST plus `extra` fields), END_STREAM by default. */
export function request(streamId: number, endStream = true, extra: readonly string[] = []): Buffer {
  return headers(streamId, [...REQUEST, ...extra], { endStream });
}

// ---- HPACK, literal representations only (RFC 7541 §5.1, §5.2, §6.2.2) ----

export function hpackInteger(value: number, prefixBits: number, firstOctetFlags = 0): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [firstOctetFlags | value];
  const octets = [firstOctetFlags | max];
  let rest = value - max;
  while (rest >= 128) {
    octets.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  octets.push(rest);
  return octets;
}

function hpackString(text: string): Buffer {
  const bytes = Buffer.from(text, 'latin1');
  return Buffer.concat([Buffer.from(hpackInteger(bytes.length, 7)), bytes]);
}

/** Every field as "literal without indexing, new name", no Huffman: decodable by any decoder, no table state. */
export function hpackLiterals(list: readonly string[]): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < list.length; i += 2) parts.push(Buffer.from([0x00]), hpackString(list[i]), hpackString(list[i + 1]));
  return Buffer.concat(parts);
}

// ---- parsing what the connection wrote ----

export interface RawFrame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/** Splits output into frames; output must consist of whole frames (the connection never writes half a frame). */
export function parseFrames(bytes: Buffer, maxFrameSize = 16_777_215): RawFrame[] {
  const frames: RawFrame[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (bytes.length - at < 9) throw new Error(`output ends with ${bytes.length - at} bytes of a frame header`);
    const length = bytes.readUIntBE(at, 3);
    if (length > maxFrameSize) throw new Error(`output frame of ${length} bytes exceeds ${maxFrameSize}`);
    if (bytes.length - at - 9 < length) throw new Error(`output ends inside a frame of ${length} bytes`);
    frames.push({
      type: bytes[at + 3],
      flags: bytes[at + 4],
      streamId: bytes.readUInt32BE(at + 5) & 0x7fffffff,
      payload: Buffer.from(bytes.subarray(at + 9, at + 9 + length)),
    });
    at += 9 + length;
  }
  return frames;
}

export interface GoawayInfo {
  lastStreamId: number;
  code: number;
  debug: string;
}

export function goaways(frames: readonly RawFrame[]): GoawayInfo[] {
  return frames
    .filter((f) => f.type === T.GOAWAY)
    .map((f) => ({
      lastStreamId: f.payload.readUInt32BE(0) & 0x7fffffff,
      code: f.payload.readUInt32BE(4),
      debug: f.payload.subarray(8).toString('latin1'),
    }));
}

export function resets(frames: readonly RawFrame[]): Array<{ stream: number; code: number }> {
  return frames.filter((f) => f.type === T.RST_STREAM).map((f) => ({ stream: f.streamId, code: f.payload.readUInt32BE(0) }));
}

export function settingsAcks(frames: readonly RawFrame[]): number {
  return frames.filter((f) => f.type === T.SETTINGS && (f.flags & F.ACK) !== 0).length;
}

export function pings(frames: readonly RawFrame[], ack: boolean): string[] {
  return frames
    .filter((f) => f.type === T.PING && ((f.flags & F.ACK) !== 0) === ack)
    .map((f) => f.payload.toString('latin1'));
}

export function windowUpdates(frames: readonly RawFrame[], streamId: number): number[] {
  return frames.filter((f) => f.type === T.WINDOW_UPDATE && f.streamId === streamId).map((f) => f.payload.readUInt32BE(0) & 0x7fffffff);
}

/** DATA payload bytes (padding removed) sent on `streamId`. */
export function dataBytes(frames: readonly RawFrame[], streamId: number): number {
  let total = 0;
  for (const f of frames) {
    if (f.type !== T.DATA || f.streamId !== streamId) continue;
    total += (f.flags & F.PADDED) !== 0 ? f.payload.length - 1 - f.payload[0] : f.payload.length;
  }
  return total;
}

export interface HeaderBlock {
  streamId: number;
  headers: readonly string[];
  endStream: boolean;
}

/**
 * Decodes HEADERS(+CONTINUATION) blocks, in order, with a decoder that sees every block of the connection exactly
 * once (its dynamic table follows the encoder's). Starts at `from`; returns the blocks and where to resume.
 */
export function decodeHeaderBlocks(
  frames: readonly RawFrame[],
  decoder: HpackDecoder,
  from = 0,
): { blocks: HeaderBlock[]; next: number } {
  const blocks: HeaderBlock[] = [];
  let i = from;
  for (; i < frames.length; i++) {
    const f = frames[i];
    if (f.type !== T.HEADERS) continue;
    let start = 0;
    let end = f.payload.length;
    if ((f.flags & F.PADDED) !== 0) {
      start = 1;
      end -= f.payload[0];
    }
    if ((f.flags & F.PRIORITY) !== 0) start += 5;
    const fragments = [f.payload.subarray(start, end)];
    let last = f;
    while ((last.flags & F.END_HEADERS) === 0) {
      if (i + 1 >= frames.length) return { blocks, next: i };
      last = frames[++i];
      if (last.type !== T.CONTINUATION || last.streamId !== f.streamId) throw new Error('header block interleaved in output');
      fragments.push(last.payload);
    }
    const list = decoder.decode(Buffer.concat(fragments));
    if (list === null) throw new Error('output header list too large for the test decoder');
    blocks.push({ streamId: f.streamId, headers: list, endStream: (f.flags & F.END_STREAM) !== 0 });
  }
  return { blocks, next: i };
}
