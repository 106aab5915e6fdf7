// What the peer sends, in the order the protocol demands: the client preface, SETTINGS first and ours acknowledged in
// time, header blocks unbroken; then DATA and header blocks applied to streams and windows, and every other frame
// handed to ControlFrames.

import { CONNECTION_PREFACE, ErrorCode, Flag, FrameType } from './constants.ts';
import type { Http2Connection } from './connection.ts';
import type { Clock } from '../vocabulary/clock.ts';
import { FrameReader, type FrameSink } from './frame-reader.ts';
import type { FrameWriter } from './frame-writer.ts';
import type { Http2Handler } from './handler.ts';
import { HeaderBlockAssembler } from './header-block-assembler.ts';
import type { IncomingHeaders } from './incoming-headers.ts';
import type { ReceiveWindow } from './receive-window.ts';
import { ControlFrames } from './control-frames.ts';
import type { Http2Settings } from './settings.ts';
import type { Stream } from './stream.ts';
import { canReceive, transitionStream } from './stream-state.ts';
import type { StreamOutput } from './stream-output.ts';
import type { StreamTable } from './stream-table.ts';

type InputPhase = 'preface' | 'first-settings' | 'frames' | 'stopped';

const EMPTY = Buffer.alloc(0);

/** The lifecycle steps frame input may take on its connection. */
export interface InputOwner {
  connectionError(code: number, reason: string): void;
  streamError(streamId: number, stream: Stream | undefined, code: number, reason: string): void;
  /** Removes a stream and drops its queued output; the caller tells the handler. */
  forgetStream(stream: Stream): void;
  closeIfDone(stream: Stream): void;
  closeIfIdle(): void;
  requestFlush(): void;
  /** The peer answered a PING of ours. */
  pingAcknowledged(payload: Buffer): void;
  /** The peer sent GOAWAY (the caller refuses our streams above its last-stream-id and tells the handler). */
  peerGoingAway(): void;
}

/** The parts of a connection that frame input works on. `connection` is only passed to the handler's callbacks. */
export interface InputParts {
  readonly connection: Http2Connection;
  readonly handler: Http2Handler;
  readonly role: 'server' | 'client';
  readonly localSettings: Http2Settings;
  readonly remoteSettings: Http2Settings;
  readonly timers: Clock;
  readonly prefaceTimeoutMs: number;
  readonly settingsTimeoutMs: number;
  readonly writer: FrameWriter;
  readonly streams: StreamTable;
  readonly receiveWindow: ReceiveWindow;
  readonly output: StreamOutput;
  readonly headers: IncomingHeaders;
}

export class ConnectionInput implements FrameSink {
  private phase: InputPhase;
  private prefaceBytesSeen = 0;
  private prefaceTimer: unknown = null;
  private readonly reader: FrameReader;
  private readonly headerBlock: HeaderBlockAssembler;
  private readonly connection: Http2Connection;
  private readonly handler: Http2Handler;
  private readonly role: 'server' | 'client';
  private readonly timers: Clock;
  private readonly streams: StreamTable;
  private readonly receiveWindow: ReceiveWindow;
  private readonly headers: IncomingHeaders;
  private readonly control: ControlFrames;
  private readonly owner: InputOwner;

  constructor(parts: InputParts, owner: InputOwner) {
    this.connection = parts.connection;
    this.handler = parts.handler;
    this.role = parts.role;
    this.timers = parts.timers;
    this.streams = parts.streams;
    this.receiveWindow = parts.receiveWindow;
    this.headers = parts.headers;
    this.control = new ControlFrames(parts, owner);
    this.owner = owner;
    this.reader = new FrameReader(parts.localSettings.maxFrameSize);
    this.headerBlock = new HeaderBlockAssembler(parts.localSettings.maxHeaderListSize * 2 + 16 * 1024);
    this.phase = this.role === 'server' ? 'preface' : 'first-settings';
    if (this.role === 'server') {
      this.prefaceTimer = this.timers.setTimeout(() => {
        this.prefaceTimer = null;
        if (this.phase === 'preface' || this.phase === 'first-settings') {
          this.owner.connectionError(ErrorCode.SETTINGS_TIMEOUT, 'no preface from the client in time');
        }
      }, parts.prefaceTimeoutMs);
    }
  }

