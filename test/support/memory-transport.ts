// In-memory Transport for connection tests: copies every written chunk, records end()/destroy(), and waits for output.

import type { Transport } from '../../agent/http2/connection.ts';

/**
 * Accepts writes at once, like a socket the kernel keeps up with, unless a test holds it (a slow reader). Emits
 * 'drain' the way a net.Socket does: after a write that reached the high-water mark, once nothing is held.
 */
export class MemoryTransport implements Transport {
  /** What the socket still holds; raised by hold() to play a slow reader (the connection stops framing DATA). */
  writableLength = 0;
  readonly highWaterMark = 16 * 1024;
  /** Called on 'drain' (the harness wires it to connection.transportDrained()). */
  onDrain: (() => void) | null = null;
  private needDrain = false;
  /** Copies of every chunk, in order (the connection reuses its output memory once writableLength is 0). */
  readonly chunks: Buffer[] = [];
  totalBytes = 0;
  writeCalls = 0;
  endCalls = 0;
  destroyCalls = 0;
  /** Writes after end() or destroy(): a connection must not write to a closed transport. */
  writesAfterClose = 0;
  corked = 0;
  private taken = 0;

  write(chunk: Buffer): void {
    if (this.closed) this.writesAfterClose++;
    this.writeCalls++;
    this.chunks.push(Buffer.from(chunk));
    this.totalBytes += chunk.length;
    if (this.writableLength + chunk.length >= this.highWaterMark) this.needDrain = true;
    if (this.needDrain && this.writableLength === 0) process.nextTick(() => this.emitDrain());
  }

  /** The socket keeps `bytes` unsent until release(). */
  hold(bytes: number): void {
    this.writableLength = bytes;
  }

  /** The held bytes left; 'drain' follows when a write had reached the high-water mark. */
  release(): void {
    this.writableLength = 0;
    process.nextTick(() => this.emitDrain());
  }

  private emitDrain(): void {
    if (!this.needDrain || this.writableLength > 0 || this.closed) return;
    this.needDrain = false;
    this.onDrain?.();
  }

  cork(): void {
    this.corked++;
  }

  uncork(): void {
    this.corked--;
  }

  end(): void {
    this.endCalls++;
  }

  destroy(): void {
    this.destroyCalls++;
  }

  get closed(): boolean {
    return this.endCalls > 0 || this.destroyCalls > 0;
  }

  /** Everything written so far. */
  output(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** What was written since the previous call. */
  takeNew(): Buffer {
    const fresh = Buffer.concat(this.chunks.slice(this.taken));
    this.taken = this.chunks.length;
    return fresh;
  }
}

/** One turn of the event loop: output the connection produced in this turn has been flushed after it. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A few turns, for output that a flush itself causes (a reaction to a write is flushed one turn later). */
export async function settle(turns = 3): Promise<void> {
  for (let i = 0; i < turns; i++) await nextTurn();
}

/** Turns the event loop until `condition` holds; fails after `timeoutMs` of real time. */
export async function waitForOutput(condition: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await nextTurn();
  }
}
