// Serializes frames into one connection's pending output: small frames are copied into a reused buffer, large
// DATA payloads are kept by reference, and everything goes to the socket in one write per flush. A connection holds
// that buffer only between a write and its flush: an idle connection holds no output memory at all.

import { FRAME_HEADER_LENGTH, FrameType } from './constants.ts';

/** Payloads at least this long are passed to the socket by reference instead of being copied. */
const COPY_LIMIT = 1024;
/** A busy connection's output buffer. */
const SCRATCH_SIZE = 64 * 1024;
/**
 * The first buffer of a flush: small (Node hands it out of its shared 8 KiB slab, no allocation of its own), so that
 * thousands of connections writing a few control frames in the same event-loop turn (a burst of new connections, a
 * PING to each) take a few KiB each, not 64 KiB each. A flush that outgrows it moves on to a SCRATCH_SIZE buffer.
 */
const FIRST_SCRATCH_SIZE = 2 * 1024;
/**
 * Buffers of SCRATCH_SIZE handed back after a flush the socket took whole, shared by every connection of the process
 * (one event loop: no two connections use one at the same time): a busy connection takes one again on its next
 * write instead of allocating it. Bounded, so that a burst does not stay allocated.
 */
const spareScratches: Buffer[] = [];
const MAX_SPARE_SCRATCHES = 32;
const NO_SCRATCH = Buffer.alloc(0);

export class FrameWriter {
  /** Output segments not yet handed to the socket, in order. */
  private segments: Buffer[] = [];
  private segmentBytes = 0;
  /** NO_SCRATCH between flushes: taken on the first write. */
  private scratch: Buffer = NO_SCRATCH;
  /** Start of the part of `scratch` not yet turned into a segment, and the write position. */
  private scratchStart = 0;
  private scratchEnd = 0;
  private streamFramesPending = false;

  /** Bytes waiting to be flushed. */
  get pendingBytes(): number {
    return this.segmentBytes + (this.scratchEnd - this.scratchStart);
  }

  /**
   * Whether what waits to be flushed includes a stream's HEADERS, DATA or RST_STREAM, the frames someone waits for;
   * false when it is only acknowledgments and other connection-level frames (PING and SETTINGS acks, WINDOW_UPDATE).
   */
  get carriesStreamFrames(): boolean {
    return this.streamFramesPending;
  }

  /** Everything written since the last call, as segments for the socket; resets the writer. */
  take(): Buffer[] {
    this.closeScratchSegment();
    const out = this.segments;
    this.segments = [];
    this.segmentBytes = 0;
    this.streamFramesPending = false;
    return out;
  }

  /**
   * Called after the taken segments were written. When the socket accepted all of them synchronously (nothing left
   * in its queue) the scratch memory may be reused; otherwise the socket still references it, so start a fresh one.
   */
  afterWrite(socketQueueEmpty: boolean): void {
    // Kept for reuse only when nothing references it any more, and only a full-size one (a small one is a slab slice).
    if (socketQueueEmpty && this.scratch.length === SCRATCH_SIZE && spareScratches.length < MAX_SPARE_SCRATCHES) {
      spareScratches.push(this.scratch);
    }
    this.scratch = NO_SCRATCH;
    this.scratchStart = 0;
    this.scratchEnd = 0;
  }

  /** Bytes of output memory this writer holds now (0 between flushes). */
  get heldBytes(): number {
    return this.scratch.length;
  }

  writeRaw(bytes: Buffer): void {
    const at = this.reserve(bytes.length);
    bytes.copy(this.scratch, at);
  }

  writeFrameHeader(length: number, type: number, flags: number, streamId: number): void {
    // DATA, HEADERS, PRIORITY (never sent), RST_STREAM: the types up to RST_STREAM. A CONTINUATION follows a HEADERS.
    if (type <= FrameType.RST_STREAM) this.streamFramesPending = true;
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

  /** writeFrame() of the payload `source[start, end)`, copied with no view made of it. */
  writeFrameFrom(type: number, flags: number, streamId: number, source: Buffer, start: number, end: number): void {
    this.writeFrameHeader(end - start, type, flags, streamId);
    const at = this.reserve(end - start);
    source.copy(this.scratch, at, start, end);
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
      this.scratch = this.nextScratch(length);
      this.scratchStart = 0;
      this.scratchEnd = 0;
    }
    const at = this.scratchEnd;
    this.scratchEnd += length;
    return at;
  }

  /** The buffer to go on with: a spare full-size one, else a small one first in a flush, else a new full-size one. */
  private nextScratch(length: number): Buffer {
    if (length <= SCRATCH_SIZE) {
      const spare = spareScratches.pop();
      if (spare !== undefined) return spare;
      if (this.scratch === NO_SCRATCH && length <= FIRST_SCRATCH_SIZE) return Buffer.allocUnsafe(FIRST_SCRATCH_SIZE);
    }
    return Buffer.allocUnsafe(Math.max(SCRATCH_SIZE, length));
  }

  private closeScratchSegment(): void {
    if (this.scratchEnd === this.scratchStart) return;
    this.segments.push(this.scratch.subarray(this.scratchStart, this.scratchEnd));
    this.segmentBytes += this.scratchEnd - this.scratchStart;
    this.scratchStart = this.scratchEnd;
  }
}
