// Two HTTP/2 connections joined in memory: what one writes reaches the other a turn later, in slices a test chooses,
// and an end or destroy on either side closes both the way a socket's FIN or reset would.

import type { Http2Connection, Transport } from '../../agent/http2/connection.ts';

/** One direction's end: the writer's Transport. */
export class PipeEnd implements Transport {
  readonly writableLength = 0;
  /** Writes after end()/destroy(): a connection must not write to a closed transport. */
  writesAfterClose = 0;
  totalBytes = 0;
  closed = false;
  private pending: Buffer[] = [];
  private scheduled = false;
  private readonly pipe: ConnectionPipe;
  private readonly toServer: boolean;

  constructor(pipe: ConnectionPipe, toServer: boolean) {
    this.pipe = pipe;
    this.toServer = toServer;
  }

  write(chunk: Buffer): void {
    if (this.closed) {
      this.writesAfterClose++;
      return;
    }
    // The connection may reuse its output memory once the write returns.
    this.pending.push(Buffer.from(chunk));
    this.totalBytes += chunk.length;
    this.schedule();
  }

  /** FIN after what was written: the peer reads it all, then both sides close. */
  end(): void {
    if (this.closed) return;
    this.closed = true;
    this.schedule();
  }

  /** Reset: what was not delivered yet is lost, both sides close. */
  destroy(): void {
    if (this.closed && this.pending.length === 0) return this.schedule();
    this.closed = true;
    this.pending = [];
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.deliver();
    });
  }

  private deliver(): void {
    const bytes = Buffer.concat(this.pending);
    this.pending = [];
    const receiver = this.toServer ? this.pipe.server : this.pipe.client;
    for (let at = 0; at < bytes.length; ) {
      const size = Math.max(1, this.pipe.sliceSize());
      receiver?.receive(bytes.subarray(at, at + size));
      at += size;
    }
    if (this.closed) this.pipe.close();
  }
}

/** The pair; `client` and `server` are set once both connections exist. */
export class ConnectionPipe {
  client: Http2Connection | null = null;
  server: Http2Connection | null = null;
  readonly toServer = new PipeEnd(this, true);
  readonly toClient = new PipeEnd(this, false);
  /** How many bytes the receiver gets in one receive() call. */
  readonly sliceSize: () => number;
  isClosed = false;

  constructor(sliceSize: () => number) {
    this.sliceSize = sliceSize;
  }

  /** The "socket" is gone: both connections hear it, as from a 'close' event. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.toServer.closed = true;
    this.toClient.closed = true;
    this.client?.transportClosed();
    this.server?.transportClosed();
  }
}
