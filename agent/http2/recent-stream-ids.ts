// A bounded memory of stream ids we reset, so that frames the peer sent before it saw our RST_STREAM are ignored
// (RFC 9113 §5.1) instead of answered with more resets.

export class RecentStreamIds {
  private readonly ids = new Set<number>();
  private readonly order: number[];
  private next = 0;

  constructor(capacity: number) {
    this.order = new Array<number>(capacity).fill(0);
  }

  add(id: number): void {
    if (this.ids.has(id)) return;
    const evicted = this.order[this.next];
    if (evicted !== 0) this.ids.delete(evicted);
    this.order[this.next] = id;
    this.next = (this.next + 1) % this.order.length;
    this.ids.add(id);
  }

  has(id: number): boolean {
    return this.ids.has(id);
  }
}
