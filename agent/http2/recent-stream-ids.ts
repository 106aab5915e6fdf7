// A bounded memory of stream ids we reset, so that frames the peer sent before it saw our RST_STREAM are ignored
// (RFC 9113 §5.1) instead of answered with more resets.

export class RecentStreamIds {
  /** Created by the first reset: most connections never reset a stream. */
  private ids: Set<number> | null = null;
  /** Oldest first until full, then a ring; grown as ids come, so a connection that never resets a stream holds none. */
  private readonly order: number[] = [];
  private readonly capacity: number;
  private next = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  add(id: number): void {
    this.ids ??= new Set();
    if (this.ids.has(id)) return;
    if (this.order.length < this.capacity) {
      this.order.push(id);
    } else {
      this.ids.delete(this.order[this.next]);
      this.order[this.next] = id;
      this.next = (this.next + 1) % this.capacity;
    }
    this.ids.add(id);
  }

  has(id: number): boolean {
    return this.ids?.has(id) === true;
  }
}
