// Splits the peer's bytes into frames in place: payloads are ranges of the received chunks, copied only when a
// frame straddles two reads.

import { FRAME_HEADER_LENGTH } from './constants.ts';

/**
 * Receives each complete frame: its payload is `input[start, end)`, a range rather than a view so that frames whose
 * payload is parsed in place (header blocks, most of a request's frames) cost no object. The bytes stay valid after
 * the call: input memory is never reused.
 */
export interface FrameSink {
  onFrame(type: number, flags: number, streamId: number, input: Buffer, start: number, end: number): void;
  /** A frame header announced more than the allowed size; nothing more is read. */
  onOversizedFrame(type: number, streamId: number, length: number): void;
}

export class FrameReader {
  /** Largest payload accepted (our SETTINGS_MAX_FRAME_SIZE). */
  maxFrameSize: number;
  private pendingChunks: Buffer[] = [];
  private pendingLength = 0;
  private stopped = false;

  constructor(maxFrameSize: number) {
    this.maxFrameSize = maxFrameSize;
  }

  /** Stops delivering frames (after a connection error); later input is dropped. */
  stop(): void {
    this.stopped = true;
    this.pendingChunks = [];
    this.pendingLength = 0;
  }

  get bufferedBytes(): number {
    return this.pendingLength;
  }

  feed(chunk: Buffer, sink: FrameSink): void {
    if (this.stopped) return;
    let input = chunk;
    if (this.pendingLength > 0) {
      this.pendingChunks.push(chunk);
      this.pendingLength += chunk.length;
      const needed = this.neededLength();
      if (needed < 0 || this.pendingLength < needed) return;
      input = this.pendingChunks.length === 1 ? this.pendingChunks[0] : Buffer.concat(this.pendingChunks, this.pendingLength);
      this.pendingChunks = [];
      this.pendingLength = 0;
    }
    let offset = 0;
    const end = input.length;
    while (end - offset >= FRAME_HEADER_LENGTH) {
      const length = (input[offset] << 16) | (input[offset + 1] << 8) | input[offset + 2];
      const type = input[offset + 3];
      const flags = input[offset + 4];
      const streamId = input.readUInt32BE(offset + 5) & 0x7fffffff;
      if (length > this.maxFrameSize) {
        this.stop();
        sink.onOversizedFrame(type, streamId, length);
        return;
      }
      const payloadStart = offset + FRAME_HEADER_LENGTH;
      if (end - payloadStart < length) break;
      offset = payloadStart + length;
      sink.onFrame(type, flags, streamId, input, payloadStart, offset);
      if (this.stopped) return;
    }
    if (offset < end) {
      const rest = input.subarray(offset);
      this.pendingChunks.push(rest);
      this.pendingLength = rest.length;
    }
  }

  /** Bytes needed to complete the pending frame, or -1 while its header is still incomplete. */
  private neededLength(): number {
    if (this.pendingLength < FRAME_HEADER_LENGTH) return -1;
    let header = this.pendingChunks[0];
    if (header.length < FRAME_HEADER_LENGTH) {
      header = Buffer.concat(this.pendingChunks, this.pendingLength);
      this.pendingChunks = [header];
    }
    const length = (header[0] << 16) | (header[1] << 8) | header[2];
    // An oversized frame is reported as soon as its header is complete.
    if (length > this.maxFrameSize) return FRAME_HEADER_LENGTH;
    return FRAME_HEADER_LENGTH + length;
  }
}