  /** Our SETTINGS are on their way: the peer must acknowledge them in time. */
  awaitSettingsAck(): void {
    this.control.awaitSettingsAck();
  }

  receive(chunk: Buffer): void {
    if (this.phase === 'stopped') return;
    if (this.phase === 'preface') {
      chunk = this.consumePreface(chunk);
      if (chunk.length === 0) return;
    }
    this.reader.feed(chunk, this);
  }

  /** The connection closed: nothing more is read and no timer fires. */
  stop(): void {
    this.phase = 'stopped';
    this.reader.stop();
    this.control.stop();
    if (this.prefaceTimer !== null) this.timers.clearTimeout(this.prefaceTimer);
    this.prefaceTimer = null;
  }

  onOversizedFrame(type: number, _streamId: number, length: number): void {
    this.owner.connectionError(ErrorCode.FRAME_SIZE_ERROR, `frame of type ${type} with ${length} bytes exceeds SETTINGS_MAX_FRAME_SIZE`);
  }

  onFrame(type: number, flags: number, streamId: number, input: Buffer, start: number, end: number): void {
    if (this.phase === 'stopped') return;
    if (this.headerBlock.active && type !== FrameType.CONTINUATION) {
      this.owner.connectionError(ErrorCode.PROTOCOL_ERROR, 'frame interleaved in a header block');
      return;
    }
    if (this.phase === 'first-settings') {
      if (type !== FrameType.SETTINGS || (flags & Flag.ACK) !== 0) {
        this.owner.connectionError(ErrorCode.PROTOCOL_ERROR, 'first frame is not SETTINGS');
        return;
      }
      this.phase = 'frames';
      if (this.prefaceTimer !== null) {
        this.timers.clearTimeout(this.prefaceTimer);
        this.prefaceTimer = null;
      }
    }
    // Header blocks are decoded in place; every other payload is a view (DATA is relayed by reference).
    if (type === FrameType.HEADERS) return this.onHeadersFrame(flags, streamId, input, start, end);
    if (type === FrameType.CONTINUATION) return this.onContinuationFrame(flags, streamId, input, start, end);
    const payload = input.subarray(start, end);
    switch (type) {
      case FrameType.DATA:
        return this.onDataFrame(flags, streamId, payload);
      case FrameType.PRIORITY:
        return this.control.onPriorityFrame(streamId, payload);
      case FrameType.RST_STREAM:
        return this.control.onRstStreamFrame(streamId, payload);
      case FrameType.SETTINGS:
        return this.control.onSettingsFrame(flags, streamId, payload);
      case FrameType.PUSH_PROMISE:
        return this.owner.connectionError(ErrorCode.PROTOCOL_ERROR, 'PUSH_PROMISE received but push is disabled');
      case FrameType.PING:
        return this.control.onPingFrame(flags, streamId, payload);
      case FrameType.GOAWAY:
        return this.control.onGoawayFrame(streamId, payload);
      case FrameType.WINDOW_UPDATE:
        return this.control.onWindowUpdateFrame(streamId, payload);
      default:
        return; // Unknown frame types are ignored (RFC 9113 §4.1).
    }
  }

  private consumePreface(chunk: Buffer): Buffer {
    const take = Math.min(chunk.length, CONNECTION_PREFACE.length - this.prefaceBytesSeen);
    for (let i = 0; i < take; i++) {
      if (chunk[i] !== CONNECTION_PREFACE[this.prefaceBytesSeen + i]) {
        this.owner.connectionError(ErrorCode.PROTOCOL_ERROR, 'invalid connection preface');
        return EMPTY;
      }
    }
    this.prefaceBytesSeen += take;
    if (this.prefaceBytesSeen < CONNECTION_PREFACE.length) return EMPTY;
    this.phase = 'first-settings';
    return chunk.subarray(take);
  }

