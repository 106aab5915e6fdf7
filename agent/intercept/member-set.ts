// An immutable set of set members whose next version costs what changed, and whose versions compare by what changed.

/** What the set plan reads of a set's members: a `Set` is one, and so is a MemberSet. */
export interface Members {
  readonly size: number;
  has(member: string): boolean;
  [Symbol.iterator](): Iterator<string>;
}

/** An overlay may grow to this many members, or an eighth of the base, before a version is flattened. */
const MIN_OVERLAY_BEFORE_FLATTENING = 256;

/**
 * A base set shared between versions, never changed once shared, with the members added to it and removed from it
 * since. A version made by with() copies only the overlay; once the overlay outgrows an eighth of the base the
 * new version is flat again (a new base), so a change costs the overlay plus, amortized, a few members. Two versions
 * of one base differ only where their overlays do: the set plan compares those alone (membersMissing).
 */
export class MemberSet implements Members {
  static readonly EMPTY = new MemberSet(new Set(), new Set(), new Set());

  /** Never changed: members added since are in `added`, members removed since in `removed`. */
  private readonly base: ReadonlySet<string>;
  /** Members not in the base. */
  private readonly added: ReadonlySet<string>;
  /** Members of the base that are not in this version. */
  private readonly removed: ReadonlySet<string>;

  private constructor(base: ReadonlySet<string>, added: ReadonlySet<string>, removed: ReadonlySet<string>) {
    this.base = base;
    this.added = added;
    this.removed = removed;
  }

  /** A flat version of exactly these members. */
  static of(members: Iterable<string>): MemberSet {
    return MemberSet.owning(new Set(members));
  }

  /** A flat version on `members` itself, not a copy: the caller never changes that Set again. */
  static owning(members: Set<string>): MemberSet {
    return new MemberSet(members, MemberSet.EMPTY.added, MemberSet.EMPTY.removed);
  }

  get size(): number {
    return this.base.size + this.added.size - this.removed.size;
  }

  has(member: string): boolean {
    return this.added.has(member) || (this.base.has(member) && !this.removed.has(member));
  }

  *[Symbol.iterator](): Iterator<string> {
    for (const member of this.base) if (!this.removed.has(member)) yield member;
    yield* this.added;
  }

  /** This version with `removes` taken out and `adds` put in (no member in both); this one stays as it is. */
  with(adds: Iterable<string>, removes: Iterable<string>): MemberSet {
    const added = new Set(this.added);
    const removed = new Set(this.removed);
    for (const member of removes) {
      if (!added.delete(member) && this.base.has(member)) removed.add(member);
    }
    for (const member of adds) {
      if (!removed.delete(member) && !this.base.has(member)) added.add(member);
    }
    const next = new MemberSet(this.base, added, removed);
    if (added.size + removed.size <= Math.max(MIN_OVERLAY_BEFORE_FLATTENING, this.base.size >> 3)) return next;
    return MemberSet.of(next);
  }

  /** The members of `from` that `set` lacks, where both are versions of one base: only their overlays are read. */
  static missingFromVersion(set: MemberSet, from: MemberSet): string[] | null {
    if (set.base !== from.base) return null;
    const missing: string[] = [];
    for (const member of from.added) if (!set.has(member)) missing.push(member);
    for (const member of set.removed) if (from.has(member)) missing.push(member);
    return missing;
  }
}

/**
 * The members of `from` that `set` lacks: proportional to what changed between two versions of one MemberSet
 * (a sets pass against the snapshot the last one applied), else to `from` (a loop: spreading 10,000 members first
 * cost as much).
 */
export function membersMissing(set: Members, from: Members): string[] {
  if (set instanceof MemberSet && from instanceof MemberSet) {
    const missing = MemberSet.missingFromVersion(set, from);
    if (missing !== null) return missing;
  }
  const missing: string[] = [];
  for (const member of from) if (!set.has(member)) missing.push(member);
  return missing;
}
