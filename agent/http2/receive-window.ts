// Our receive side of flow control: how much the peer may still send, on the connection and on each stream, and
// the credit we give back (WINDOW_UPDATE), batched until half a window is owed so that updates stay few.
//
// What the connection holds (DATA delivered to the handler and not consumed) is bounded: a stream holds at most its
// window; the connection returns window on receive only while it holds at most its receive budget (and the process
// is not over its own, see BufferAccount), past that only as the handler consumes. So the connection holds at most
// budget + connection window, and one stalled stream (up to its window, below the budget) cannot starve the others.

import type { BufferAccount } from './connection-options.ts';
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
  /** Held bytes up to which window is returned on receive (0: only as the handler consumes). */
  private readonly budget: number;
  /** DATA bytes delivered to the handler and not consumed yet, over every stream. */
  private heldBytes = 0;
  /** Of those, the bytes whose connection window was not returned on receive: returned as bytes are consumed. */
  private owedOnConsume = 0;
  private readonly account: BufferAccount | null;
  /**
   * Connection credit is written once this much is owed: half the window, or half the budget when that is smaller,
   * else credit returned on receive could sit below the batch forever while stalled streams hold the rest.
   */
  private readonly creditBatch: number;
  private readonly writer: FrameWriter;
  /** Ours: the stream windows the peer starts with, and so the batching threshold of stream credit. */
  private readonly localSettings: Http2Settings;
  private readonly requestFlush: () => void;

  constructor(
    writer: FrameWriter,
    localSettings: Http2Settings,
    target: number,
    budget: number,
    account: BufferAccount | null,
    requestFlush: () => void,
  ) {
    this.writer = writer;
    this.localSettings = localSettings;
    this.target = target;
    this.budget = budget;
    this.account = account;
    this.creditBatch = Math.max(1, (budget > 0 ? Math.min(target, budget) : target) >>> 1);
    this.requestFlush = requestFlush;
  }

  /** DATA bytes the handler was given and has not consumed (what this connection holds for its peer). */
  get held(): number {
    return this.heldBytes;
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
    stream.unconsumedBytes += dataLength;
    this.heldBytes += dataLength;
    this.account?.add(dataLength);
    // Padding is consumed at once; the data bytes at once while the budget allows, else when the handler consumes them.
    if (dataLength > 0 && (this.heldBytes > this.budget || this.account?.exhausted === true)) {
      this.owedOnConsume += dataLength;
      if (frameLength > dataLength) this.returnConnectionCredit(frameLength - dataLength);
    } else if (frameLength > 0) {
      this.returnConnectionCredit(frameLength);
    }
    return true;
  }

  /** The handler processed `consumed` bytes of `stream` (`known`: the stream is still the connection's). */
  consume(stream: Stream, consumed: number, known: boolean): void {
    // Bytes of a stream that already ended were returned to the connection window when it ended.
    const bytes = Math.min(consumed, stream.unconsumedBytes);
    if (bytes <= 0) return;
    stream.unconsumedBytes -= bytes;
    this.release(bytes);
    if (known && canReceive(stream.state)) {
      stream.creditToReturn += bytes;
      if (stream.creditToReturn >= this.localSettings.initialWindowSize >>> 1) {
        this.writer.writeWindowUpdate(stream.id, stream.creditToReturn);
        stream.receiveWindow += stream.creditToReturn;
        stream.creditToReturn = 0;
        this.requestFlush();
      }
    }
  }

  /** `stream` ended: bytes the handler never consumed would otherwise hold the connection window forever. */
  releaseStream(stream: Stream): void {
    if (stream.unconsumedBytes > 0) this.release(stream.unconsumedBytes);
    stream.unconsumedBytes = 0;
  }

  /**
   * `bytes` held bytes are gone: the window still owed for held bytes is returned up to that much. Which stream's
   * bytes it was does not matter: the window is the connection's, and what stays owed never exceeds what is held.
   */
  private release(bytes: number): void {
    this.heldBytes -= bytes;
    this.account?.add(-bytes);
    const owed = Math.min(bytes, this.owedOnConsume);
    if (owed > 0) {
      this.owedOnConsume -= owed;
      this.returnConnectionCredit(owed);
    }
  }

  /** Bytes no stream holds any more (e.g. DATA on a closed stream): owed back to the peer at once. */
  returnConnectionCredit(bytes: number): void {
    this.creditToReturn += bytes;
    if (this.creditToReturn >= this.creditBatch) {
      this.writer.writeWindowUpdate(0, this.creditToReturn);
      this.available += this.creditToReturn;
      this.creditToReturn = 0;
      this.requestFlush();
    }
  }
}
