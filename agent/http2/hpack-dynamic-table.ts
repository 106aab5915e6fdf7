// HPACK dynamic table (RFC 7541 §2.3.2, §4): a FIFO of header fields bounded by size, kept in a ring buffer.

/** RFC 7541 §4.1: an entry costs its name and value octets plus 32. Strings hold one latin1 octet per char. */
export const ENTRY_OVERHEAD = 32;

/** Size of the entry `name: value` in octets. */
export function entrySize(name: string, value: string): number {
  return name.length + value.length + ENTRY_OVERHEAD;
}

/**
 * Entries are addressed by an insertion counter: the n-th field ever added has counter n, and it lives in ring slot
 * `n & mask`. The newest entry is HPACK index 1 of the dynamic part, so index i (0-based from the newest) is counter
 * `insertCount - 1 - i`. Counters let the encoder remember "where" a field is without updating anything on insert.
 */
/** The slots of a table that never held an entry (never written: the first add grows the table). */
const NO_ENTRIES: string[] = [];

export class DynamicTable {
  /** Current maximum size in octets (set by size updates). */
  maxSize: number;
  /** Sum of entry sizes in octets; never above maxSize. */
  size = 0;
  /** Entries currently held. */
  length = 0;
  /** Fields ever added (a counter, not a count of live entries). */
  insertCount = 0;
  /** Changes ever made (additions and size updates): equal generations mean the same table (hpack-repeats.ts). */
  generation = 0;
  private names: string[];
  private values: string[];
  private mask: number;

  constructor(maxSize: number) {
    this.maxSize = maxSize;
    // Power-of-two capacity; grows on demand, so a 4096-octet table of typical entries settles at 64 slots. None
    // until the first entry (mask -1: the first add grows to 16): an idle connection's two tables hold no arrays.
    this.names = NO_ENTRIES;
    this.values = NO_ENTRIES;
    this.mask = -1;
  }

  /** Counter of the oldest live entry (equals insertCount when empty). */
  get oldestCounter(): number {
    return this.insertCount - this.length;
  }

  /** Name of the entry at 0-based position `index` from the newest; the caller checks `index < length`. */
  nameAt(index: number): string {
    return this.names[(this.insertCount - 1 - index) & this.mask];
  }

  /** Value of the entry at 0-based position `index` from the newest; the caller checks `index < length`. */
  valueAt(index: number): string {
    return this.values[(this.insertCount - 1 - index) & this.mask];
  }

  /** Name of the live entry with insertion counter `counter`. */
  nameOfCounter(counter: number): string {
    return this.names[counter & this.mask];
  }

  /** Value of the live entry with insertion counter `counter`. */
  valueOfCounter(counter: number): string {
    return this.values[counter & this.mask];
  }

  /**
   * Adds a field, evicting the oldest entries until it fits (RFC 7541 §4.4). A field larger than the whole table
   * empties it and is not added.
   */
  add(name: string, value: string): void {
    this.generation++;
    const size = entrySize(name, value);
    if (size > this.maxSize) {
      this.evictTo(0);
      return;
    }
    this.evictTo(this.maxSize - size);
    if (this.length > this.mask) this.grow();
    const slot = this.insertCount & this.mask;
    this.names[slot] = name;
    this.values[slot] = value;
    this.insertCount++;
    this.length++;
    this.size += size;
  }

  /** Applies a new maximum size, evicting as needed (RFC 7541 §4.3). */
  setMaxSize(maxSize: number): void {
    this.generation++;
    this.maxSize = maxSize;
    this.evictTo(maxSize);
  }

  private evictTo(limit: number): void {
    while (this.size > limit) {
      const slot = (this.insertCount - this.length) & this.mask;
      this.size -= entrySize(this.names[slot], this.values[slot]);
      // Drop the references so evicted strings can be collected.
      this.names[slot] = '';
      this.values[slot] = '';
      this.length--;
    }
  }

  private grow(): void {
    const capacity = Math.max(16, (this.mask + 1) * 2);
    const mask = capacity - 1;
    const names = new Array<string>(capacity).fill('');
    const values = new Array<string>(capacity).fill('');
    for (let counter = this.oldestCounter; counter < this.insertCount; counter++) {
      names[counter & mask] = this.names[counter & this.mask];
      values[counter & mask] = this.values[counter & this.mask];
    }
    this.names = names;
    this.values = values;
    this.mask = mask;
  }
}
