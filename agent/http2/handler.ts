// The narrow interface between a connection and its user (the relay, a test, a benchmark): a handler table.

import type { Http2Connection } from './connection.ts';
import type { Stream } from './stream.ts';

/**
 * Callbacks a connection makes. One handler object serves many connections, so nothing is allocated per frame or
 * per request. Header lists are flat arrays: [name0, value0, name1, value1, ...], names lower-case, pseudo-headers
 * first. Every callback is made synchronously: from the connection's input processing, or from inside one of the
 * handler's own calls that causes it (`onDataSent` when queued DATA is framed; `onStreamClose`, `onStreamReset` and
 * `onConnectionClose` when the call ends a stream or the connection).
 *
 * `C` is what the handler keeps in each connection's `context`, `S` what it keeps in each stream's: the connection
 * only stores them, so a handler reads back exactly the type it wrote, with no cast.
 */
export interface Http2Handler<C = unknown, S = unknown> {
  /**
   * A complete, validated header block on `stream`: request headers (server role), response headers (client role),
   * or trailers (when `isTrailers`). `endStream` is true when the peer will send nothing more on the stream. The list
   * is read-only: a block the peer repeats byte for byte gives the same array again (hpack-repeats.ts).
   */
  onHeaders(connection: Http2Connection<C, S>, stream: Stream<S>, headers: readonly string[], endStream: boolean, isTrailers: boolean): void;
  /**
   * DATA payload (padding removed). `data` is a view into the received bytes; it stays valid after the call (the
   * connection never reuses input memory), so it may be passed on without copying. Call `connection.consume(stream,
   * n)` once the bytes have been processed or passed on, so the peer's window reopens. An empty `data` with
   * `endStream` is possible.
   */
  onData(connection: Http2Connection<C, S>, stream: Stream<S>, data: Buffer, endStream: boolean): void;
  /** The stream ended abnormally: the peer reset it, we reset it for a protocol reason, or the connection closed. */
  onStreamReset(connection: Http2Connection<C, S>, stream: Stream<S>, code: number, byPeer: boolean): void;
  /** The stream closed normally (END_STREAM seen in both directions and all our queued output framed). */
  onStreamClose(connection: Http2Connection<C, S>, stream: Stream<S>): void;
  /**
   * Queued DATA left the stream's queue (framed for the socket); `bytes` is how much. Lets a relay consume upstream.
   *
   * Re-entrancy: this runs synchronously wherever queued DATA gets framed, which includes inside the handler's own
   * `sendData`, `sendTrailers` and `resetAfterQueued` calls (and input: WINDOW_UPDATE, SETTINGS; and a drained socket).
   * Queuing more on the same stream from here is safe: it goes behind everything already queued and is framed once
   * this callback returns, by the pump that made it (framing never nests, so these callbacks never recurse for one
   * stream). What the connection cannot know is a sequence of calls the handler means as one unit: if the handler is
   * between two `sendData` calls of one message when this fires, output queued here lands between them. Write a unit
   * in one call, or ignore this callback while writing one (test/support/grpc-on-core.ts keeps a `pumping` flag).
   */
  onDataSent(connection: Http2Connection<C, S>, stream: Stream<S>, bytes: number): void;
  /** The peer sent GOAWAY. Streams above `lastStreamId` that we opened were reset with REFUSED_STREAM just before. */
  onGoaway(connection: Http2Connection<C, S>, lastStreamId: number, code: number, debugData: Buffer): void;
  /** The peer's SETTINGS were applied (e.g. MAX_CONCURRENT_STREAMS changed). */
  onRemoteSettings(connection: Http2Connection<C, S>): void;
  /** The connection is closed; every open stream got `onStreamReset` before this. `error` is null on a clean close. */
  onConnectionClose(connection: Http2Connection<C, S>, error: Http2ConnectionError | null): void;
}

/** Why a connection ended with an error: the HTTP/2 code, who detected it, and a reason for logs. */
export class Http2ConnectionError extends Error {
  readonly code: number;
  readonly byPeer: boolean;
  constructor(code: number, message: string, byPeer: boolean) {
    super(message);
    this.name = 'Http2ConnectionError';
    this.code = code;
    this.byPeer = byPeer;
  }
}
