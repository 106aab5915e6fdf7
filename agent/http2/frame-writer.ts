// Serializes frames into one connection's pending output: small frames are copied into a reused buffer, large
// DATA payloads are kept by reference, and everything goes to the socket in one write per flush.

import { FRAME_HEADER_LENGTH, FrameType } from './constants.ts';

/** Payloads at least this long are passed to the socket by reference instead of being copied. */
const COPY_LIMIT = 1024;
const SCRATCH_SIZE = 64 * 1024;

export class FrameWriter {
  /** Output segments not yet handed to the socket, in order. */
  private segments: Buffer[] = [];
  private segmentBytes = 0;
  private scratch: Buffer = Buffer.allocUnsafe(SCRATCH_SIZE);
  /** Start of the part of `scratch` not yet turned into a segment, and the write position. */
  private scratchStart = 0;
  private scratchEnd = 0;

  /** Bytes waiting to be flushed. */
  get pendingBytes(): number {
    return this.segmentBytes + (this.scratchEnd - this.scratchStart);
  }

  /** Everything written since the last call, as segments for the socket; resets the writer. */
  take(): Buffer[] {
    this.closeScratchSegment();
    const out = this.segments;
    this.segments = [];
    this.segmentBytes = 0;
    return out;
  }

  /**
   * Called after the taken segments were written. When the socket accepted all of them synchronously (nothing left
   * in its queue) the scratch memory may be reused; otherwise the socket still references it, so start a fresh one.
   */
  afterWrite(socketQueueEmpty: boolean): void {
    if (socketQueueEmpty) {
      this.scratchStart = 0;
      this.scratchEnd = 0;
    } else {
      this.scratch = Buffer.allocUnsafe(SCRATCH_SIZE);
      this.scratchStart = 0;
      this.scratchEnd = 0;
    }
  }

  writeRaw(bytes: Buffer): void {
    const at = this.reserve(bytes.length);
    bytes.copy(this.scratch, at);
  }

  writeFrameHeader(length: number, type: number, flags: number, streamId: number): void {
    const at = this.reserve(FRAME_HEADER_LENGTH);
    const s = this.scratch;
    s[at] = length >>> 16;
    s[at + 1] = (length >>> 8) & 0xff;
    s[at + 2] = length & 0xff;
    s[at + 3] = type;
    s[at + 4] = flags;
    s.writeUInt32BE(streamId, at + 5);
  }

  /** A frame whose payload is copied (headers blocks, control frames). */
  writeFrame(type: number, flags: number, streamId: number, payload: Uint8Array): void {
    this.writeFrameHeader(payload.length, type, flags, streamId);
    const at = this.reserve(payload.length);
    this.scratch.set(payload, at);
  }

  /** A DATA frame; large payloads are referenced, not copied. */
  writeData(flags: number, streamId: number, payload: Buffer): void {
    this.writeFrameHeader(payload.length, FrameType.DATA, flags, streamId);
    if (payload.length < COPY_LIMIT) {
      const at = this.reserve(payload.length);
      payload.copy(this.scratch, at);
      return;
    }
    this.closeScratchSegment();
    this.segments.push(payload);
    this.segmentBytes += payload.length;
  }

  writeSettings(flags: number, pairs: ReadonlyArray<readonly [number, number]>): void {
    this.writeFrameHeader(pairs.length * 6, FrameType.SETTINGS, flags, 0);
    const at = this.reserve(pairs.length * 6);
    for (let i = 0; i < pairs.length; i++) {
      this.scratch.writeUInt16BE(pairs[i][0], at + i * 6);
      this.scratch.writeUInt32BE(pairs[i][1], at + i * 6 + 2);
    }
  }

  writeWindowUpdate(streamId: number, increment: number): void {
    this.writeFrameHeader(4, FrameType.WINDOW_UPDATE, 0, streamId);
    this.scratch.writeUInt32BE(increment, this.reserve(4));
  }

  writeRstStream(streamId: number, code: number): void {
    this.writeFrameHeader(4, FrameType.RST_STREAM, 0, streamId);
    this.scratch.writeUInt32BE(code, this.reserve(4));
  }

  writePing(flags: number, payload: Uint8Array): void {
    this.writeFrame(FrameType.PING, flags, 0, payload);
  }

  writeGoaway(lastStreamId: number, code: number, debug: Buffer | null): void {
    const debugLength = debug === null ? 0 : debug.length;
    this.writeFrameHeader(8 + debugLength, FrameType.GOAWAY, 0, 0);
    const at = this.reserve(8 + debugLength);
    this.scratch.writeUInt32BE(lastStreamId, at);
    this.scratch.writeUInt32BE(code, at + 4);
    if (debug !== null) debug.copy(this.scratch, at + 8);
  }

  /** Room for `length` bytes at the scratch write position; returns where to write them. */
  private reserve(length: number): number {
    if (this.scratchEnd + length > this.scratch.length) {
      this.closeScratchSegment();
      this.scratch = Buffer.allocUnsafe(Math.max(SCRATCH_SIZE, length));
      this.scratchStart = 0;
      this.scratchEnd = 0;
    }
    const at = this.scratchEnd;
    this.scratchEnd += length;
    return at;
  }

  private closeScratchSegment(): void {
    if (this.scratchEnd === this.scratchStart) return;
    this.segments.push(this.scratch.subarray(this.scratchStart, this.scratchEnd));
    this.segmentBytes += this.scratchEnd - this.scratchStart;
    this.scratchStart = this.scratchEnd;
  }
}
