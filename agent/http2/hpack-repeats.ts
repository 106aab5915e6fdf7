// Header blocks that repeat byte for byte. A gRPC channel sends the same request head for every call of a method, and
// an endpoint the same response head and trailers for every answer; once their fields are in the dynamic tables each
// is a few indexed octets. While a dynamic table is as it was, the same octets decode to the same fields and the same
// fields encode to the same octets, so both directions keep the few they saw last and skip the work when one recurs.
//
// A block is kept only when coding it changed nothing in the table (no insertion, no size update): replaying one that
// did would insert twice. The table's generation (hpack-dynamic-table.ts) says whether it changed since.
//
// Heads that repeat all but a field or two (a new grpc-timeout per call) never repeat whole; for those the encoder
// keeps the octets of the leading fields a list shares with the last one (EncodedPrefix).

/** Blocks longer than this are not kept: repeats are short once indexed, and a long one would cost memory. */
export const MAX_REPEAT_OCTETS = 128;
/** How many recent blocks each side keeps: a head and trailers per kind of call, a few kinds of call. */
const SLOTS = 4;
/** Fields recorded for a prefix: a gRPC request head has about ten; those of a longer list past it are encoded. */
const MAX_PREFIX_FIELDS = 32;

// Buffer's own latin1 slice: what toString('latin1', start, end) calls after normalising its arguments.
type Latin1Buffer = Buffer & { latin1Slice(start: number, end: number): string };

const NO_KEYS: string[] = [];
const NO_LISTS: (readonly string[])[] = [];
const NO_GENERATIONS: number[] = [];
const NO_ENDS: number[] = [];

/**
 * The decoder's side: block octets → the header list they decoded to. The list is handed out again on a repeat, so
 * header lists are read-only for everyone downstream of a decoder.
 */
export class RepeatedBlocks {
  /** Each kept block's octets as a latin1 string (compact, and no buffer pinned). None until the first block. */
  private octets: string[] = NO_KEYS;
  private lists: (readonly string[])[] = NO_LISTS;
  private generations: number[] = NO_GENERATIONS;
  private next = 0;

  /** The list `block[start, end)` decoded to last time, if the table is still at `generation`; else null. */
  find(block: Uint8Array, start: number, end: number, generation: number): readonly string[] | null {
    const length = end - start;
    const octets = this.octets;
    for (let slot = 0; slot < octets.length; slot++) {
      const kept = octets[slot];
      if (kept.length !== length || this.generations[slot] !== generation) continue;
      let i = 0;
      while (i < length && kept.charCodeAt(i) === block[start + i]) i++;
      if (i === length) return this.lists[slot];
    }
    return null;
  }

  /** `block[start, end)` decoded to `list` and left the table at `generation` (the caller checked it was unchanged). */
  remember(block: Buffer, start: number, end: number, generation: number, list: readonly string[]): void {
    if (end - start > MAX_REPEAT_OCTETS) return;
    if (this.octets === NO_KEYS) {
      this.octets = new Array<string>(SLOTS).fill('');
      this.lists = new Array<readonly string[]>(SLOTS).fill(NO_KEYS);
      this.generations = new Array<number>(SLOTS).fill(-1);
    }
    const slot = this.next;
    this.next = (slot + 1) % SLOTS;
    this.octets[slot] = (block as Latin1Buffer).latin1Slice(start, end);
    this.lists[slot] = list;
    this.generations[slot] = generation;
  }
}

/**
 * The encoder's side: a header list → the octets it encoded to. Lists are compared field by field with a copy kept
 * here, so a caller that changes its array after encoding it cannot make a stale entry match.
 */
export class RepeatedLists {
  private lists: (readonly string[])[] = NO_LISTS;
  private octets: string[] = NO_KEYS;
  private generations: number[] = NO_GENERATIONS;
  private next = 0;

