// Our receive side of flow control: how much the peer may still send, on the connection and on each stream, and
// the credit we give back (WINDOW_UPDATE), batched until half a window is owed so that updates stay few.

import { DEFAULT_INITIAL_WINDOW_SIZE } from './constants.ts';
import type { FrameWriter } from './frame-writer.ts';
import type { Http2Settings } from './settings.ts';
import type { Stream } from './stream.ts';
import { canReceive } from './stream-state.ts';

export class ReceiveWindow {
  /** Bytes the peer may still send on the connection before we extend the window. */
  private available = DEFAULT_INITIAL_WINDOW_SIZE;
  private readonly target: number;
  /** Connection-level bytes processed and not returned to the peer by a WINDOW_UPDATE yet. */
  private creditToReturn = 0;
  /** See ConnectionOptions.creditConnectionOnReceive. */
  private readonly creditOnReceive: boolean;
  private readonly writer: FrameWriter;
  /** Ours: the stream windows the peer starts with, and so the batching threshold of stream credit. */
  private readonly localSettings: Http2Settings;
  private readonly requestFlush: () => void;

  constructor(
    writer: FrameWriter,
    localSettings: Http2Settings,
    target: number,
    creditOnReceive: boolean,
    requestFlush: () => void,
  ) {
    this.writer = writer;
    this.localSettings = localSettings;
    this.target = target;
    this.creditOnReceive = creditOnReceive;
    this.requestFlush = requestFlush;
  }

  /** Part of our preface: the connection window grows from the protocol default to its target at once. */
  announce(): void {
    const increase = this.target - DEFAULT_INITIAL_WINDOW_SIZE;
    if (increase > 0) {
      this.writer.writeWindowUpdate(0, increase);
      this.available += increase;
    }
  }

  /** Takes a DATA frame (padding included) out of the connection window; false when it does not fit. */
  takeFrame(frameLength: number): boolean {
    if (frameLength > this.available) return false;
    this.available -= frameLength;
    return true;
  }

  /**
   * Takes a DATA frame out of the window of `stream`, which can receive; false when it does not fit (its bytes
   * then go back to the connection window, and the caller resets the stream).
   */
  takeOnStream(stream: Stream, frameLength: number, dataLength: number): boolean {
    if (frameLength > stream.receiveWindow) {
      this.returnConnectionCredit(frameLength);
      return false;
    }
    stream.receiveWindow -= frameLength;
    // Padding is consumed at once; the data bytes are returned when the handler consumes them.
    if (this.creditOnReceive) this.returnConnectionCredit(frameLength);
    else if (frameLength > dataLength) this.returnConnectionCredit(frameLength - dataLength);
    stream.unconsumedBytes += dataLength;
    return true;
  }

  /** The handler processed `consumed` bytes of `stream` (`known`: the stream is still the connection's). */
  consume(stream: Stream, consumed: number, known: boolean): void {
    // Bytes of a stream that already ended were returned to the connection window when it ended.
    const bytes = Math.min(consumed, stream.unconsumedBytes);
    if (bytes <= 0) return;
    stream.unconsumedBytes -= bytes;
    if (known && canReceive(stream.state)) {
      stream.creditToReturn += bytes;
      if (stream.creditToReturn >= this.localSettings.initialWindowSize >>> 1) {
        this.writer.writeWindowUpdate(stream.id, stream.creditToReturn);
        stream.receiveWindow += stream.creditToReturn;
        stream.creditToReturn = 0;
        this.requestFlush();
      }
    }
    if (!this.creditOnReceive) this.returnConnectionCredit(bytes);
  }

  /** `stream` ended: bytes the handler never consumed would otherwise hold the connection window forever. */
  releaseStream(stream: Stream): void {
    if (stream.unconsumedBytes > 0 && !this.creditOnReceive) this.returnConnectionCredit(stream.unconsumedBytes);
    stream.unconsumedBytes = 0;
  }

  /** Bytes no stream holds any more (e.g. DATA on a closed stream): owed back to the peer at once. */
  returnConnectionCredit(bytes: number): void {
    this.creditToReturn += bytes;
    if (this.creditToReturn >= this.target >>> 1) {
      this.writer.writeWindowUpdate(0, this.creditToReturn);
      this.available += this.creditToReturn;
      this.creditToReturn = 0;
      this.requestFlush();
    }
  }
}