  private onDataFrame(flags: number, streamId: number, payload: Buffer): void {
    const owner = this.owner;
    if (streamId === 0) return owner.connectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on stream 0');
    const frameLength = payload.length;
    let data = payload;
    if ((flags & Flag.PADDED) !== 0) {
      if (payload.length < 1 || payload[0] >= payload.length) {
        return owner.connectionError(ErrorCode.PROTOCOL_ERROR, 'DATA padding exceeds the payload');
      }
      data = payload.subarray(1, payload.length - payload[0]);
    }
    if (!this.receiveWindow.takeFrame(frameLength)) {
      return owner.connectionError(ErrorCode.FLOW_CONTROL_ERROR, 'DATA exceeds the connection window');
    }
    const stream = this.streams.get(streamId);
    if (stream === undefined || !canReceive(stream.state)) {
      this.receiveWindow.returnConnectionCredit(frameLength);
      if (stream === undefined && this.streams.isIdle(streamId)) {
        return owner.connectionError(ErrorCode.PROTOCOL_ERROR, `DATA on idle stream ${streamId}`);
      }
      if (stream === undefined && this.streams.resetByUs.has(streamId)) return;
      // Streams the peer opened above our final GOAWAY's last-stream-id are ignored, frames and all (RFC 9113 §6.8).
      if (stream === undefined && this.streams.aboveFinalGoaway(streamId) && this.streams.isPeerInitiated(streamId)) return;
      return owner.streamError(streamId, stream, ErrorCode.STREAM_CLOSED, 'DATA on a closed stream');
    }
    // A response is its head first (RFC 9113 §8.1): DATA before it makes the response malformed.
    if (this.role === 'client' && stream.headerBlocksReceived === 0) {
      this.receiveWindow.returnConnectionCredit(frameLength);
      return owner.streamError(streamId, stream, ErrorCode.PROTOCOL_ERROR, 'DATA before the response headers');
    }
    if (!this.receiveWindow.takeOnStream(stream, frameLength, data.length)) {
      return owner.streamError(streamId, stream, ErrorCode.FLOW_CONTROL_ERROR, 'DATA exceeds the stream window');
    }
    const endStream = (flags & Flag.END_STREAM) !== 0;
    if (stream.expectedLength >= 0) {
      stream.receivedLength += data.length;
      if (stream.receivedLength > stream.expectedLength || (endStream && stream.receivedLength !== stream.expectedLength)) {
        return owner.streamError(streamId, stream, ErrorCode.PROTOCOL_ERROR, 'DATA length differs from content-length');
      }
    }
    if (endStream) transitionStream(stream, 'recv-end');
    this.handler.onData(this.connection, stream, data, endStream);
    if (endStream) owner.closeIfDone(stream);
  }

  /** The frame's payload is `input[payloadStart, payloadEnd)`. */
  private onHeadersFrame(flags: number, streamId: number, input: Buffer, payloadStart: number, payloadEnd: number): void {
    if (streamId === 0) return this.owner.connectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS on stream 0');
    let start = payloadStart;
    let end = payloadEnd;
    if ((flags & Flag.PADDED) !== 0) {
      if (end - start < 1) return this.owner.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'HEADERS too short for padding');
      end -= input[start];
      start += 1;
    }
    let selfDependent = false;
    if ((flags & Flag.PRIORITY) !== 0) {
      if (end - start < 5) return this.owner.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'HEADERS too short for priority');
      // Still decode the block later so HPACK state stays in sync; the stream itself is refused.
      selfDependent = (input.readUInt32BE(start) & 0x7fffffff) === streamId;
      start += 5;
    }
    if (end < start && !selfDependent) return this.owner.connectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS padding exceeds the payload');
    this.headerBlock.begin(streamId, flags, input, start, Math.max(start, end), selfDependent);
    if ((flags & Flag.END_HEADERS) !== 0) this.finishHeaderBlock();
  }

  private onContinuationFrame(flags: number, streamId: number, input: Buffer, start: number, end: number): void {
    if (!this.headerBlock.active || this.headerBlock.streamId !== streamId) {
      return this.owner.connectionError(ErrorCode.PROTOCOL_ERROR, 'CONTINUATION without a header block in progress');
    }
    if (!this.headerBlock.append(input, start, end)) {
      return this.owner.connectionError(ErrorCode.ENHANCE_YOUR_CALM, 'header block too large');
    }
    if ((flags & Flag.END_HEADERS) !== 0) this.finishHeaderBlock();
  }

  private finishHeaderBlock(): void {
    const block = this.headerBlock;
    block.finish();
    this.headers.complete(block.streamId, block.flags, block.selfDependent, block.block, block.blockStart, block.blockEnd);
    block.release();
  }
}
