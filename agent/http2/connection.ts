// One HTTP/2 connection in either role (RFC 9113): frame handling, stream states, flow control both ways, SETTINGS,
// PING, GOAWAY (graceful and immediate), and protocol errors with the codes the RFC prescribes.

import {
  CONNECTION_PREFACE,
  DEFAULT_INITIAL_WINDOW_SIZE,
  DEFAULT_MAX_FRAME_SIZE,
  ErrorCode,
  Flag,
  FrameType,
  MAX_STREAM_ID,
  MAX_WINDOW_SIZE,
  errorCodeName,
} from './constants.ts';
import { FrameReader, type FrameSink } from './frame-reader.ts';
import { FrameWriter } from './frame-writer.ts';
import { scheduleFlush } from './flush-scheduler.ts';
import { type Http2Handler, Http2ConnectionError } from './handler.ts';
import { HpackDecoder } from './hpack-decoder.ts';
import { HpackEncoder } from './hpack-encoder.ts';
import { HeaderBlockAssembler } from './header-block-assembler.ts';
import {
  declaredContentLength,
  requestHeadersProblem,
  responseHeadersProblem,
  trailersProblem,
} from './header-validation.ts';
import { RecentStreamIds } from './recent-stream-ids.ts';
import {
  type Http2Settings,
  advertisedDefaultSettings,
  applySettingsPayload,
  protocolDefaultSettings,
  settingsPairs,
} from './settings.ts';
import { Stream } from './stream.ts';
import { type StreamEvent, canReceive, canSend, nextStreamState } from './stream-state.ts';

export type { Http2Settings } from './settings.ts';

/** Where the connection writes. After `write`, memory may be reused once `writableLength` is 0: copy if you keep it. */
export interface Transport {
  write(chunk: Buffer): void;
  cork?(): void;
  uncork?(): void;
  readonly writableLength: number;
  end(): void;
  destroy(): void;
}

export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  now(): number;
}

export interface ConnectionOptions {
  role: 'server' | 'client';
  settings?: Partial<Http2Settings>;
  /** Our connection-level receive window, announced at start. */
  connectionWindowSize?: number;
  /**
   * Return connection-level window as soon as DATA arrives, leaving backpressure to the stream windows. A relay wants
   * this: one stream whose reader stalls must not use up the window that every other stream shares.
   */
  creditConnectionOnReceive?: boolean;
  settingsTimeoutMs?: number;
  prefaceTimeoutMs?: number;
  timers?: Timers;
}

export type ConnectionState =
  | { state: 'open' }
  | { state: 'draining'; since: number; initiatedBy: 'local' | 'peer' }
  | { state: 'closed'; error: Http2ConnectionError | null };

type InputPhase = 'preface' | 'first-settings' | 'frames' | 'stopped';

