// A connection's framed output, written to its transport once per event-loop turn in as few writes as possible; the
// final flush ends the transport.

import type { Transport } from './connection-options.ts';
import { type Flushable, scheduleFlush } from './flush-scheduler.ts';
import type { FrameWriter } from './frame-writer.ts';

/** Output a peer never reads (PING or SETTINGS floods) may not grow past this. */
const OUTPUT_HARD_LIMIT = 32 * 1024 * 1024;

export interface FlushOwner {
  /** After close only the final flush (GOAWAY, then end) may write. */
  isClosed(): boolean;
  /** The peer lets our output pile up past the hard limit. */
  outputOverflowed(): void;
}

export class BatchedFlush implements Flushable {
  private readonly writer: FrameWriter;
  private readonly transport: Transport;
  private readonly owner: FlushOwner;
  private queued = false;
  private endAfter = false;

  constructor(writer: FrameWriter, transport: Transport, owner: FlushOwner) {
    this.writer = writer;
    this.transport = transport;
    this.owner = owner;
  }

  get carriesStreamFrames(): boolean {
    return this.writer.carriesStreamFrames;
  }

  /** Output is pending: flush it in this event-loop turn's batch (once, however often asked). */
  request(): void {
    if (this.queued || this.owner.isClosed()) return;
    this.queued = true;
    scheduleFlush(this);
  }

  /** The last flush: what is pending goes out now, then the transport ends. */
  flushAndEnd(): void {
    this.endAfter = true;
    this.flush();
  }

  flush(): void {
    this.queued = false;
    // A flush scheduled before the close must not write after it.
    if (this.owner.isClosed() && !this.endAfter) return;
    const segments = this.writer.take();
    if (segments.length === 1) {
      this.transport.write(segments[0]);
    } else if (segments.length > 1) {
      this.transport.cork?.();
      for (let i = 0; i < segments.length; i++) this.transport.write(segments[i]);
      this.transport.uncork?.();
    }
    this.writer.afterWrite(this.transport.writableLength === 0);
    if (this.endAfter) {
      this.endAfter = false;
      this.transport.end();
    } else if (this.transport.writableLength > OUTPUT_HARD_LIMIT) {
      this.owner.outputOverflowed();
    }
  }
}
