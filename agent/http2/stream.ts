// The per-stream record: a small plain object the connection owns and hands to its handler.

import type { StreamState } from './stream-state.ts';
import { NO_CHUNKS } from '../vocabulary/chunk-list.ts';

/**
 * One HTTP/2 stream. The connection mutates it; a handler reads it and may keep its own data in `context`, typed by
 * the handler's `S` (see Http2Handler).
 * Kept as a class with every field initialised in the constructor so all streams share one hidden class.
 */
export class Stream<S = unknown> {
  readonly id: number;
  state: StreamState = 'idle';
  /** Bytes we may still send on this stream (the peer's window for it); may go negative after a SETTINGS change. */
  sendWindow: number;
  /** Bytes the peer may still send before we extend the window. */
  receiveWindow: number;
  /** Bytes the handler consumed that have not been returned to the peer by a WINDOW_UPDATE yet. */
  creditToReturn = 0;
  /** DATA bytes delivered to the handler and not consumed yet; returned to the connection window if the stream ends. */
  unconsumedBytes = 0;
  /** Header blocks received: the first is the request or response head, a later one must be trailers. */
  headerBlocksReceived = 0;
  /** Whether the stream was counted against our or the peer's concurrency limit. */
  readonly openedByPeer: boolean;
  /** DATA waiting for send window or socket room, in order, and whether END_STREAM follows the last of it. */
  queuedData: Buffer[] = NO_CHUNKS;
  queuedBytes = 0;
  endAfterQueue = false;
  /** Trailers to send after the queued DATA drains (HEADERS with END_STREAM). */
  queuedTrailers: readonly string[] | null = null;
  /** 'reporting' while the handler's onDataSent for this stream runs; 'rerun' once it queued more output then. */
  pump: 'idle' | 'reporting' | 'rerun' = 'idle';
  /** RST_STREAM code to send once everything queued is framed, or -1. */
  resetAfterQueue = -1;
  /** Declared content-length of the received message, or -1; received DATA bytes are checked against it. */
  expectedLength = -1;
  receivedLength = 0;
  /** The handler's own slot (the relay keeps its peer stream here). */
  context: S | null = null;

  constructor(id: number, openedByPeer: boolean, sendWindow: number, receiveWindow: number) {
    this.id = id;
    this.openedByPeer = openedByPeer;
    this.sendWindow = sendWindow;
    this.receiveWindow = receiveWindow;
  }
}
