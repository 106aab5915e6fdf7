// A fake Clock: time moves only when a test advances it.

import type { Clock } from '../../agent/vocabulary/clock.ts';

interface Pending {
  at: number;
  callback: () => void;
}

export class FakeTimers implements Clock {
  private nowMs = 0;
  private nextHandle = 1;
  private readonly pending = new Map<number, Pending>();

  setTimeout(callback: () => void, ms: number): unknown {
    const handle = this.nextHandle++;
    this.pending.set(handle, { at: this.nowMs + ms, callback });
    return handle;
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  now(): number {
    return this.nowMs;
  }

  /** Timers set and neither fired nor cleared. */
  get activeCount(): number {
    return this.pending.size;
  }

  /** Moves the clock forward, firing due timers in time order (a callback may set new ones). */
  advance(ms: number): void {
    const target = this.nowMs + ms;
    for (;;) {
      let due: [number, Pending] | null = null;
      for (const entry of this.pending) if (entry[1].at <= target && (due === null || entry[1].at < due[1].at)) due = entry;
      if (due === null) break;
      this.pending.delete(due[0]);
      this.nowMs = due[1].at;
      due[1].callback();
    }
    this.nowMs = target;
  }
}
