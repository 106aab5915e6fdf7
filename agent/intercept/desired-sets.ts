// What the sets must hold: the complete desired pods and destinations, split by family, as set name → members.

import { MemberSet, type Members } from './member-set.ts';
import { destinationSetName, type IpFamily, podSetName } from './names.ts';
import { destinationMember, type Member, podMember } from './set-members.ts';

export interface Destination {
  readonly ip: string;
  readonly port: number;
}

/** A destination that became claimed (its first claim) or was given up (its last): the registry's address changes. */
export interface DestinationChange extends Destination {
  readonly claimed: boolean;
}

/** The outcome of changing one side: what was skipped, so the caller can log it. */
export interface Replaced {
  /** Entries that are not addresses (or ports out of range), as given. */
  readonly invalid: string[];
  /** Valid entries of a family interception is off for (no node IP of that family). */
  readonly otherFamily: number;
}

/**
 * Every change makes new versions of the sets it touches (MemberSet), never changing the old ones: a pass holds on
 * to the snapshot it applies while the next changes come in, and the manager keeps the last applied one to tell a
 * repair from an update, and to plan the next sets pass from what changed since.
 */
export class DesiredSets {
  private readonly families: readonly IpFamily[];
  private members = new Map<string, MemberSet>();
  /**
   * Destination member → how many of the given destinations spell it (`10.1.0.5` and `::ffff:10.1.0.5` are one
   * member): a member leaves when the last of them is given up.
   */
  private destinationCounts = new Map<string, number>();

  constructor(families: readonly IpFamily[]) {
    this.families = families;
    for (const family of families) {
      this.members.set(podSetName(family), MemberSet.EMPTY);
      this.members.set(destinationSetName(family), MemberSet.EMPTY);
    }
  }

  replacePods(ips: Iterable<string>): Replaced {
    const next = this.emptyByFamily();
    const invalid: string[] = [];
    let otherFamily = 0;
    for (const ip of ips) {
      const member = podMember(String(ip));
      if (member === null) invalid.push(String(ip));
      else if (!this.collect(next, member)) otherFamily++;
    }
    this.install(podSetName, next);
    return { invalid, otherFamily };
  }

  /** The complete destinations (an address given twice is one member). */
  replaceDestinations(destinations: Iterable<Destination>): Replaced {
    const next = this.emptyByFamily();
    const counts = new Map<string, number>();
    const invalid: string[] = [];
    let otherFamily = 0;
    for (const { ip, port } of destinations) {
      const member = destinationMember(String(ip), port);
      if (member === null) invalid.push(`${ip}:${port}`);
      else if (!this.collect(next, member)) otherFamily++;
      else counts.set(member.member, (counts.get(member.member) ?? 0) + 1);
    }
    this.destinationCounts = counts;
    this.install(destinationSetName, next);
    return { invalid, otherFamily };
  }

  /**
   * Destinations claimed and given up since the last change, in order: time proportional to them, not to the
   * destinations held (an endpoint added to a Service of 10,000). Giving up one never claimed changes nothing.
   */
  changeDestinations(changes: Iterable<DestinationChange>): Replaced {
    /** Each member the changes touched: its family, and whether it was desired before them. */
    const touched = new Map<string, { family: IpFamily; before: boolean }>();
    const invalid: string[] = [];
    let otherFamily = 0;
    for (const { ip, port, claimed } of changes) {
      const member = destinationMember(String(ip), port);
      if (member === null) {
        if (claimed) invalid.push(`${ip}:${port}`);
        continue;
      }
      if (!this.families.includes(member.family)) {
        if (claimed) otherFamily++;
        continue;
      }
      const count = this.destinationCounts.get(member.member) ?? 0;
      if (!claimed && count === 0) continue;
      if (!touched.has(member.member)) touched.set(member.member, { family: member.family, before: count > 0 });
      if (claimed) this.destinationCounts.set(member.member, count + 1);
      else if (count === 1) this.destinationCounts.delete(member.member);
      else this.destinationCounts.set(member.member, count - 1);
    }
    // Claimed and given up within one batch is no change: only where a member's presence differs is the set changed.
    const adds = new Map<IpFamily, string[]>();
    const removes = new Map<IpFamily, string[]>();
    for (const [member, { family, before }] of touched) {
      const after = this.destinationCounts.has(member);
      if (after !== before) listIn(after ? adds : removes, family).push(member);
    }
    if (adds.size > 0 || removes.size > 0) {
      const members = new Map(this.members);
      for (const family of this.families) {
        const familyAdds = adds.get(family) ?? [];
        const familyRemoves = removes.get(family) ?? [];
        if (familyAdds.length === 0 && familyRemoves.length === 0) continue;
        const name = destinationSetName(family);
        members.set(name, (this.members.get(name) ?? MemberSet.EMPTY).with(familyAdds, familyRemoves));
      }
      this.members = members;
    }
    return { invalid, otherFamily };
  }

  /** Set name → members, for every set of the enabled families. Immutable: later changes do not change it. */
  snapshot(): ReadonlyMap<string, Members> {
    return this.members;
  }

  private emptyByFamily(): Map<IpFamily, Set<string>> {
    return new Map(this.families.map((family) => [family, new Set<string>()]));
  }

  /** Adds the member to its family's set; false when its family is not intercepted. */
  private collect(next: Map<IpFamily, Set<string>>, member: Member): boolean {
    const set = next.get(member.family);
    set?.add(member.member);
    return set !== undefined;
  }

  /** The new sets of one side, in a new map: the snapshot handed out before stays as it was. */
  private install(setName: (family: IpFamily) => string, next: ReadonlyMap<IpFamily, Set<string>>): void {
    const members = new Map(this.members);
    for (const [family, set] of next) members.set(setName(family), MemberSet.owning(set));
    this.members = members;
  }
}

function listIn(lists: Map<IpFamily, string[]>, family: IpFamily): string[] {
  let list = lists.get(family);
  if (list === undefined) {
    list = [];
    lists.set(family, list);
  }
  return list;
}
