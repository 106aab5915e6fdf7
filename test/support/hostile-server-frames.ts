// The frames of a hostile or buggy HTTP/2 server, for fuzzing our client role: plausible responses, trailers and
// control frames about the client's streams, random frames of every type, and mutations of a valid conversation.

import type { FuzzRandom } from './fuzz-random.ts';
import {
  REQUEST,
  S,
  T,
  continuation,
  data,
  frame,
  goaway,
  headers,
  hpackLiterals,
  ping,
  priority,
  rstStream,
  settings,
  settingsAck,
  windowUpdate,
} from './raw-frames.ts';

/** The payload of the connection's own PINGs (agent/http2/connection.ts): an ACK of it reaches ping()'s callback. */
export const OWN_PING = 'mlping00';
const RESPONSE: readonly string[] = [':status', '200', 'content-type', 'application/grpc'];
export const MAX_WINDOW = 2 ** 31 - 1;

/** Ids a server's frames name: mostly our streams (odd), sometimes 0, server-initiated (even), idle or with the reserved bit. */
function streamId(rng: FuzzRandom, opened: number): number {
  const r = rng.int(20);
  if (r < 3) return 0;
  if (r < 14) return 1 + 2 * rng.int(Math.max(1, opened));
  if (r < 16) return 2 + 2 * rng.int(8);
  if (r < 17) return 1 + 2 * (opened + rng.int(4));
  if (r < 19) return rng.next() & 0x7fffffff;
  return (0x80000000 | (1 + 2 * rng.int(Math.max(1, opened)))) >>> 0;
}

/** A response, trailers, or something a response must not be. */
function responseBlock(rng: FuzzRandom): Buffer {
  const r = rng.int(10);
  if (r === 0) return rng.bytes(rng.int(40));
  if (r === 1) return Buffer.from([0x88]); // :status 200 from the static table
  if (r === 2) return hpackLiterals(['grpc-status', rng.pick(['0', '14', '', 'x'])]);
  if (r === 3) return hpackLiterals([':status', rng.pick(['100', '103', '200', '20', '600', 'abc', '204']), ...(rng.chance(0.5) ? ['x-a', '1'] : [])]);
  const extra = rng.chance(0.4)
    ? [rng.pick(['content-length', 'x-a', 'X-B', ':path', 'connection', 'te', ':status']), rng.pick(['0', '3', '', 'trailers', '200', 'v'])]
    : [];
  return hpackLiterals([...RESPONSE, ...extra]);
}

/** A frame of any type that looks plausible for a server: right-ish lengths, random flags, ids and values. */
export function randomFrame(rng: FuzzRandom, opened: number): Buffer {
  const type = rng.chance(0.06) ? 10 + rng.int(246) : rng.int(10);
  const flags = rng.chance(0.4) ? rng.next() & 0xff : rng.pick([0, 1, 4, 5, 8, 0x20, 0x25]);
  const id = streamId(rng, opened);
  const wrongLength = rng.chance(0.05);
  let payload: Buffer;
  switch (type) {
    case T.DATA:
      payload = rng.bytes(rng.int(400));
      break;
    case T.HEADERS:
    case T.CONTINUATION:
      payload = responseBlock(rng);
      break;
    case T.PUSH_PROMISE: {
      const promised = Buffer.alloc(4);
      promised.writeUInt32BE(2 + 2 * rng.int(8));
      payload = Buffer.concat([promised, hpackLiterals(REQUEST)]);
      break;
    }
    case T.PRIORITY:
      payload = rng.bytes(wrongLength ? rng.int(8) : 5);
      break;
    case T.SETTINGS:
      return frame(T.SETTINGS, rng.chance(0.2) ? 1 : 0, rng.chance(0.95) ? 0 : id, wrongLength ? rng.bytes(rng.int(13)) : randomSettings(rng).subarray(9));
    case T.PING:
      payload = wrongLength ? rng.bytes(rng.int(12)) : rng.chance(0.3) ? Buffer.from(OWN_PING, 'latin1') : rng.bytes(8);
      break;
    case T.GOAWAY:
      payload = Buffer.concat([goaway(goawayLastId(rng, opened), rng.int(16)).subarray(9, wrongLength ? 9 + rng.int(8) : 17), rng.bytes(rng.int(10))]);
      break;
    case T.RST_STREAM:
    case T.WINDOW_UPDATE: {
      payload = Buffer.alloc(4);
      payload.writeUInt32BE(rng.pick([0, 1, 7, 8, 1000, 65_535, MAX_WINDOW, 2 ** 31, rng.next()]) >>> 0);
      if (wrongLength) payload = rng.bytes(rng.int(8));
      break;
    }
    default:
      payload = rng.bytes(rng.int(64));
  }
  if (rng.chance(0.004)) payload = Buffer.alloc(16_385);
  return frame(type, flags, id, payload);
}