  /** The octets `headers` encoded to last time, if the table is still at `generation`; else null. */
  find(headers: readonly string[], generation: number): string | null {
    const lists = this.lists;
    for (let slot = 0; slot < lists.length; slot++) {
      if (this.generations[slot] !== generation) continue;
      if (sameFields(lists[slot], headers)) return this.octets[slot];
    }
    return null;
  }

  /** `headers` encoded to `block[0, length)` and left the table at `generation` (checked unchanged by the caller). */
  remember(headers: readonly string[], block: Buffer, length: number, generation: number): void {
    if (length > MAX_REPEAT_OCTETS) return;
    if (this.lists === NO_LISTS) {
      this.lists = new Array<readonly string[]>(SLOTS).fill(NO_KEYS);
      this.octets = new Array<string>(SLOTS).fill('');
      this.generations = new Array<number>(SLOTS).fill(-1);
    }
    const slot = this.next;
    this.next = (slot + 1) % SLOTS;
    this.lists[slot] = headers.slice();
    this.octets[slot] = (block as Latin1Buffer).latin1Slice(0, length);
    this.generations[slot] = generation;
  }
}

/** From the end: the fields that vary per call (a grpc-timeout, an id) come after those that do not. */
function sameFields(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = a.length - 1; i >= 0; i--) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The encoder's side for lists that repeat all but a field or two: a client that sets a deadline on every call sends
 * a new `grpc-timeout` each time, so its request lists never repeat whole. This keeps the fields of the last list
 * encoded field by field that left the table as it was, and where each field's octets end. While the table is still
 * at that generation and the encoder's output still begins with that block, a list that begins with the same fields
 * begins with the same octets, already in place.
 */
export class EncodedPrefix {
  /** The fields of the recorded block (`name, value, ...`, reused), and the octet offset after each field. */
  private fields: string[] = NO_KEYS;
  private ends: number[] = NO_ENDS;
  private fieldCount = 0;
  private generation = -1;

  /**
   * How many leading fields of `headers` equal the recorded list's, if the table is still at the generation it was
   * recorded at; 0 otherwise.
   */
  matchingFields(headers: readonly string[], generation: number): number {
    if (generation !== this.generation) return 0;
    const fields = this.fields;
    const limit = Math.min(this.fieldCount, headers.length >> 1);
    let matched = 0;
    while (matched < limit) {
      const at = matched << 1;
      if (headers[at] !== fields[at] || headers[at + 1] !== fields[at + 1]) break;
      matched++;
    }
    return matched;
  }

  /** The end of the octets of the recorded list's first `count` fields (0 for none). */
  octetsBefore(count: number): number {
    return count === 0 ? 0 : this.ends[count - 1];
  }

  /**
   * Field `k` of the block being encoded field by field ends at `end` in the encoder's output. Fields before the
   * matching ones are not noted again: they are the recorded ones.
   */
  noteField(k: number, name: string, value: string, end: number): void {
    if (k >= MAX_PREFIX_FIELDS) return;
    if (this.fields === NO_KEYS) {
      this.fields = new Array<string>(MAX_PREFIX_FIELDS * 2).fill('');
      this.ends = new Array<number>(MAX_PREFIX_FIELDS).fill(0);
    }
    this.fields[k << 1] = name;
    this.fields[(k << 1) + 1] = value;
    this.ends[k] = end;
  }

  /**
   * The block of `count` fields noted is complete and left the table at `generation`; of a longer list the first
   * MAX_PREFIX_FIELDS are kept. (A block that changed the table is not recorded: the generation it left cannot match
   * the one recorded before, which never recurs.)
   */
  recorded(count: number, generation: number): void {
    this.fieldCount = Math.min(count, MAX_PREFIX_FIELDS);
    this.generation = generation;
  }

  /** The encoder's output still holds the recorded block's first `count` fields only. */
  keepFirst(count: number): void {
    if (count < this.fieldCount) this.fieldCount = count;
  }
}
