// A complete received header block: HPACK-decoded, checked as a request head, response head or trailers, and for a
// new peer stream the admission decision (stream ids, our GOAWAY, the concurrency limit, 431) before the handler sees it.
// On a server connection every stream refused or reset here counts against the client's flood limits (flood-guard.ts).

import { ErrorCode, Flag } from './constants.ts';
import type { Http2Connection } from './connection.ts';
import type { FloodGuard } from './flood-guard.ts';
import type { Http2Handler } from './handler.ts';
import {
  declaredContentLength,
  requestHeadersProblem,
  responseHeadersProblem,
  trailersProblem,
} from './header-validation.ts';
import { HpackDecoder } from './hpack-decoder.ts';
import type { Http2Settings } from './settings.ts';
import { Stream } from './stream.ts';
import { canReceive, transitionStream } from './stream-state.ts';
import type { StreamOutput } from './stream-output.ts';
import type { StreamTable } from './stream-table.ts';

/** The lifecycle steps header intake may take on its connection. */
export interface IncomingHeadersOwner {
  connectionError(code: number, reason: string): void;
  streamError(streamId: number, stream: Stream | undefined, code: number, reason: string): void;
  closeIfDone(stream: Stream): void;
  resetStream(stream: Stream, code: number): void;
}

export class IncomingHeaders {
  private readonly decoder: HpackDecoder;
  private readonly clientRole: boolean;
  /** Passed to the handler's callbacks, nothing else. */
  private readonly connection: Http2Connection;
  private readonly handler: Http2Handler;
  private readonly localSettings: Http2Settings;
  private readonly remoteSettings: Http2Settings;
  private readonly streams: StreamTable;
  /** Only for the 431 answer to a header list above our limit. */
  private readonly output: StreamOutput;
  private readonly owner: IncomingHeadersOwner;
  /** The client's flood limits (server role), given by ControlFrames, which owns them. */
  private flood: FloodGuard | null = null;
  // The last list that passed each check, and its content-length: a block the peer repeats decodes to the very same
  // list (hpack-repeats.ts), which need not be checked again.
  private checkedRequest: readonly string[] | null = null;
  private checkedRequestLength = -1;
  private checkedResponse: readonly string[] | null = null;
  private checkedResponseLength = -1;
  private checkedTrailers: readonly string[] | null = null;

  constructor(
    connection: Http2Connection,
    handler: Http2Handler,
    role: 'server' | 'client',
    localSettings: Http2Settings,
    remoteSettings: Http2Settings,
    streams: StreamTable,
    output: StreamOutput,
    owner: IncomingHeadersOwner,
  ) {
    this.connection = connection;
    this.handler = handler;
    this.clientRole = role === 'client';
    this.localSettings = localSettings;
    this.remoteSettings = remoteSettings;
    this.streams = streams;
    this.output = output;
    this.owner = owner;
    this.decoder = new HpackDecoder(localSettings.headerTableSize, localSettings.maxHeaderListSize);
  }

  /** Counts admitted and refused streams against `guard` from now on. */
  watchFloods(guard: FloodGuard | null): void {
    this.flood = guard;
  }

  /** The block of a HEADERS frame (and its CONTINUATIONs), `block[start, end)`, is complete: decode it, then deliver
   *  or refuse it. */
  complete(streamId: number, flags: number, selfDependent: boolean, block: Buffer, start: number, end: number): void {
    let headers: readonly string[] | null;
    try {
      headers = this.decoder.decodeRange(block, start, end);
    } catch (error) {
      return this.owner.connectionError(ErrorCode.COMPRESSION_ERROR, `HPACK: ${(error as Error).message}`);
    }
    const endStream = (flags & Flag.END_STREAM) !== 0;
    const stream = this.streams.get(streamId);
    if (stream === undefined) return this.onNewStream(streamId, headers, endStream, selfDependent);
    if (selfDependent) return this.resetStream(stream, ErrorCode.PROTOCOL_ERROR, 'stream depends on itself');
    if (!canReceive(stream.state)) return this.resetStream(stream, ErrorCode.STREAM_CLOSED, 'HEADERS on a half-closed stream');
    if (headers === null) return this.resetStream(stream, ErrorCode.PROTOCOL_ERROR, 'header list too large');
    const isHead = this.clientRole && stream.headerBlocksReceived === 0;
    if (isHead) {
      if (headers !== this.checkedResponse) {
        const problem = responseHeadersProblem(headers);
        if (problem !== null) return this.resetStream(stream, ErrorCode.PROTOCOL_ERROR, problem);
        // Informational (1xx) responses are skipped: the real head follows, so one that ends the stream is malformed.
        if (headers[1].charCodeAt(0) === 0x31) {
          if (endStream) return this.resetStream(stream, ErrorCode.PROTOCOL_ERROR, 'informational response with END_STREAM');
          return;
        }
        const length = declaredContentLength(headers);
        if (length === -2) return this.resetStream(stream, ErrorCode.PROTOCOL_ERROR, 'bad content-length');
        this.checkedResponse = headers;
        this.checkedResponseLength = length;
      }
      stream.expectedLength = this.checkedResponseLength;
    } else {
      if (!endStream) return this.resetStream(stream, ErrorCode.PROTOCOL_ERROR, 'trailers without END_STREAM');
      if (headers !== this.checkedTrailers) {
        const problem = trailersProblem(headers);
        if (problem !== null) return this.resetStream(stream, ErrorCode.PROTOCOL_ERROR, problem);
        this.checkedTrailers = headers;
      }
    }
    stream.headerBlocksReceived++;
    if (endStream) {
      if (stream.expectedLength > 0 && stream.receivedLength !== stream.expectedLength) {
        return this.resetStream(stream, ErrorCode.PROTOCOL_ERROR, 'DATA length differs from content-length');
      }
      transitionStream(stream, 'recv-end');
    }
    this.flood?.peerSentData();
    this.handler.onHeaders(this.connection, stream, headers, endStream, !isHead);
    if (endStream) this.owner.closeIfDone(stream);
  }

