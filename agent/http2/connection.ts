// One HTTP/2 connection in either role (RFC 9113): the API its user drives, stream and connection lifecycle (GOAWAY,
// graceful and immediate; protocol errors with the codes the RFC prescribes), and the batched flush of its output.
// Frame input, stream output, receive credit and header intake are collaborators, each given only what it needs.

import { CONNECTION_PREFACE, ErrorCode, MAX_STREAM_ID, errorCodeName } from './constants.ts';
import { backgroundClock, type Clock } from '../vocabulary/clock.ts';
import type { ConnectionOptions, Transport } from './connection-options.ts';
import type { ConnectionInput } from './connection-input.ts';
import { buildConnectionParts, type ConnectionOwner } from './connection-parts.ts';
import { FrameWriter } from './frame-writer.ts';
import { BatchedFlush } from './batched-flush.ts';
import { type Http2Handler, Http2ConnectionError } from './handler.ts';
import type { ReceiveWindow } from './receive-window.ts';
import { type Http2Settings, advertisedDefaultSettings, protocolDefaultSettings, settingsPairs } from './settings.ts';
import type { Stream } from './stream.ts';
import { canSend } from './stream-state.ts';
import type { StreamOutput } from './stream-output.ts';
import { StreamTable } from './stream-table.ts';

export type { Http2Settings } from './settings.ts';
export type { ConnectionOptions, Transport } from './connection-options.ts';

export type ConnectionState =
  | { state: 'open' }
  | { state: 'draining'; since: number; initiatedBy: 'local' | 'peer' }
  | { state: 'closed'; error: Http2ConnectionError | null };

const GRACEFUL_PING = Buffer.from('mlgoaway', 'latin1');
const USER_PING = Buffer.from('mlping00', 'latin1');

export class Http2Connection<C = unknown, S = unknown> {
  /** The handler's own slot for this connection (see Http2Handler). */
  context: C | null = null;
  readonly role: 'server' | 'client';
  readonly localSettings: Http2Settings;
  readonly remoteSettings: Http2Settings = protocolDefaultSettings();

  private readonly transport: Transport;
  private readonly handler: Http2Handler;
  private readonly timers: Clock;
  private readonly writer = new FrameWriter();
  private readonly streams: StreamTable;
  private readonly receiveWindow: ReceiveWindow;
  private readonly output: StreamOutput;
  private readonly input: ConnectionInput;
  private state: ConnectionState = { state: 'open' };
  private readonly flusher: BatchedFlush;
  private peerSentGoaway = false;
  private pingAckCallback: (() => void) | null = null;

  constructor(transport: Transport, handler: Http2Handler<C, S>, options: ConnectionOptions) {
    this.transport = transport;
    this.handler = handler;
    this.role = options.role;
    this.timers = options.clock ?? backgroundClock;
    this.localSettings = { ...advertisedDefaultSettings(), ...options.settings, enablePush: false };
    this.streams = new StreamTable(this.role);
    this.flusher = new BatchedFlush(this.writer, transport, {
      isClosed: () => this.state.state === 'closed',
      outputOverflowed: () => this.connectionError(ErrorCode.ENHANCE_YOUR_CALM, 'peer does not read its output'),
    });
    // The collaborators reach back only through these steps (closures: the methods stay private).
    const owner: ConnectionOwner = {
      connectionError: (code, reason) => this.connectionError(code, reason),
      streamError: (streamId, stream, code, reason) => this.streamError(streamId, stream, code, reason),
      forgetStream: (stream) => this.forgetStream(stream),
      closeIfDone: (stream) => this.closeIfDone(stream),
      closeIfIdle: () => this.closeIfIdle(),
      requestFlush: () => this.flusher.request(),
      resetStream: (stream, code) => this.resetStream(stream, code),
      pingAcknowledged: (payload) => this.pingAcknowledged(payload),
      peerGoingAway: () => this.peerGoingAway(),
    };
    const { role, localSettings, remoteSettings, writer, streams } = this;
    const shared = { connection: this, handler, role, localSettings, remoteSettings, clock: this.timers, writer, streams, transport };
    const parts = buildConnectionParts(shared, options, owner);
    this.receiveWindow = parts.receiveWindow;
    this.output = parts.output;
    this.input = parts.input;
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
    this.receiveWindow.announce();
    this.input.awaitSettingsAck();
    this.flusher.request();
  }

  getStream(id: number): Stream | undefined {
    return this.streams.get(id);
  }

  /** The peer sent GOAWAY: it closes this connection, and streams above its last stream id were refused for that. */
  get goingAwayByPeer(): boolean {
    return this.peerSentGoaway;
  }

  canOpenStream(): boolean {
    return this.state.state === 'open' && this.streams.canOpen(this.remoteSettings.maxConcurrentStreams);
  }

  /** Client role: opens a stream with request headers; null when the peer's limits or a GOAWAY forbid it. */
  openStream(headers: readonly string[], endStream: boolean): Stream<S> | null {
    if (this.role !== 'client' || !this.canOpenStream()) return null;
    const stream = this.streams.open(this.remoteSettings.initialWindowSize, this.localSettings.initialWindowSize);
    this.output.writeHeaderBlock(stream, headers, endStream);
    // The table stores streams untyped; a new stream's context is null, which is a valid Stream<S> for any S.
    return stream as Stream<S>;
  }

  /** Response headers (server) or any header block that is not trailers; `endStream` ends our side. */
  sendHeaders(stream: Stream, headers: readonly string[], endStream: boolean): void {
    if (!canSend(stream.state) && stream.state !== 'idle') return;
    this.output.writeHeaderBlock(stream, headers, endStream);
  }

