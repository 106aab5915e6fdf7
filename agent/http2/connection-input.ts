// What the peer sends, in the order the protocol demands: the client preface, SETTINGS first and ours acknowledged in
// time, header blocks unbroken; then each frame checked against RFC 9113 §6 and applied to streams and windows.

import { CONNECTION_PREFACE, ErrorCode, Flag, FrameType } from './constants.ts';
import type { Http2Connection } from './connection.ts';
import type { Clock } from '../vocabulary/clock.ts';
import { FrameReader, type FrameSink } from './frame-reader.ts';
import type { FrameWriter } from './frame-writer.ts';
import type { Http2Handler } from './handler.ts';
import { HeaderBlockAssembler } from './header-block-assembler.ts';
import type { IncomingHeaders } from './incoming-headers.ts';
import type { ReceiveWindow } from './receive-window.ts';
import { type Http2Settings, applySettingsPayload } from './settings.ts';
import type { Stream } from './stream.ts';
import { canReceive, transitionStream } from './stream-state.ts';
import type { StreamOutput } from './stream-output.ts';
import type { StreamTable } from './stream-table.ts';

type InputPhase = 'preface' | 'first-settings' | 'frames' | 'stopped';

const UNLIMITED_STREAMS = 0xffffffff;
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
  private remoteSettingsSeen = false;
  private prefaceTimer: unknown = null;
  private settingsTimer: unknown = null;
  private readonly reader: FrameReader;
  private readonly headerBlock: HeaderBlockAssembler;
  private readonly connection: Http2Connection;
  private readonly handler: Http2Handler;
  private readonly role: 'server' | 'client';
  private readonly remoteSettings: Http2Settings;
  private readonly timers: Clock;
  private readonly settingsTimeoutMs: number;
  private readonly writer: FrameWriter;
  private readonly streams: StreamTable;
  private readonly receiveWindow: ReceiveWindow;
  private readonly output: StreamOutput;
  private readonly headers: IncomingHeaders;
  private readonly owner: InputOwner;

  constructor(parts: InputParts, owner: InputOwner) {
    this.connection = parts.connection;
    this.handler = parts.handler;
    this.role = parts.role;
    this.remoteSettings = parts.remoteSettings;
    this.timers = parts.timers;
    this.settingsTimeoutMs = parts.settingsTimeoutMs;
    this.writer = parts.writer;
    this.streams = parts.streams;
    this.receiveWindow = parts.receiveWindow;
    this.output = parts.output;
    this.headers = parts.headers;
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
    this.settingsTimer = this.timers.setTimeout(() => {
      this.settingsTimer = null;
      this.owner.connectionError(ErrorCode.SETTINGS_TIMEOUT, 'SETTINGS not acknowledged in time');
    }, this.settingsTimeoutMs);
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
    for (const timer of [this.settingsTimer, this.prefaceTimer]) if (timer !== null) this.timers.clearTimeout(timer);
    this.settingsTimer = null;
    this.prefaceTimer = null;
  }

  onOversizedFrame(type: number, _streamId: number, length: number): void {
    this.owner.connectionError(ErrorCode.FRAME_SIZE_ERROR, `frame of type ${type} with ${length} bytes exceeds SETTINGS_MAX_FRAME_SIZE`);
  }

  onFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
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
    switch (type) {
      case FrameType.DATA:
        return this.onDataFrame(flags, streamId, payload);
      case FrameType.HEADERS:
        return this.onHeadersFrame(flags, streamId, payload);
      case FrameType.PRIORITY:
        return this.onPriorityFrame(streamId, payload);
      case FrameType.RST_STREAM:
        return this.onRstStreamFrame(streamId, payload);
      case FrameType.SETTINGS:
        return this.onSettingsFrame(flags, streamId, payload);
      case FrameType.PUSH_PROMISE:
        return this.owner.connectionError(ErrorCode.PROTOCOL_ERROR, 'PUSH_PROMISE received but push is disabled');
      case FrameType.PING:
        return this.onPingFrame(flags, streamId, payload);
      case FrameType.GOAWAY:
        return this.onGoawayFrame(streamId, payload);
      case FrameType.WINDOW_UPDATE:
        return this.onWindowUpdateFrame(streamId, payload);
      case FrameType.CONTINUATION:
        return this.onContinuationFrame(flags, streamId, payload);
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

  private onHeadersFrame(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) return this.owner.connectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS on stream 0');
    let start = 0;
    let end = payload.length;
    if ((flags & Flag.PADDED) !== 0) {
      if (payload.length < 1) return this.owner.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'HEADERS too short for padding');
      start = 1;
      end -= payload[0];
    }
    let selfDependent = false;
    if ((flags & Flag.PRIORITY) !== 0) {
      if (end - start < 5) return this.owner.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'HEADERS too short for priority');
      // Still decode the block later so HPACK state stays in sync; the stream itself is refused.
      selfDependent = (payload.readUInt32BE(start) & 0x7fffffff) === streamId;
      start += 5;
    }
    if (end < start && !selfDependent) return this.owner.connectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS padding exceeds the payload');
    this.headerBlock.begin(streamId, flags, payload.subarray(start, Math.max(start, end)), selfDependent);
    if ((flags & Flag.END_HEADERS) !== 0) this.finishHeaderBlock();
  }

  private onContinuationFrame(flags: number, streamId: number, payload: Buffer): void {
    if (!this.headerBlock.active || this.headerBlock.streamId !== streamId) {
      return this.owner.connectionError(ErrorCode.PROTOCOL_ERROR, 'CONTINUATION without a header block in progress');
    }
    if (!this.headerBlock.append(payload)) {
      return this.owner.connectionError(ErrorCode.ENHANCE_YOUR_CALM, 'header block too large');
    }
    if ((flags & Flag.END_HEADERS) !== 0) this.finishHeaderBlock();
  }

  private finishHeaderBlock(): void {
    const { streamId, flags, selfDependent } = this.headerBlock;
    this.headers.complete(streamId, flags, selfDependent, this.headerBlock.finish());
  }

  private onPriorityFrame(streamId: number, payload: Buffer): void {
    const owner = this.owner;
    if (streamId === 0) return owner.connectionError(ErrorCode.PROTOCOL_ERROR, 'PRIORITY on stream 0');
    // RST_STREAM must not name an idle stream (RFC 9113 §6.4), so on one the stream error becomes a connection error (§5.4.1).
    const idle = !this.streams.has(streamId) && this.streams.isIdle(streamId);
    if (payload.length !== 5) {
      if (idle) return owner.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'PRIORITY length is not 5');
      return owner.streamError(streamId, this.streams.get(streamId), ErrorCode.FRAME_SIZE_ERROR, 'PRIORITY length is not 5');
    }
    if ((payload.readUInt32BE(0) & 0x7fffffff) === streamId) {
      if (idle) return owner.connectionError(ErrorCode.PROTOCOL_ERROR, 'stream depends on itself');
      return owner.streamError(streamId, this.streams.get(streamId), ErrorCode.PROTOCOL_ERROR, 'stream depends on itself');
    }
  }

  private onRstStreamFrame(streamId: number, payload: Buffer): void {
    if (streamId === 0) return this.owner.connectionError(ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    if (payload.length !== 4) return this.owner.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'RST_STREAM length is not 4');
    const stream = this.streams.get(streamId);
    if (stream === undefined) {
      if (this.streams.isIdle(streamId)) return this.owner.connectionError(ErrorCode.PROTOCOL_ERROR, `RST_STREAM on idle stream ${streamId}`);
      return;
    }
    const code = payload.readUInt32BE(0);
    this.owner.forgetStream(stream);
    this.handler.onStreamReset(this.connection, stream, code, true);
    this.owner.closeIfIdle();
  }

  private onSettingsFrame(flags: number, streamId: number, payload: Buffer): void {
    const owner = this.owner;
    if (streamId !== 0) return owner.connectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if ((flags & Flag.ACK) !== 0) {
      if (payload.length !== 0) return owner.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      if (this.settingsTimer !== null) {
        this.timers.clearTimeout(this.settingsTimer);
        this.settingsTimer = null;
      }
      return;
    }
    if (payload.length % 6 !== 0) return owner.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS length not a multiple of 6');
    const previousWindow = this.remoteSettings.initialWindowSize;
    // The stream limit we assumed until now gives way to the RFC's "no limit" unless the peer names one.
    if (!this.remoteSettingsSeen) this.remoteSettings.maxConcurrentStreams = UNLIMITED_STREAMS;
    this.remoteSettingsSeen = true;
    const result = applySettingsPayload(this.remoteSettings, payload, this.role === 'client');
    if (!result.ok) return owner.connectionError(result.code, result.reason);
    this.output.setHeaderTableSize(this.remoteSettings.headerTableSize);
    const delta = this.remoteSettings.initialWindowSize - previousWindow;
    if (delta !== 0 && !this.output.shiftStreamWindows(delta)) {
      return owner.connectionError(ErrorCode.FLOW_CONTROL_ERROR, 'INITIAL_WINDOW_SIZE change overflows a stream window');
    }
    this.writer.writeSettings(Flag.ACK, []);
    owner.requestFlush();
    this.handler.onRemoteSettings(this.connection);
    if (delta > 0) this.output.pumpAll();
  }

  private onPingFrame(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) return this.owner.connectionError(ErrorCode.PROTOCOL_ERROR, 'PING on a stream');
    if (payload.length !== 8) return this.owner.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'PING length is not 8');
    if ((flags & Flag.ACK) === 0) {
      this.writer.writePing(Flag.ACK, payload);
      this.owner.requestFlush();
      return;
    }
    this.owner.pingAcknowledged(payload);
  }

  private onGoawayFrame(streamId: number, payload: Buffer): void {
    if (streamId !== 0) return this.owner.connectionError(ErrorCode.PROTOCOL_ERROR, 'GOAWAY on a stream');
    if (payload.length < 8) return this.owner.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'GOAWAY shorter than 8 bytes');
    const lastStreamId = payload.readUInt32BE(0) & 0x7fffffff;
    const code = payload.readUInt32BE(4);
    this.owner.peerGoingAway();
    // Streams we opened above lastStreamId were never processed: they fail with REFUSED_STREAM and may be retried.
    for (const stream of [...this.streams.values()]) {
      if (!stream.openedByPeer && stream.id > lastStreamId) {
        this.owner.forgetStream(stream);
        this.handler.onStreamReset(this.connection, stream, ErrorCode.REFUSED_STREAM, true);
      }
    }
    this.handler.onGoaway(this.connection, lastStreamId, code, payload.subarray(8));
    this.owner.closeIfIdle();
  }

  private onWindowUpdateFrame(streamId: number, payload: Buffer): void {
    const owner = this.owner;
    if (payload.length !== 4) return owner.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'WINDOW_UPDATE length is not 4');
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    if (streamId === 0) {
      if (increment === 0) return owner.connectionError(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      if (!this.output.growConnectionWindow(increment)) return owner.connectionError(ErrorCode.FLOW_CONTROL_ERROR, 'connection window above 2^31-1');
      return;
    }
    const stream = this.streams.get(streamId);
    if (stream === undefined) {
      if (this.streams.isIdle(streamId)) return owner.connectionError(ErrorCode.PROTOCOL_ERROR, `WINDOW_UPDATE on idle stream ${streamId}`);
      return;
    }
    if (increment === 0) return owner.streamError(streamId, stream, ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
    if (!this.output.growStreamWindow(stream, increment)) return owner.streamError(streamId, stream, ErrorCode.FLOW_CONTROL_ERROR, 'stream window above 2^31-1');
  }
}
