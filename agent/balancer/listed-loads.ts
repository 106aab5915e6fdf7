// Load objects in the order their endpoints were listed: one tier of a service's eligible endpoints, changed one at a time.

import type { EndpointLoad } from './endpoint-load.ts';

/**
 * Each load carries its endpoint's listing number (ascending in the order the balancer first listed the addresses),
 * so that the array stays in listing order — the order a picker built from all listed endpoints would have — while
 * an endpoint joins or leaves in a binary search and one move of the array's tail (a memmove, microseconds at
 * 10,000), not a rebuild with a hash lookup per endpoint.
 */
export class ListedLoads {
  private readonly numbers: number[] = [];
  private readonly list: EndpointLoad[] = [];

  get size(): number {
    return this.list.length;
  }

  /** In listing order; read only, and only until the next change (pickers copy it). */
  get loads(): readonly EndpointLoad[] {
    return this.list;
  }

  /** Puts `load`, listed as `number`, in its place; a number already held is replaced. */
  insert(number: number, load: EndpointLoad): void {
    const at = this.search(number);
    if (at < this.numbers.length && this.numbers[at] === number) {
      this.list[at] = load;
      return;
    }
    this.numbers.splice(at, 0, number);
    this.list.splice(at, 0, load);
  }

  /** Takes out the load listed as `number`; returns whether it was there. */
  delete(number: number): boolean {
    const at = this.search(number);
    if (at === this.numbers.length || this.numbers[at] !== number) return false;
    this.numbers.splice(at, 1);
    this.list.splice(at, 1);
    return true;
  }

  clear(): void {
    this.numbers.length = 0;
    this.list.length = 0;
  }

  /** The first index whose number is ≥ `number`. */
  private search(number: number): number {
    let low = 0;
    let high = this.numbers.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.numbers[middle] < number) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}
