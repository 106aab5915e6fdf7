// Request deadlines in one binary heap behind one timer: no timer or closure per request.

import type { Clock } from '../vocabulary/clock.ts';

export interface DeadlineEntry {
  /** Absolute deadline in clock milliseconds. */
  deadlineAt: number;
  /** Position in the heap, -1 when not queued; owned by the queue. */
  deadlineIndex: number;
  onDeadline(): void;
}

export class DeadlineQueue {
  private readonly heap: DeadlineEntry[] = [];
  private readonly clock: Clock;
  private timer: unknown = null;
  private timerAt = Number.POSITIVE_INFINITY;
  private readonly fire = (): void => this.expire();

  constructor(clock: Clock) {
    this.clock = clock;
  }

  get size(): number {
    return this.heap.length;
  }

  add(entry: DeadlineEntry): void {
    entry.deadlineIndex = this.heap.length;
    this.heap.push(entry);
    this.siftUp(entry.deadlineIndex);
    this.arm();
  }

  remove(entry: DeadlineEntry): void {
    const index = entry.deadlineIndex;
    if (index < 0) return;
    entry.deadlineIndex = -1;
    const last = this.heap.pop() as DeadlineEntry;
    if (index < this.heap.length) {
      this.heap[index] = last;
      last.deadlineIndex = index;
      this.siftDown(index);
      this.siftUp(last.deadlineIndex);
    }
  }

  /** Stops the timer (agent shutdown). */
  clear(): void {
    for (const entry of this.heap) entry.deadlineIndex = -1;
    this.heap.length = 0;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Number.POSITIVE_INFINITY;
  }

  private expire(): void {
    this.timer = null;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = this.clock.now();
    while (this.heap.length > 0 && this.heap[0].deadlineAt <= now) {
      const entry = this.heap[0];
      this.remove(entry);
      entry.onDeadline();
    }
    this.arm();
  }

  private arm(): void {
    if (this.heap.length === 0) return;
    const next = this.heap[0].deadlineAt;
    if (next >= this.timerAt) return;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timerAt = next;
    // A deadline beyond a platform timer's range (grpc-timeout allows 99999999H) is the clock's to chain: it re-arms
    // once per 24.8 days, so this timer is set once whatever the deadline (see vocabulary/clock.ts, MAX_TIMER_MS).
    this.timer = this.clock.setTimeout(this.fire, Math.max(0, next - this.clock.now()));
  }

  private siftUp(index: number): void {
    const heap = this.heap;
    const entry = heap[index];
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (heap[parent].deadlineAt <= entry.deadlineAt) break;
      heap[index] = heap[parent];
      heap[index].deadlineIndex = index;
      index = parent;
    }
    heap[index] = entry;
    entry.deadlineIndex = index;
  }

  private siftDown(index: number): void {
    const heap = this.heap;
    const entry = heap[index];
    const length = heap.length;
    for (;;) {
      let child = 2 * index + 1;
      if (child >= length) break;
      if (child + 1 < length && heap[child + 1].deadlineAt < heap[child].deadlineAt) child++;
      if (heap[child].deadlineAt >= entry.deadlineAt) break;
      heap[index] = heap[child];
      heap[index].deadlineIndex = index;
      index = child;
    }
    heap[index] = entry;
    entry.deadlineIndex = index;
  }
}
