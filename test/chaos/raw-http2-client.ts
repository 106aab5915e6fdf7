// A hostile HTTP/2 client for the flood scenarios: a plain net.Socket writing frames built by test/support/raw-frames.ts
// (independent of agent/http2), reading back what the agent sends until GOAWAY, and the agent's CPU time from /proc.

import { readFileSync } from 'node:fs';
import net from 'node:net';
import { HpackDecoder } from '../../agent/http2/hpack-decoder.ts';
import { type GoawayInfo, F, T, clientPreface, data, headers, rstStream } from '../support/raw-frames.ts';

export interface ReceivedGoaway extends GoawayInfo {
  /** performance.now() when it arrived. */
  at: number;
}

/** One response as the raw client decoded it: header blocks in order, and the DATA bytes. */
export interface RawResponse {
  blocks: (readonly string[])[];
  body: Buffer;
  ended: boolean;
}

/** Keeps the socket from buffering without bound: a flood tick is skipped while this much is still queued. */
const MAX_QUEUED_BYTES = 4 * 1024 * 1024;

export class RawHttp2Client {
  readonly socket: net.Socket;
  goaway: ReceivedGoaway | null = null;
  closed = false;
  /** Frames received by type (PING ACKs, SETTINGS ACKs, RST_STREAMs, ...). */
  readonly received = new Map<number, number>();
  /** Responses by stream id, for the streams `watch` was called on. */
  readonly responses = new Map<number, RawResponse>();
  private pending: Buffer = Buffer.alloc(0);
  private readonly decoder = new HpackDecoder(4096, 1 << 20);
  private readonly waiters: Array<() => void> = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.read(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  /** Connects and sends the client preface (magic, empty SETTINGS, ACK of the server's). */
  static async connect(address: string): Promise<RawHttp2Client> {
    const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
    const socket = net.connect({ host, port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.setNoDelay(true);
    const client = new RawHttp2Client(socket);
    socket.write(clientPreface());
    return client;
  }

  get done(): boolean {
    return this.goaway !== null || this.closed;
  }

  /**
   * Waits `ms`, then for the next check phase of the event loop, which comes right after a poll for I/O: a flood writes
   * there, so a GOAWAY that arrived meanwhile is read first. (A write into a connection the agent already reset fails
   * at once, and Node then destroys the socket with the GOAWAY still unread in the kernel.)
   */
  async pace(ms: number): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    await new Promise((resolve) => setImmediate(resolve));
  }

  /** Writes unless the socket already holds MAX_QUEUED_BYTES; false when it was skipped or the connection is done. */
  write(bytes: Buffer): boolean {
    if (this.done || this.socket.writableLength > MAX_QUEUED_BYTES) return false;
    this.socket.write(bytes);
    return true;
  }

  /** Records the response on `streamId`. */
  watch(streamId: number): RawResponse {
    const response: RawResponse = { blocks: [], body: Buffer.alloc(0), ended: false };
    this.responses.set(streamId, response);
    return response;
  }

  /** Resolves once `predicate` holds (checked after every read and on close), or rejects after `timeoutMs`. */
  async until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!predicate()) {
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`raw client: ${what} not seen within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 50));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.socket.destroy();
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  private read(chunk: Buffer): void {
    let bytes = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    while (bytes.length >= 9) {
      const length = bytes.readUIntBE(0, 3);
      if (bytes.length < 9 + length) break;
      const type = bytes[3];
      const flags = bytes[4];
      const streamId = bytes.readUInt32BE(5) & 0x7fffffff;
      const payload = bytes.subarray(9, 9 + length);
      this.received.set(type, (this.received.get(type) ?? 0) + 1);
      if (type === T.GOAWAY && this.goaway === null) {
        this.goaway = {
          at: performance.now(),
          lastStreamId: payload.readUInt32BE(0) & 0x7fffffff,
          code: payload.readUInt32BE(4),
          debug: payload.subarray(8).toString('latin1'),
        };
      }
      // Every header block goes through the decoder, watched or not, so that its table stays in step.
      if (type === T.HEADERS) {
        const block = this.decoder.decode(Buffer.from(payload)) ?? [];
        const response = this.responses.get(streamId);
        response?.blocks.push(block);
        if (response !== undefined && (flags & F.END_STREAM) !== 0) response.ended = true;
      }
      if (type === T.DATA) {
        const response = this.responses.get(streamId);
        if (response !== undefined) {
          response.body = Buffer.concat([response.body, payload]);
          if ((flags & F.END_STREAM) !== 0) response.ended = true;
        }
      }
      bytes = bytes.subarray(9 + length);
    }
    this.pending = Buffer.from(bytes);
    this.wake();
  }
}

/** A gRPC unary request on `streamId`: HEADERS (with `extra` fields), then one length-prefixed message with END_STREAM. */
export function unaryRequest(streamId: number, authority: string, message: Buffer, extra: readonly string[] = []): Buffer {
  const head = [
    ':method', 'POST', ':scheme', 'http', ':path', '/test.Echo/Unary', ':authority', authority,
    'content-type', 'application/grpc', 'te', 'trailers', ...extra,
  ];
  const framed = Buffer.alloc(5 + message.length);
  framed.writeUInt32BE(message.length, 1);
  message.copy(framed, 5);
  return Buffer.concat([headers(streamId, head), data(streamId, framed, { endStream: true })]);
}

/**
 * `count` rapid-reset triples from `firstStreamId` (odd ids, step 2): a whole unary request, then RST_STREAM(CANCEL).
 * Built from one template whose stream ids are patched, so a flood costs the test little CPU.
 */
export function rapidResetBatch(authority: string, firstStreamId: number, count: number): Buffer {
  const template = Buffer.concat([unaryRequest(1, authority, Buffer.from('flood')), rstStream(1, 0x8)]);
  const out = Buffer.allocUnsafe(template.length * count);
  // Offsets of the stream id in each frame of the template (HEADERS, DATA, RST_STREAM).
  const idOffsets: number[] = [];
  for (let at = 0; at < template.length; at += 9 + template.readUIntBE(at, 3)) idOffsets.push(at + 5);
  for (let i = 0; i < count; i++) {
    const base = i * template.length;
    template.copy(out, base);
    for (const offset of idOffsets) out.writeUInt32BE(firstStreamId + 2 * i, base + offset);
  }
  return out;
}

/** The grpc-status of a finished raw response (from its trailers, or its only header block), or null. */
export function grpcStatusOf(response: RawResponse): number | null {
  const last = response.blocks.at(-1);
  if (last === undefined) return null;
  const index = last.indexOf('grpc-status');
  return index >= 0 && index % 2 === 0 ? Number(last[index + 1]) : null;
}

/** CPU time (user + system) a process has used so far, in milliseconds, from /proc/<pid>/stat. */
export function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  // Fields after the command name (which may contain spaces) start after the last ')'; utime and stime are 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
}

/** USER_HZ: 100 on every Linux this runs on (getconf CLK_TCK). */
const CLOCK_TICKS_PER_SECOND = 100;