const realTimers: Timers = {
  setTimeout: (callback, ms) => {
    const handle = setTimeout(callback, ms);
    handle.unref();
    return handle;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
  now: () => Date.now(),
};

/** Pending output above this stops DATA framing until the socket drains: the peer's reading speed bounds memory. */
const OUTPUT_HIGH_WATER = 1024 * 1024;
/** Output a peer never reads (PING or SETTINGS floods) may not grow past this. */
const OUTPUT_HARD_LIMIT = 32 * 1024 * 1024;
const UNLIMITED_STREAMS = 0xffffffff;
const GRACEFUL_PING = Buffer.from('mlgoaway', 'latin1');
const EMPTY = Buffer.alloc(0);

export class Http2Connection implements FrameSink {
  context: unknown = null;
  readonly role: 'server' | 'client';
  readonly localSettings: Http2Settings;
  readonly remoteSettings: Http2Settings = protocolDefaultSettings();

  private readonly transport: Transport;
  private readonly handler: Http2Handler;
  private readonly timers: Timers;
  private readonly reader: FrameReader;
  private readonly writer = new FrameWriter();
  private readonly decoder: HpackDecoder;
  private readonly encoder = new HpackEncoder();
  private readonly headerBlock: HeaderBlockAssembler;
  private readonly streams = new Map<number, Stream>();
  private readonly resetByUs = new RecentStreamIds(4096);
  /** Streams with queued DATA waiting for connection window or socket room. */
  private waitingForConnection: Stream[] = [];
  private state: ConnectionState = { state: 'open' };
  private input: InputPhase;
  private prefaceBytesSeen = 0;
  private flushQueued = false;
  private endAfterFlush = false;
  private sendWindow = DEFAULT_INITIAL_WINDOW_SIZE;
  private receiveWindow = DEFAULT_INITIAL_WINDOW_SIZE;
  private readonly connectionWindowTarget: number;
  private connectionCreditToReturn = 0;
  private readonly creditConnectionOnReceive: boolean;
  private nextOwnStreamId: number;
  private highestPeerStreamId = 0;
  /** Peer streams above this id are ignored after our final GOAWAY; MAX until then. */
  private acceptStreamsUpTo = MAX_STREAM_ID;
  private peerSentGoaway = false;
  private remoteSettingsSeen = false;
  private peerActiveStreams = 0;
  private ownActiveStreams = 0;
  private settingsTimer: unknown = null;
  private prefaceTimer: unknown = null;
  private readonly settingsTimeoutMs: number;

  constructor(transport: Transport, handler: Http2Handler, options: ConnectionOptions) {
    this.transport = transport;
    this.handler = handler;
    this.role = options.role;
    this.timers = options.timers ?? realTimers;
    this.localSettings = { ...advertisedDefaultSettings(), ...options.settings, enablePush: false };
    this.connectionWindowTarget = options.connectionWindowSize ?? 16 * 1024 * 1024;
    this.settingsTimeoutMs = options.settingsTimeoutMs ?? 10_000;
    this.creditConnectionOnReceive = options.creditConnectionOnReceive ?? false;
    this.reader = new FrameReader(this.localSettings.maxFrameSize);
    this.decoder = new HpackDecoder(this.localSettings.headerTableSize, this.localSettings.maxHeaderListSize);
    this.headerBlock = new HeaderBlockAssembler(this.localSettings.maxHeaderListSize * 2 + 16 * 1024);
    this.nextOwnStreamId = this.role === 'client' ? 1 : 2;
    this.input = this.role === 'server' ? 'preface' : 'first-settings';
    if (this.role === 'server') {
      this.prefaceTimer = this.timers.setTimeout(() => {
        this.prefaceTimer = null;
        if (this.input === 'preface' || this.input === 'first-settings') {
          this.connectionError(ErrorCode.SETTINGS_TIMEOUT, 'no preface from the client in time');
        }
      }, options.prefaceTimeoutMs ?? 10_000);
    }
  }

  get lifecycle(): ConnectionState {
    return this.state;
  }

  get activeStreamCount(): number {
    return this.streams.size;
  }

  /** Sends our preface: the client magic (client role), our SETTINGS, and the connection window increase. */
  start(): void {
    if (this.role === 'client') this.writer.writeRaw(CONNECTION_PREFACE);
    this.writer.writeSettings(0, settingsPairs(this.localSettings));
    const increase = this.connectionWindowTarget - DEFAULT_INITIAL_WINDOW_SIZE;
    if (increase > 0) {
      this.writer.writeWindowUpdate(0, increase);
      this.receiveWindow += increase;
    }
    this.settingsTimer = this.timers.setTimeout(() => {
      this.settingsTimer = null;
      this.connectionError(ErrorCode.SETTINGS_TIMEOUT, 'SETTINGS not acknowledged in time');
    }, this.settingsTimeoutMs);
    this.requestFlush();
  }

  getStream(id: number): Stream | undefined {
    return this.streams.get(id);
  }

  canOpenStream(): boolean {
    return (
      this.state.state === 'open' &&
      this.ownActiveStreams < this.remoteSettings.maxConcurrentStreams &&
      this.nextOwnStreamId <= MAX_STREAM_ID
    );
  }

  /** Client role: opens a stream with request headers; null when the peer's limits or a GOAWAY forbid it. */
  openStream(headers: readonly string[], endStream: boolean): Stream | null {
    if (this.role !== 'client' || !this.canOpenStream()) return null;
    const stream = new Stream(
      this.nextOwnStreamId,
      false,
      this.remoteSettings.initialWindowSize,
      this.localSettings.initialWindowSize,
    );
    this.nextOwnStreamId += 2;
    this.streams.set(stream.id, stream);
    this.ownActiveStreams++;
    this.writeHeaderBlock(stream, headers, endStream);
    return stream;
  }

  /** Response headers (server) or any header block that is not trailers; `endStream` ends our side. */
  sendHeaders(stream: Stream, headers: readonly string[], endStream: boolean): void {
    if (!canSend(stream.state) && stream.state !== 'idle') return;
    this.writeHeaderBlock(stream, headers, endStream);
  }

  /** Queues DATA; it is framed as the send windows and the socket allow. The buffer is kept by reference. */
  sendData(stream: Stream, data: Buffer, endStream: boolean): void {
    if (!canSend(stream.state) || stream.endAfterQueue || stream.queuedTrailers !== null) return;
    if (data.length > 0) {
      stream.queuedData.push(data);
      stream.queuedBytes += data.length;
    }
    if (endStream) stream.endAfterQueue = true;
    this.pumpStream(stream);
  }

  /** Trailers: HEADERS with END_STREAM after every queued DATA byte. */
  sendTrailers(stream: Stream, headers: readonly string[]): void {
    if (!canSend(stream.state) || stream.endAfterQueue || stream.queuedTrailers !== null) return;
    stream.queuedTrailers = headers;
    this.pumpStream(stream);
  }

  /** Resets a stream; its queued output is dropped and no callback follows. */
  resetStream(stream: Stream, code: number): void {
    if (stream.state === 'closed' || !this.streams.has(stream.id)) return;
    this.writer.writeRstStream(stream.id, code);
    this.resetByUs.add(stream.id);
    this.forgetStream(stream);
    this.requestFlush();
    this.closeIfIdle();
  }

  /**
   * Resets the stream once everything queued for it has been framed: a response that an endpoint ended with
   * RST_STREAM(NO_ERROR) reaches the client whole, with the reset behind its last byte (RFC 9113 §8.1).
   */
  resetAfterQueued(stream: Stream, code: number): void {
    if (!this.streams.has(stream.id)) return;
    stream.resetAfterQueue = code;
    this.pumpStream(stream);
  }

  /** The handler processed `bytes` received DATA bytes on `stream`: give the peer that much window back. */
  consume(stream: Stream, consumed: number): void {
    // Bytes of a stream that already ended were returned to the connection window when it ended.
    const bytes = Math.min(consumed, stream.unconsumedBytes);
    if (bytes <= 0) return;
    stream.unconsumedBytes -= bytes;
    if (this.streams.has(stream.id) && canReceive(stream.state)) {
      stream.creditToReturn += bytes;
      if (stream.creditToReturn >= this.localSettings.initialWindowSize >>> 1) {
        this.writer.writeWindowUpdate(stream.id, stream.creditToReturn);
        stream.receiveWindow += stream.creditToReturn;
        stream.creditToReturn = 0;
        this.requestFlush();
      }
    }
    if (!this.creditConnectionOnReceive) this.returnConnectionCredit(bytes);
  }

  ping(): void {
    this.writer.writePing(0, Buffer.from('mlping00', 'latin1'));
    this.requestFlush();
  }

  /**
   * Graceful shutdown: GOAWAY(2^31-1) and a PING; when the PING comes back every stream the peer opened before our
   * GOAWAY reached it is known, so the final GOAWAY names the real last stream. Closes once no stream remains.
   */
  shutdown(): void {
    if (this.state.state !== 'open') {
      this.closeIfIdle();
      return;
    }
    this.state = { state: 'draining', since: this.timers.now(), initiatedBy: 'local' };
    if (this.role === 'server') {
      this.writer.writeGoaway(MAX_STREAM_ID, ErrorCode.NO_ERROR, null);
      this.writer.writePing(0, GRACEFUL_PING);
    } else {
      this.sendFinalGoaway(ErrorCode.NO_ERROR, null);
    }
    this.requestFlush();
    this.closeIfIdle();
  }

  /** Immediate GOAWAY naming the last stream we processed. With an error code, the connection closes at once. */
  goAway(code: number, debug?: string): void {
    if (this.state.state === 'closed') return;
    if (code !== ErrorCode.NO_ERROR) {
      this.connectionError(code, debug ?? errorCodeName(code), debug);
      return;
    }
    if (this.state.state === 'open') this.state = { state: 'draining', since: this.timers.now(), initiatedBy: 'local' };
    this.sendFinalGoaway(code, debug === undefined ? null : Buffer.from(debug));
    this.requestFlush();
    this.closeIfIdle();
  }

  /** Abrupt close: no GOAWAY, streams reset with CANCEL. */
  destroy(): void {
    if (this.state.state === 'closed') return;
    this.close(new Http2ConnectionError(ErrorCode.CANCEL, 'connection destroyed', false), ErrorCode.CANCEL, false);
    this.transport.destroy();
  }

  receive(chunk: Buffer): void {
    if (this.input === 'stopped') return;
    if (this.input === 'preface') {
      chunk = this.consumePreface(chunk);
      if (chunk.length === 0) return;
    }
    this.reader.feed(chunk, this);
  }

  transportDrained(): void {
    this.pumpWaitingStreams();
  }

  transportClosed(): void {
    if (this.state.state === 'closed') return;
    this.input = 'stopped';
    const clean = this.streams.size === 0;
    const error = clean ? null : new Http2ConnectionError(ErrorCode.INTERNAL_ERROR, 'transport closed with streams open', true);
    this.close(error, ErrorCode.INTERNAL_ERROR, false);
  }

  /** Writes all pending output in one go (called by the flush scheduler once per event-loop turn). */
  flush(): void {
    this.flushQueued = false;
    // After close only the final flush (GOAWAY, then end) may write; a flush scheduled earlier must not write after it.
    if (this.state.state === 'closed' && !this.endAfterFlush) return;
    const segments = this.writer.take();
    if (segments.length === 1) {
      this.transport.write(segments[0]);
    } else if (segments.length > 1) {
      this.transport.cork?.();
      for (let i = 0; i < segments.length; i++) this.transport.write(segments[i]);
      this.transport.uncork?.();
    }
    this.writer.afterWrite(this.transport.writableLength === 0);
    if (this.endAfterFlush) {
      this.endAfterFlush = false;
      this.transport.end();
    } else if (this.transport.writableLength > OUTPUT_HARD_LIMIT) {
      this.connectionError(ErrorCode.ENHANCE_YOUR_CALM, 'peer does not read its output');
    }
  }

  // ---- input ----

  onOversizedFrame(type: number, _streamId: number, length: number): void {
    this.connectionError(ErrorCode.FRAME_SIZE_ERROR, `frame of type ${type} with ${length} bytes exceeds SETTINGS_MAX_FRAME_SIZE`);
  }

  onFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
    if (this.input === 'stopped') return;
    if (this.headerBlock.active && type !== FrameType.CONTINUATION) {
      this.connectionError(ErrorCode.PROTOCOL_ERROR, 'frame interleaved in a header block');
      return;
    }
    if (this.input === 'first-settings') {
      if (type !== FrameType.SETTINGS || (flags & Flag.ACK) !== 0) {
        this.connectionError(ErrorCode.PROTOCOL_ERROR, 'first frame is not SETTINGS');
        return;
      }
      this.input = 'frames';
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
        return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'PUSH_PROMISE received but push is disabled');
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
        this.connectionError(ErrorCode.PROTOCOL_ERROR, 'invalid connection preface');
        return EMPTY;
      }
    }
    this.prefaceBytesSeen += take;
    if (this.prefaceBytesSeen < CONNECTION_PREFACE.length) return EMPTY;
    this.input = 'first-settings';
    return chunk.subarray(take);
  }

  private onDataFrame(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on stream 0');
    const frameLength = payload.length;
    let data = payload;
    if ((flags & Flag.PADDED) !== 0) {
      if (payload.length < 1 || payload[0] >= payload.length) {
        return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'DATA padding exceeds the payload');
      }
      data = payload.subarray(1, payload.length - payload[0]);
    }
    if (frameLength > this.receiveWindow) {
      return this.connectionError(ErrorCode.FLOW_CONTROL_ERROR, 'DATA exceeds the connection window');
    }
    this.receiveWindow -= frameLength;
    const stream = this.streams.get(streamId);
    if (stream === undefined || !canReceive(stream.state)) {
      this.returnConnectionCredit(frameLength);
      if (stream === undefined && this.isIdleStreamId(streamId)) {
        return this.connectionError(ErrorCode.PROTOCOL_ERROR, `DATA on idle stream ${streamId}`);
      }
      if (stream === undefined && this.resetByUs.has(streamId)) return;
      // Streams the peer opened above our final GOAWAY's last-stream-id are ignored, frames and all (RFC 9113 §6.8).
      if (stream === undefined && streamId > this.acceptStreamsUpTo && (streamId & 1) === (this.role === 'server' ? 1 : 0)) return;
      return this.streamError(streamId, stream, ErrorCode.STREAM_CLOSED, 'DATA on a closed stream');
    }
    if (frameLength > stream.receiveWindow) {
      this.returnConnectionCredit(frameLength);
      return this.streamError(streamId, stream, ErrorCode.FLOW_CONTROL_ERROR, 'DATA exceeds the stream window');
    }
    stream.receiveWindow -= frameLength;
    // Padding is consumed at once; the data bytes are returned when the handler consumes them.
    if (this.creditConnectionOnReceive) this.returnConnectionCredit(frameLength);
    else if (frameLength > data.length) this.returnConnectionCredit(frameLength - data.length);
    stream.unconsumedBytes += data.length;
    const endStream = (flags & Flag.END_STREAM) !== 0;
    if (stream.expectedLength >= 0) {
      stream.receivedLength += data.length;
      if (stream.receivedLength > stream.expectedLength || (endStream && stream.receivedLength !== stream.expectedLength)) {
        return this.streamError(streamId, stream, ErrorCode.PROTOCOL_ERROR, 'DATA length differs from content-length');
      }
    }
    if (endStream) this.transition(stream, 'recv-end');
    this.handler.onData(this, stream, data, endStream);
    if (endStream) this.closeIfDone(stream);
  }

  private onHeadersFrame(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS on stream 0');
    let start = 0;
    let end = payload.length;
    if ((flags & Flag.PADDED) !== 0) {
      if (payload.length < 1) return this.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'HEADERS too short for padding');
      start = 1;
      end -= payload[0];
    }
    if ((flags & Flag.PRIORITY) !== 0) {
      if (end - start < 5) return this.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'HEADERS too short for priority');
      const dependency = payload.readUInt32BE(start) & 0x7fffffff;
      start += 5;
      if (dependency === streamId) {
        // Still decode the block later so HPACK state stays in sync; the stream itself is refused.
        this.headerBlock.begin(streamId, flags, payload.subarray(start, Math.max(start, end)), true);
        if ((flags & Flag.END_HEADERS) !== 0) this.finishHeaderBlock();
        return;
      }
    }
    if (end < start) return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS padding exceeds the payload');
    this.headerBlock.begin(streamId, flags, payload.subarray(start, end), false);
    if ((flags & Flag.END_HEADERS) !== 0) this.finishHeaderBlock();
  }

  private onContinuationFrame(flags: number, streamId: number, payload: Buffer): void {
    if (!this.headerBlock.active || this.headerBlock.streamId !== streamId) {
      return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'CONTINUATION without a header block in progress');
    }
    if (!this.headerBlock.append(payload)) {
      return this.connectionError(ErrorCode.ENHANCE_YOUR_CALM, 'header block too large');
    }
    if ((flags & Flag.END_HEADERS) !== 0) this.finishHeaderBlock();
  }

  private finishHeaderBlock(): void {
    const { streamId, flags, selfDependent } = this.headerBlock;
    const block = this.headerBlock.finish();
    let headers: string[] | null;
    try {
      headers = this.decoder.decode(block);
    } catch (error) {
      return this.connectionError(ErrorCode.COMPRESSION_ERROR, `HPACK: ${(error as Error).message}`);
    }
    const endStream = (flags & Flag.END_STREAM) !== 0;
    const stream = this.streams.get(streamId);
    if (stream === undefined) return this.onHeadersForNewStream(streamId, headers, endStream, selfDependent);
    if (selfDependent) return this.streamError(streamId, stream, ErrorCode.PROTOCOL_ERROR, 'stream depends on itself');
    if (!canReceive(stream.state)) return this.streamError(streamId, stream, ErrorCode.STREAM_CLOSED, 'HEADERS on a half-closed stream');
    if (headers === null) return this.streamError(streamId, stream, ErrorCode.PROTOCOL_ERROR, 'header list too large');
    const isHead = this.role === 'client' && stream.headerBlocksReceived === 0;
    if (isHead) {
      const problem = responseHeadersProblem(headers);
      if (problem !== null) return this.streamError(streamId, stream, ErrorCode.PROTOCOL_ERROR, problem);
      // Informational (1xx) responses are skipped: the real head follows.
      if (headers[1].charCodeAt(0) === 0x31) return;
      stream.expectedLength = declaredContentLength(headers);
      if (stream.expectedLength === -2) return this.streamError(streamId, stream, ErrorCode.PROTOCOL_ERROR, 'bad content-length');
    } else {
      if (!endStream) return this.streamError(streamId, stream, ErrorCode.PROTOCOL_ERROR, 'trailers without END_STREAM');
      const problem = trailersProblem(headers);
      if (problem !== null) return this.streamError(streamId, stream, ErrorCode.PROTOCOL_ERROR, problem);
    }
    stream.headerBlocksReceived++;
    if (endStream) {
      if (stream.expectedLength > 0 && stream.receivedLength !== stream.expectedLength) {
        return this.streamError(streamId, stream, ErrorCode.PROTOCOL_ERROR, 'DATA length differs from content-length');
      }
      this.transition(stream, 'recv-end');
    }
    this.handler.onHeaders(this, stream, headers, endStream, !isHead);
    if (endStream) this.closeIfDone(stream);
  }

  private onHeadersForNewStream(streamId: number, headers: string[] | null, endStream: boolean, selfDependent: boolean): void {
    const peerInitiated = this.role === 'server' ? (streamId & 1) === 1 : (streamId & 1) === 0;
    if (!peerInitiated || this.role === 'client') {
      if (this.isIdleStreamId(streamId)) return this.connectionError(ErrorCode.PROTOCOL_ERROR, `HEADERS on idle stream ${streamId}`);
      if (this.resetByUs.has(streamId)) return;
      return this.connectionError(ErrorCode.STREAM_CLOSED, `HEADERS on closed stream ${streamId}`);
    }
    if (streamId <= this.highestPeerStreamId) {
      // Trailers of a stream we reset, or of one ignored for being above our final GOAWAY (RFC 9113 §6.8).
      if (this.resetByUs.has(streamId) || streamId > this.acceptStreamsUpTo) return;
      return this.connectionError(ErrorCode.STREAM_CLOSED, `HEADERS on closed stream ${streamId}`);
    }
    this.highestPeerStreamId = streamId;
    // After our final GOAWAY, new streams are ignored (the peer knows they were not processed).
    if (streamId > this.acceptStreamsUpTo) return;
    if (selfDependent) return this.streamError(streamId, undefined, ErrorCode.PROTOCOL_ERROR, 'stream depends on itself');
    if (this.peerActiveStreams >= this.localSettings.maxConcurrentStreams) {
      return this.streamError(streamId, undefined, ErrorCode.REFUSED_STREAM, 'too many concurrent streams');
    }
    const stream = new Stream(streamId, true, this.remoteSettings.initialWindowSize, this.localSettings.initialWindowSize);
    if (headers === null) return this.refuseOversizedHeaders(stream);
    const problem = requestHeadersProblem(headers);
    if (problem !== null) return this.streamError(streamId, undefined, ErrorCode.PROTOCOL_ERROR, problem);
    stream.expectedLength = declaredContentLength(headers);
    if (stream.expectedLength === -2 || (endStream && stream.expectedLength > 0)) {
      return this.streamError(streamId, undefined, ErrorCode.PROTOCOL_ERROR, 'bad content-length');
    }
    stream.headerBlocksReceived = 1;
    this.streams.set(streamId, stream);
    this.peerActiveStreams++;
    this.transition(stream, 'recv-headers');
    if (endStream) this.transition(stream, 'recv-end');
    this.handler.onHeaders(this, stream, headers, endStream, false);
    if (endStream) this.closeIfDone(stream);
  }

  /** A request whose header list exceeds our limit gets 431 and no further processing (RFC 9113 §10.5.1). */
  private refuseOversizedHeaders(stream: Stream): void {
    this.streams.set(stream.id, stream);
    this.peerActiveStreams++;
    this.transition(stream, 'recv-headers');
    this.writeHeaderBlock(stream, [':status', '431'], true);
    if (this.streams.has(stream.id)) this.resetStream(stream, ErrorCode.NO_ERROR);
  }

  private onPriorityFrame(streamId: number, payload: Buffer): void {
    if (streamId === 0) return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'PRIORITY on stream 0');
    // RST_STREAM must not name an idle stream (RFC 9113 §6.4), so on one the stream error becomes a connection error (§5.4.1).
    const idle = !this.streams.has(streamId) && this.isIdleStreamId(streamId);
    if (payload.length !== 5) {
      if (idle) return this.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'PRIORITY length is not 5');
      return this.streamError(streamId, this.streams.get(streamId), ErrorCode.FRAME_SIZE_ERROR, 'PRIORITY length is not 5');
    }
    if ((payload.readUInt32BE(0) & 0x7fffffff) === streamId) {
      if (idle) return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'stream depends on itself');
      return this.streamError(streamId, this.streams.get(streamId), ErrorCode.PROTOCOL_ERROR, 'stream depends on itself');
    }
  }

  private onRstStreamFrame(streamId: number, payload: Buffer): void {
    if (streamId === 0) return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    if (payload.length !== 4) return this.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'RST_STREAM length is not 4');
    const stream = this.streams.get(streamId);
    if (stream === undefined) {
      if (this.isIdleStreamId(streamId)) return this.connectionError(ErrorCode.PROTOCOL_ERROR, `RST_STREAM on idle stream ${streamId}`);
      return;
    }
    const code = payload.readUInt32BE(0);
    this.forgetStream(stream);
    this.handler.onStreamReset(this, stream, code, true);
    this.closeIfIdle();
  }

  private onSettingsFrame(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if ((flags & Flag.ACK) !== 0) {
      if (payload.length !== 0) return this.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      if (this.settingsTimer !== null) {
        this.timers.clearTimeout(this.settingsTimer);
        this.settingsTimer = null;
      }
      return;
    }
    if (payload.length % 6 !== 0) return this.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS length not a multiple of 6');
    const previousWindow = this.remoteSettings.initialWindowSize;
    // The stream limit we assumed until now gives way to the RFC's "no limit" unless the peer names one.
    if (!this.remoteSettingsSeen) this.remoteSettings.maxConcurrentStreams = UNLIMITED_STREAMS;
    this.remoteSettingsSeen = true;
    const result = applySettingsPayload(this.remoteSettings, payload, this.role === 'client');
    if (!result.ok) return this.connectionError(result.code, result.reason);
    this.encoder.setMaxTableSize(this.remoteSettings.headerTableSize);
    const delta = this.remoteSettings.initialWindowSize - previousWindow;
    if (delta !== 0) {
      for (const stream of this.streams.values()) {
        stream.sendWindow += delta;
        if (stream.sendWindow > MAX_WINDOW_SIZE) {
          return this.connectionError(ErrorCode.FLOW_CONTROL_ERROR, 'INITIAL_WINDOW_SIZE change overflows a stream window');
        }
      }
    }
    this.writer.writeSettings(Flag.ACK, []);
    this.requestFlush();
    this.handler.onRemoteSettings(this);
    if (delta > 0) for (const stream of this.streams.values()) this.pumpStream(stream);
  }

  private onPingFrame(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'PING on a stream');
    if (payload.length !== 8) return this.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'PING length is not 8');
    if ((flags & Flag.ACK) === 0) {
      this.writer.writePing(Flag.ACK, payload);
      this.requestFlush();
      return;
    }
    if (payload.equals(GRACEFUL_PING) && this.state.state === 'draining' && this.acceptStreamsUpTo === MAX_STREAM_ID) {
      this.sendFinalGoaway(ErrorCode.NO_ERROR, null);
      this.requestFlush();
      this.closeIfIdle();
    }
  }

  private onGoawayFrame(streamId: number, payload: Buffer): void {
    if (streamId !== 0) return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'GOAWAY on a stream');
    if (payload.length < 8) return this.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'GOAWAY shorter than 8 bytes');
    const lastStreamId = payload.readUInt32BE(0) & 0x7fffffff;
    const code = payload.readUInt32BE(4);
    this.peerSentGoaway = true;
    if (this.state.state === 'open') this.state = { state: 'draining', since: this.timers.now(), initiatedBy: 'peer' };
    // Streams we opened above lastStreamId were never processed: they fail with REFUSED_STREAM and may be retried.
    for (const stream of [...this.streams.values()]) {
      if (!stream.openedByPeer && stream.id > lastStreamId) {
        this.forgetStream(stream);
        this.handler.onStreamReset(this, stream, ErrorCode.REFUSED_STREAM, true);
      }
    }
    this.handler.onGoaway(this, lastStreamId, code, payload.subarray(8));
    this.closeIfIdle();
  }

  private onWindowUpdateFrame(streamId: number, payload: Buffer): void {
    if (payload.length !== 4) return this.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'WINDOW_UPDATE length is not 4');
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    if (streamId === 0) {
      if (increment === 0) return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      this.sendWindow += increment;
      if (this.sendWindow > MAX_WINDOW_SIZE) return this.connectionError(ErrorCode.FLOW_CONTROL_ERROR, 'connection window above 2^31-1');
      this.pumpWaitingStreams();
      return;
    }
    const stream = this.streams.get(streamId);
    if (stream === undefined) {
      if (this.isIdleStreamId(streamId)) return this.connectionError(ErrorCode.PROTOCOL_ERROR, `WINDOW_UPDATE on idle stream ${streamId}`);
      return;
    }
    if (increment === 0) return this.streamError(streamId, stream, ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
    stream.sendWindow += increment;
    if (stream.sendWindow > MAX_WINDOW_SIZE) return this.streamError(streamId, stream, ErrorCode.FLOW_CONTROL_ERROR, 'stream window above 2^31-1');
    this.pumpStream(stream);
  }

  // ---- output ----

  private writeHeaderBlock(stream: Stream, headers: readonly string[], endStream: boolean): void {
    const block = this.encoder.encode(headers);
    const maxFrame = this.remoteSettings.maxFrameSize;
    const endFlag = endStream ? Flag.END_STREAM : 0;
    if (block.length <= maxFrame) {
      this.writer.writeFrame(FrameType.HEADERS, endFlag | Flag.END_HEADERS, stream.id, block);
    } else {
      this.writer.writeFrame(FrameType.HEADERS, endFlag, stream.id, block.subarray(0, maxFrame));
      for (let at = maxFrame; at < block.length; at += maxFrame) {
        const last = at + maxFrame >= block.length;
        this.writer.writeFrame(FrameType.CONTINUATION, last ? Flag.END_HEADERS : 0, stream.id, block.subarray(at, Math.min(at + maxFrame, block.length)));
      }
    }
    if (stream.state === 'idle') this.transition(stream, 'send-headers');
    if (endStream) this.transition(stream, 'send-end');
    this.requestFlush();
    if (endStream) this.closeIfDone(stream);
  }

  /** Frames as much queued DATA of `stream` as the windows and the output limit allow. */
  private pumpStream(stream: Stream): void {
    if (!this.streams.has(stream.id)) return;
    if (!canSend(stream.state)) {
      if (stream.resetAfterQueue >= 0) this.resetStream(stream, stream.resetAfterQueue);
      return;
    }
    let sent = 0;
    while (stream.queuedBytes > 0) {
      const room = Math.min(stream.sendWindow, this.sendWindow, this.remoteSettings.maxFrameSize || DEFAULT_MAX_FRAME_SIZE);
      if (room <= 0 || this.writer.pendingBytes + this.transport.writableLength > OUTPUT_HIGH_WATER) {
        // Blocked on the stream's own window: its WINDOW_UPDATE pumps it again. Otherwise wait for the connection.
        if (stream.sendWindow > 0 && !this.waitingForConnection.includes(stream)) this.waitingForConnection.push(stream);
        break;
      }
      const head = stream.queuedData[0];
      let chunk = head;
      if (head.length > room) {
        chunk = head.subarray(0, room);
        stream.queuedData[0] = head.subarray(room);
      } else {
        stream.queuedData.shift();
      }
      stream.queuedBytes -= chunk.length;
      stream.sendWindow -= chunk.length;
      this.sendWindow -= chunk.length;
      sent += chunk.length;
      const last = stream.queuedBytes === 0 && stream.endAfterQueue;
      this.writer.writeData(last ? Flag.END_STREAM : 0, stream.id, chunk);
      if (last) stream.endAfterQueue = false;
      if (last) this.transition(stream, 'send-end');
    }
    // Reported before trailers are framed: writing them can close the stream, and no callback follows a close.
    if (sent > 0) this.handler.onDataSent(this, stream, sent);
    if (stream.queuedBytes === 0) {
      if (stream.queuedTrailers !== null) {
        const trailers = stream.queuedTrailers;
        stream.queuedTrailers = null;
        this.writeHeaderBlock(stream, trailers, true);
      } else if (stream.endAfterQueue) {
        stream.endAfterQueue = false;
        this.writer.writeData(Flag.END_STREAM, stream.id, EMPTY);
        this.transition(stream, 'send-end');
      }
    }
    if (sent > 0 || stream.state !== 'open') this.requestFlush();
    this.closeIfDone(stream);
    const drained = stream.queuedBytes === 0 && stream.queuedTrailers === null && !stream.endAfterQueue;
    if (drained && stream.resetAfterQueue >= 0) this.resetStream(stream, stream.resetAfterQueue);
  }

  private pumpWaitingStreams(): void {
    const waiting = this.waitingForConnection;
    if (waiting.length === 0) return;
    this.waitingForConnection = [];
    for (let i = 0; i < waiting.length; i++) this.pumpStream(waiting[i]);
  }

  private sendFinalGoaway(code: number, debug: Buffer | null): void {
    this.acceptStreamsUpTo = this.highestPeerStreamId;
    this.writer.writeGoaway(this.highestPeerStreamId, code, debug);
  }

  private returnConnectionCredit(bytes: number): void {
    this.connectionCreditToReturn += bytes;
    if (this.connectionCreditToReturn >= this.connectionWindowTarget >>> 1) {
      this.writer.writeWindowUpdate(0, this.connectionCreditToReturn);
      this.receiveWindow += this.connectionCreditToReturn;
      this.connectionCreditToReturn = 0;
      this.requestFlush();
    }
  }

  private requestFlush(): void {
    if (this.flushQueued || this.state.state === 'closed') return;
    this.flushQueued = true;
    scheduleFlush(this);
  }

  // ---- stream and connection lifecycle ----

  private transition(stream: Stream, event: StreamEvent): void {
    const next = nextStreamState(stream.state, event);
    if (next === null) throw new Error(`illegal stream transition ${stream.state} --${event}--> (stream ${stream.id})`);
    stream.state = next;
  }

  private closeIfDone(stream: Stream): void {
    if (stream.state !== 'closed' || !this.streams.has(stream.id)) return;
    this.forgetStream(stream);
    this.handler.onStreamClose(this, stream);
    this.closeIfIdle();
  }

  /** Removes a stream (reset or closed) and drops anything still queued for it. */
  private forgetStream(stream: Stream): void {
    if (!this.streams.delete(stream.id)) return;
    stream.state = 'closed';
    stream.queuedData.length = 0;
    stream.queuedBytes = 0;
    stream.queuedTrailers = null;
    if (stream.openedByPeer) this.peerActiveStreams--;
    else this.ownActiveStreams--;
    // Bytes of this stream the handler never consumed would otherwise hold the connection window forever.
    if (stream.unconsumedBytes > 0 && !this.creditConnectionOnReceive) this.returnConnectionCredit(stream.unconsumedBytes);
    stream.unconsumedBytes = 0;
    const waitingIndex = this.waitingForConnection.indexOf(stream);
    if (waitingIndex >= 0) this.waitingForConnection.splice(waitingIndex, 1);
    // No closeIfIdle() here: callers tell the handler about the stream first, so onConnectionClose comes last.
  }

  /** Stream error: RST_STREAM with `code`, and the handler hears of it when the stream was known to it. */
  private streamError(streamId: number, stream: Stream | undefined, code: number, _reason: string): void {
    this.writer.writeRstStream(streamId, code);
    this.resetByUs.add(streamId);
    this.requestFlush();
    if (stream !== undefined && this.streams.has(streamId)) {
      this.forgetStream(stream);
      this.handler.onStreamReset(this, stream, code, false);
      this.closeIfIdle();
    }
  }

  private isIdleStreamId(streamId: number): boolean {
    const ours = this.role === 'client' ? (streamId & 1) === 1 : (streamId & 1) === 0;
    return ours ? streamId >= this.nextOwnStreamId : streamId > this.highestPeerStreamId;
  }

  private closeIfIdle(): void {
    if (this.state.state !== 'draining' || this.streams.size > 0) return;
    // Done once our final GOAWAY is out, or once the peer said it is going away too (a client closing its end
    // may never answer the PING of a graceful shutdown).
    const finalGoawayDone = this.acceptStreamsUpTo !== MAX_STREAM_ID || this.role === 'client';
    if (!finalGoawayDone && !this.peerSentGoaway) return;
    this.close(null, ErrorCode.NO_ERROR, true);
  }

  private connectionError(code: number, reason: string, debug?: string): void {
    if (this.state.state === 'closed') return;
    this.sendFinalGoaway(code, Buffer.from(debug ?? reason));
    this.close(new Http2ConnectionError(code, reason, false), code, true);
  }

  /** Final: stops input, resets every stream, tells the handler, and (if it is still usable) ends the transport. */
  private close(error: Http2ConnectionError | null, streamCode: number, transportUsable: boolean): void {
    if (this.state.state === 'closed') return;
    this.input = 'stopped';
    this.reader.stop();
    for (const timer of [this.settingsTimer, this.prefaceTimer]) if (timer !== null) this.timers.clearTimeout(timer);
    this.settingsTimer = null;
    this.prefaceTimer = null;
    const open = [...this.streams.values()];
    this.streams.clear();
    this.waitingForConnection = [];
    this.state = { state: 'closed', error };
    for (const stream of open) {
      stream.state = 'closed';
      this.handler.onStreamReset(this, stream, streamCode, error?.byPeer ?? false);
    }
    this.handler.onConnectionClose(this, error);
    if (!transportUsable) return;
    this.endAfterFlush = true;
    this.flush();
  }
}