function randomSettings(rng: FuzzRandom): Buffer {
  const pairs: Array<[number, number]> = [];
  for (let n = rng.int(4); n > 0; n--) {
    const id = rng.chance(0.9) ? 1 + rng.int(6) : rng.int(0x10000);
    pairs.push([id, rng.pick([0, 1, 2, 100, 16_383, 16_384, 65_535, 1 << 20, MAX_WINDOW, 2 ** 31, 2 ** 24, rng.next()])]);
  }
  return settings(pairs);
}

function goawayLastId(rng: FuzzRandom, opened: number): number {
  return rng.pick([0, 1, 2 * rng.int(opened + 1), 1 + 2 * rng.int(opened + 1), MAX_WINDOW, 0x80000001, rng.next()]) >>> 0;
}

/** A frame a well-behaved (or almost) server could send next about one of our streams, or about the connection. */
function plausibleFrame(rng: FuzzRandom, opened: number, answered: Set<number>): Buffer {
  const id = 1 + 2 * rng.int(Math.max(1, opened));
  const r = rng.int(24);
  if (r < 6 || !answered.has(id)) {
    // An informational head first, now and then (with END_STREAM it is malformed: RFC 9113 §8.1).
    if (rng.chance(0.1)) return headers(id, [':status', rng.pick(['100', '103'])], { endStream: rng.chance(0.3) });
    answered.add(id);
    if (rng.chance(0.15)) {
      const block = hpackLiterals(RESPONSE);
      const cut = 1 + rng.int(block.length - 1);
      return Buffer.concat([headers(id, block.subarray(0, cut), { endHeaders: false }), continuation(id, block.subarray(cut))]);
    }
    const trailersOnly = rng.chance(0.2);
    return headers(id, trailersOnly ? [...RESPONSE, 'grpc-status', '0'] : RESPONSE, { endStream: trailersOnly, padding: rng.chance(0.1) ? rng.int(20) : undefined });
  }
  if (r < 12) return data(id, rng.bytes(rng.int(rng.chance(0.1) ? 16_384 : 200)), { endStream: rng.chance(0.2), padding: rng.chance(0.2) ? rng.int(30) : undefined });
  if (r < 15) return headers(id, ['grpc-status', rng.pick(['0', '2', '13'])], { endStream: rng.chance(0.9) });
  if (r < 17) return windowUpdate(rng.chance(0.5) ? 0 : id, rng.chance(0.1) ? MAX_WINDOW : 1 + rng.int(100_000));
  if (r === 17) return rstStream(id, rng.int(14));
  if (r === 18) return ping(rng.chance(0.5) ? OWN_PING : 'fuzzfuzz', rng.chance(0.5));
  if (r === 19) return goaway(goawayLastId(rng, opened), rng.pick([0, 0, 2, 11]));
  if (r === 20) return settings([[S.INITIAL_WINDOW_SIZE, rng.pick([0, 10, 65_535, 1 << 20, MAX_WINDOW])]]);
  if (r === 21) return settings([[S.MAX_CONCURRENT_STREAMS, rng.pick([0, 1, 3, 100])]]);
  if (r === 22) return settingsAck();
  return priority(id, id + 2);
}