  private onNewStream(streamId: number, headers: readonly string[] | null, endStream: boolean, selfDependent: boolean): void {
    const streams = this.streams;
    const owner = this.owner;
    if (!streams.isPeerInitiated(streamId) || this.clientRole) {
      if (streams.isIdle(streamId)) return owner.connectionError(ErrorCode.PROTOCOL_ERROR, `HEADERS on idle stream ${streamId}`);
      if (streams.resetByUs.has(streamId)) return;
      return owner.connectionError(ErrorCode.STREAM_CLOSED, `HEADERS on closed stream ${streamId}`);
    }
    if (streamId <= streams.highestPeerStreamId) {
      // Trailers of a stream we reset, or of one ignored for being above our final GOAWAY (RFC 9113 §6.8).
      if (streams.resetByUs.has(streamId) || streams.aboveFinalGoaway(streamId)) return;
      return owner.connectionError(ErrorCode.STREAM_CLOSED, `HEADERS on closed stream ${streamId}`);
    }
    streams.notePeerStream(streamId);
    // After our final GOAWAY, new streams are ignored (the peer knows they were not processed).
    if (streams.aboveFinalGoaway(streamId)) return;
    if (selfDependent) return this.refuseStream(streamId, ErrorCode.PROTOCOL_ERROR, 'stream depends on itself');
    if (streams.peerActiveCount >= this.localSettings.maxConcurrentStreams) {
      return this.refuseStream(streamId, ErrorCode.REFUSED_STREAM, 'too many concurrent streams');
    }
    const stream = new Stream(streamId, true, this.remoteSettings.initialWindowSize, this.localSettings.initialWindowSize);
    if (headers === null) return this.refuseOversizedHeaders(stream);
    if (headers !== this.checkedRequest) {
      const problem = requestHeadersProblem(headers);
      if (problem !== null) return this.refuseStream(streamId, ErrorCode.PROTOCOL_ERROR, problem);
      const length = declaredContentLength(headers);
      if (length === -2) return this.refuseStream(streamId, ErrorCode.PROTOCOL_ERROR, 'bad content-length');
      this.checkedRequest = headers;
      this.checkedRequestLength = length;
    }
    stream.expectedLength = this.checkedRequestLength;
    if (endStream && stream.expectedLength > 0) return this.refuseStream(streamId, ErrorCode.PROTOCOL_ERROR, 'bad content-length');
    this.flood?.streamOpened(streamId);
    stream.headerBlocksReceived = 1;
    streams.addPeer(stream);
    transitionStream(stream, 'recv-headers');
    if (endStream) transitionStream(stream, 'recv-end');
    this.handler.onHeaders(this.connection, stream, headers, endStream, false);
    if (endStream) owner.closeIfDone(stream);
  }

  /** A request whose header list exceeds our limit gets 431 and no further processing (RFC 9113 §10.5.1). */
  private refuseOversizedHeaders(stream: Stream): void {
    if (this.flood !== null && !this.flood.admitRefusal()) return;
    this.streams.addPeer(stream);
    transitionStream(stream, 'recv-headers');
    this.output.writeHeaderBlock(stream, [':status', '431'], true);
    if (this.streams.has(stream.id)) this.owner.resetStream(stream, ErrorCode.NO_ERROR);
  }

  /** A new peer stream refused before it was admitted: RST_STREAM, counted against the flood limits first. */
  private refuseStream(streamId: number, code: number, reason: string): void {
    if (this.flood !== null && !this.flood.admitRefusal()) return;
    this.owner.streamError(streamId, undefined, code, reason);
  }

  /** A stream reset for a header block the peer should not have sent; on a server connection a refusal too. */
  private resetStream(stream: Stream, code: number, reason: string): void {
    if (this.flood !== null && !this.flood.admitRefusal()) return;
    this.owner.streamError(stream.id, stream, code, reason);
  }
}
