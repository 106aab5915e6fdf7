// Our send side: header blocks, and each stream's queued DATA and trailers framed as the peer's windows and the
// socket allow, with the connection send window and the list of streams waiting for it.

import { DEFAULT_INITIAL_WINDOW_SIZE, DEFAULT_MAX_FRAME_SIZE, Flag, FrameType, MAX_WINDOW_SIZE } from './constants.ts';
import type { Http2Connection } from './connection.ts';
import type { FrameWriter } from './frame-writer.ts';
import type { Http2Handler } from './handler.ts';
import { HpackEncoder } from './hpack-encoder.ts';
import type { Http2Settings } from './settings.ts';
import type { Stream } from './stream.ts';
import { canSend, transitionStream } from './stream-state.ts';
import type { StreamTable } from './stream-table.ts';
import { NO_CHUNKS, withChunk } from '../vocabulary/chunk-list.ts';

/** Pending output above this stops DATA framing until the socket drains: the peer's reading speed bounds memory. */
const OUTPUT_HIGH_WATER = 1024 * 1024;
const EMPTY = Buffer.alloc(0);

/** The lifecycle steps output may take on its connection. */
export interface OutputOwner {
  requestFlush(): void;
  /** Forgets `stream` and tells the handler if it is closed now. */
  closeIfDone(stream: Stream): void;
  resetStream(stream: Stream, code: number): void;
}

/** Whether output was queued for `stream` during its onDataSent (a function, so the read is not narrowed away). */
function rerunRequested(stream: Stream): boolean {
  return stream.pump === 'rerun';
}

export class StreamOutput {
  /** Bytes we may still send on the connection (the peer's connection window). */
  private sendWindow = DEFAULT_INITIAL_WINDOW_SIZE;
  /** Streams with queued DATA waiting for connection window or socket room. */
  private waitingForConnection: Stream[] = [];
  private readonly encoder = new HpackEncoder();
  /** Passed to the handler's callbacks, nothing else. */
  private readonly connection: Http2Connection;
  private readonly handler: Http2Handler;
  private readonly writer: FrameWriter;
  private readonly transport: { readonly writableLength: number };
  private readonly remoteSettings: Http2Settings;
  private readonly streams: StreamTable;
  private readonly owner: OutputOwner;

  constructor(
    connection: Http2Connection,
    handler: Http2Handler,
    writer: FrameWriter,
    transport: { readonly writableLength: number },
    remoteSettings: Http2Settings,
    streams: StreamTable,
    owner: OutputOwner,
  ) {
    this.connection = connection;
    this.handler = handler;
    this.writer = writer;
    this.transport = transport;
    this.remoteSettings = remoteSettings;
    this.streams = streams;
    this.owner = owner;
  }

  /** Queues DATA for `stream` (kept by reference) and frames what the windows allow. */
  queueData(stream: Stream, data: Buffer, endStream: boolean): void {
    if (!canSend(stream.state) || stream.endAfterQueue || stream.queuedTrailers !== null) return;
    if (data.length > 0) {
      stream.queuedData = withChunk(stream.queuedData, data);
      stream.queuedBytes += data.length;
    }
    if (endStream) stream.endAfterQueue = true;
    this.pump(stream);
  }

  /** Queues trailers: HEADERS with END_STREAM after every queued DATA byte. */
  queueTrailers(stream: Stream, headers: readonly string[]): void {
    if (!canSend(stream.state) || stream.endAfterQueue || stream.queuedTrailers !== null) return;
    stream.queuedTrailers = headers;
    this.pump(stream);
  }

  /** Resets `stream` with `code` once everything queued for it is framed. */
  resetAfterQueued(stream: Stream, code: number): void {
    if (!this.streams.has(stream.id)) return;
    stream.resetAfterQueue = code;
    this.pump(stream);
  }

  /** A header block goes out at once (HEADERS, then CONTINUATIONs past the peer's frame size): no window applies. */
  writeHeaderBlock(stream: Stream, headers: readonly string[], endStream: boolean): void {
    const length = this.encoder.encodeInPlace(headers);
    const block = this.encoder.output;
    const maxFrame = this.remoteSettings.maxFrameSize;
    const endFlag = endStream ? Flag.END_STREAM : 0;
    if (length <= maxFrame) {
      this.writer.writeFrameFrom(FrameType.HEADERS, endFlag | Flag.END_HEADERS, stream.id, block, 0, length);
    } else {
      this.writer.writeFrameFrom(FrameType.HEADERS, endFlag, stream.id, block, 0, maxFrame);
      for (let at = maxFrame; at < length; at += maxFrame) {
        const last = at + maxFrame >= length;
        this.writer.writeFrameFrom(FrameType.CONTINUATION, last ? Flag.END_HEADERS : 0, stream.id, block, at, Math.min(at + maxFrame, length));
      }
    }
    if (stream.state === 'idle') transitionStream(stream, 'send-headers');
    if (endStream) transitionStream(stream, 'send-end');
    this.owner.requestFlush();
    if (endStream) this.owner.closeIfDone(stream);
  }