/** A valid server conversation for streams 1, 3, 5 and 7, touching every frame type; mutations start from it. */
export function validConversation(rng: FuzzRandom): Buffer[] {
  const block = hpackLiterals(RESPONSE);
  const cut = 1 + rng.int(block.length - 1);
  return [
    settings([[S.INITIAL_WINDOW_SIZE, rng.pick([0, 100, 65_535])], [S.MAX_FRAME_SIZE, 16_384], [S.MAX_CONCURRENT_STREAMS, 100]]),
    settingsAck(),
    headers(1, [':status', '100']),
    headers(1, RESPONSE),
    data(1, 'hello'),
    headers(1, ['grpc-status', '0'], { endStream: true }),
    headers(3, block.subarray(0, cut), { endHeaders: false }),
    continuation(3, block.subarray(cut)),
    data(3, 'abc', { endStream: true, padding: rng.int(20) }),
    windowUpdate(0, 1000),
    windowUpdate(5, 5000),
    ping('pingpong'),
    ping(OWN_PING, true),
    priority(5, 3),
    headers(5, [...RESPONSE, 'grpc-status', '0'], { endStream: true }),
    headers(7, [...RESPONSE, 'content-length', '3']),
    data(7, 'abc', { endStream: true }),
    frame(0xfa, 0, 0, Buffer.from('ext')),
    ...(rng.chance(0.3) ? [goaway(rng.pick([3, 7, 0]), rng.pick([0, 2]))] : []),
  ];
}

export function mutate(rng: FuzzRandom, frames: Buffer[], opened: number): Buffer {
  const list = [...frames];
  for (let n = 1 + rng.int(3); n > 0; n--) {
    const i = rng.int(list.length);
    const j = rng.int(list.length);
    const r = rng.int(5);
    if (r === 0) list.splice(j, 0, list[i]);
    else if (r === 1) [list[i], list[j]] = [list[j], list[i]];
    else if (r === 2) list.splice(i, 1);
    else if (r === 3) list.splice(j, 0, randomFrame(rng, opened));
  }
  const bytes = Buffer.concat(list);
  for (let n = rng.int(4); n > 0 && bytes.length > 0; n--) bytes[rng.int(bytes.length)] ^= 1 << rng.int(8);
  return rng.chance(0.2) ? bytes.subarray(0, rng.int(bytes.length)) : bytes;
}

export function randomConversation(rng: FuzzRandom, opened: number): Buffer {
  const answered = new Set<number>();
  const plausible = rng.pick([0.3, 0.8, 0.95]);
  const first = rng.chance(0.95) ? (rng.chance(0.7) ? settings() : randomSettings(rng)) : randomFrame(rng, opened);
  const rest = Array.from({ length: 1 + rng.int(50) }, () => (rng.chance(plausible) ? plausibleFrame(rng, opened, answered) : randomFrame(rng, opened)));
  return Buffer.concat([first, ...(rng.chance(0.8) ? [settingsAck()] : []), ...rest]);
}

/** The peer's frames as the connection read them, as far as they parse the way its reader splits them. */
export function peerFrames(input: Buffer): Array<{ type: number; flags: number; streamId: number; payload: Buffer }> {
  const frames = [];
  for (let at = 0; input.length - at >= 9; ) {
    const length = input.readUIntBE(at, 3);
    if (length > 16_384 || input.length - at - 9 < length) break;
    frames.push({ type: input[at + 3], flags: input[at + 4], streamId: input.readUInt32BE(at + 5) & 0x7fffffff, payload: input.subarray(at + 9, at + 9 + length) });
    at += 9 + length;
  }
  return frames;
}