  /** Queues DATA; it is framed as the send windows and the socket allow. The buffer is kept by reference. */
  sendData(stream: Stream, data: Buffer, endStream: boolean): void {
    this.output.queueData(stream, data, endStream);
  }

  /** Trailers: HEADERS with END_STREAM after every queued DATA byte. */
  sendTrailers(stream: Stream, headers: readonly string[]): void {
    this.output.queueTrailers(stream, headers);
  }

  /** Resets a stream; its queued output is dropped and no callback follows. */
  resetStream(stream: Stream, code: number): void {
    if (stream.state === 'closed' || !this.streams.has(stream.id)) return;
    this.writer.writeRstStream(stream.id, code);
    this.streams.resetByUs.add(stream.id);
    this.forgetStream(stream);
    this.flusher.request();
    this.closeIfIdle();
  }

  /**
   * Resets the stream once everything queued for it has been framed: a response that an endpoint ended with
   * RST_STREAM(NO_ERROR) reaches the client whole, with the reset behind its last byte (RFC 9113 §8.1).
   */
  resetAfterQueued(stream: Stream, code: number): void {
    this.output.resetAfterQueued(stream, code);
  }

  /** The handler processed `bytes` received DATA bytes on `stream`: give the peer that much window back. */
  consume(stream: Stream, consumed: number): void {
    this.receiveWindow.consume(stream, consumed, this.streams.has(stream.id));
  }

  /**
   * Sends a PING; `onAck` runs when the peer acknowledges it (a keepalive learns that the peer still reads). One at a
   * time: every PING of ours carries the same payload, so a second one sent before the first came back takes over
   * the callback.
   */
  ping(onAck?: () => void): void {
    this.writer.writePing(0, USER_PING);
    this.pingAckCallback = onAck ?? null;
    this.flusher.request();
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
    this.flusher.request();
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
    this.flusher.request();
    this.closeIfIdle();
  }

  /** Abrupt close: no GOAWAY, streams reset with CANCEL. */
  destroy(): void {
    if (this.state.state === 'closed') return;
    this.close(new Http2ConnectionError(ErrorCode.CANCEL, 'connection destroyed', false), ErrorCode.CANCEL, false);
    this.transport.destroy();
  }

  receive(chunk: Buffer): void {
    this.input.receive(chunk);
  }

  transportDrained(): void {
    this.output.pumpWaiting();
  }

  transportClosed(): void {
    if (this.state.state === 'closed') return;
    const clean = this.streams.size === 0;
    const error = clean ? null : new Http2ConnectionError(ErrorCode.INTERNAL_ERROR, 'transport closed with streams open', true);
    this.close(error, ErrorCode.INTERNAL_ERROR, false);
  }

  /** Writes all pending output now (the flush scheduler does this once per event-loop turn). */
  flush(): void {
    this.flusher.flush();
  }

  // ---- stream and connection lifecycle ----

  private pingAcknowledged(payload: Buffer): void {
    if (payload.equals(USER_PING)) {
      const callback = this.pingAckCallback;
      this.pingAckCallback = null;
      callback?.();
      return;
    }
    if (payload.equals(GRACEFUL_PING) && this.state.state === 'draining' && !this.streams.finalGoawaySent) {
      this.sendFinalGoaway(ErrorCode.NO_ERROR, null);
      this.flusher.request();
      this.closeIfIdle();
    }
  }

  private peerGoingAway(): void {
    this.peerSentGoaway = true;
    if (this.state.state === 'open') this.state = { state: 'draining', since: this.timers.now(), initiatedBy: 'peer' };
  }

  private sendFinalGoaway(code: number, debug: Buffer | null): void {
    this.writer.writeGoaway(this.streams.stopAcceptingPeerStreams(), code, debug);
  }

  private closeIfDone(stream: Stream): void {
    if (stream.state !== 'closed' || !this.streams.has(stream.id)) return;
    this.forgetStream(stream);
    this.handler.onStreamClose(this, stream);
    this.closeIfIdle();
  }

  /** Removes a stream (reset or closed) and drops anything still queued for it. */
  private forgetStream(stream: Stream): void {
    if (!this.streams.remove(stream)) return;
    stream.state = 'closed';
    this.output.forget(stream);
    // Bytes of this stream the handler never consumed would otherwise hold the connection window forever.
    this.receiveWindow.releaseStream(stream);
    // No closeIfIdle() here: callers tell the handler about the stream first, so onConnectionClose comes last.
  }

  /** Stream error: RST_STREAM with `code`, and the handler hears of it when the stream was known to it. */
  private streamError(streamId: number, stream: Stream | undefined, code: number, _reason: string): void {
    this.writer.writeRstStream(streamId, code);
    this.streams.resetByUs.add(streamId);
    this.flusher.request();
    if (stream !== undefined && this.streams.has(streamId)) {
      this.forgetStream(stream);
      this.handler.onStreamReset(this, stream, code, false);
      this.closeIfIdle();
    }
  }

  private closeIfIdle(): void {
    if (this.state.state !== 'draining' || this.streams.size > 0) return;
    // Done once our final GOAWAY is out, or once the peer said it is going away too (a client closing its end
    // may never answer the PING of a graceful shutdown).
    const finalGoawayDone = this.streams.finalGoawaySent || this.role === 'client';
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
    this.input.stop();
    const open = this.streams.removeAll();
    this.output.clear();
    this.state = { state: 'closed', error };
    for (const stream of open) {
      stream.state = 'closed';
      this.handler.onStreamReset(this, stream, streamCode, error?.byPeer ?? false);
    }
    this.handler.onConnectionClose(this, error);
    if (!transportUsable) return;
    this.flusher.flushAndEnd();
  }
}