  /** The peer's SETTINGS_HEADER_TABLE_SIZE bounds our encoder's dynamic table. */
  setHeaderTableSize(size: number): void {
    this.encoder.setMaxTableSize(size);
  }

  /** WINDOW_UPDATE on stream 0; false when the window passed 2^31-1 (a connection error for the caller). */
  growConnectionWindow(increment: number): boolean {
    this.sendWindow += increment;
    if (this.sendWindow > MAX_WINDOW_SIZE) return false;
    this.pumpWaiting();
    return true;
  }

  /** WINDOW_UPDATE on `stream`; false when its window passed 2^31-1 (a stream error for the caller). */
  growStreamWindow(stream: Stream, increment: number): boolean {
    stream.sendWindow += increment;
    if (stream.sendWindow > MAX_WINDOW_SIZE) return false;
    this.pump(stream);
    return true;
  }

  /**
   * The peer's SETTINGS_INITIAL_WINDOW_SIZE changed by `delta`: every stream window moves with it (RFC 9113
   * §6.9.2). False when one passed 2^31-1 (a connection error for the caller).
   */
  shiftStreamWindows(delta: number): boolean {
    for (const stream of this.streams.values()) {
      stream.sendWindow += delta;
      if (stream.sendWindow > MAX_WINDOW_SIZE) return false;
    }
    return true;
  }

  pumpAll(): void {
    for (const stream of this.streams.values()) this.pump(stream);
  }

  /** The connection window grew or the socket drained: streams blocked on either try again, in order. */
  pumpWaiting(): void {
    const waiting = this.waitingForConnection;
    if (waiting.length === 0) return;
    this.waitingForConnection = [];
    for (let i = 0; i < waiting.length; i++) this.pump(waiting[i]);
  }

  /**
   * Frames as much queued output of `stream` as the windows and the output limit allow. A call made from inside this
   * stream's onDataSent (a handler queuing more) is not run there: the pump that made the callback frames the new
   * output once the callback returns, so framing never nests and onDataSent calls for one stream never recurse.
   */
  pump(stream: Stream): void {
    if (stream.pump !== 'idle') {
      stream.pump = 'rerun';
      return;
    }
    if (!this.streams.has(stream.id)) return;
    if (!canSend(stream.state)) {
      if (stream.resetAfterQueue >= 0) this.owner.resetStream(stream, stream.resetAfterQueue);
      return;
    }
    let sentInAll = 0;
    for (;;) {
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
        if (last) transitionStream(stream, 'send-end');
      }
      if (sent === 0) break;
      sentInAll += sent;
      // Reported before trailers are framed: writing them can close the stream, and no callback follows a close.
      stream.pump = 'reporting';
      this.handler.onDataSent(this.connection, stream, sent);
      const queuedMeanwhile = rerunRequested(stream);
      stream.pump = 'idle';
      // The handler reset the stream (or the connection closed): its queue is gone and nothing more is framed.
      if (!this.streams.has(stream.id)) {
        this.owner.requestFlush();
        return;
      }
      if (!queuedMeanwhile) break;
    }
    if (stream.queuedBytes === 0) {
      if (stream.queuedTrailers !== null) {
        const trailers = stream.queuedTrailers;
        stream.queuedTrailers = null;
        this.writeHeaderBlock(stream, trailers, true);
      } else if (stream.endAfterQueue) {
        stream.endAfterQueue = false;
        this.writer.writeData(Flag.END_STREAM, stream.id, EMPTY);
        transitionStream(stream, 'send-end');
      }
    }
    if (sentInAll > 0 || stream.state !== 'open') this.owner.requestFlush();
    this.owner.closeIfDone(stream);
    const drained = stream.queuedBytes === 0 && stream.queuedTrailers === null && !stream.endAfterQueue;
    if (drained && stream.resetAfterQueue >= 0) this.owner.resetStream(stream, stream.resetAfterQueue);
  }

  /** The stream is gone (reset or closed): drop what is still queued for it. */
  forget(stream: Stream): void {
    stream.queuedData = NO_CHUNKS;
    stream.queuedBytes = 0;
    stream.queuedTrailers = null;
    const waitingIndex = this.waitingForConnection.indexOf(stream);
    if (waitingIndex >= 0) this.waitingForConnection.splice(waitingIndex, 1);
  }

  /** The connection closed: nothing waits any more. */
  clear(): void {
    this.waitingForConnection = [];
  }
}
