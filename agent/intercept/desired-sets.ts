// What the sets must hold: the complete desired pods and destinations, split by family, as set name → members.

import { destinationSetName, type IpFamily, podSetName } from './names.ts';
import { destinationMember, type Member, podMember } from './set-members.ts';

export interface Destination {
  readonly ip: string;
  readonly port: number;
}

/** The outcome of replacing one side: what was skipped, so the caller can log it. */
export interface Replaced {
  /** Entries that are not addresses (or ports out of range), as given. */
  readonly invalid: string[];
  /** Valid entries of a family interception is off for (no node IP of that family). */
  readonly otherFamily: number;
}

/**
 * Each replace builds new Sets, never mutating the old ones: a pass holds on to the snapshot it applies while the
 * next changes come in, and the manager keeps the last applied one to tell a repair from an update.
 */
export class DesiredSets {
  private readonly families: readonly IpFamily[];
  private members = new Map<string, ReadonlySet<string>>();

  constructor(families: readonly IpFamily[]) {
    this.families = families;
    for (const family of families) {
      this.members.set(podSetName(family), new Set());
      this.members.set(destinationSetName(family), new Set());
    }
  }

  replacePods(ips: Iterable<string>): Replaced {
    const entries: Array<{ text: string; member: Member | null }> = [];
    for (const ip of ips) entries.push({ text: String(ip), member: podMember(String(ip)) });
    return this.replace(podSetName, entries);
  }

  replaceDestinations(destinations: Iterable<Destination>): Replaced {
    const entries: Array<{ text: string; member: Member | null }> = [];
    for (const { ip, port } of destinations) entries.push({ text: `${ip}:${port}`, member: destinationMember(String(ip), port) });
    return this.replace(destinationSetName, entries);
  }

  /** Set name → members, for every set of the enabled families. Immutable: later replaces do not change it. */
  snapshot(): ReadonlyMap<string, ReadonlySet<string>> {
    return this.members;
  }

  private replace(setName: (family: IpFamily) => string, entries: Array<{ text: string; member: Member | null }>): Replaced {
    const next = new Map(this.families.map((family) => [family, new Set<string>()]));
    const invalid: string[] = [];
    let otherFamily = 0;
    for (const { text, member } of entries) {
      if (member === null) invalid.push(text);
      else if (next.has(member.family)) next.get(member.family)?.add(member.member);
      else otherFamily++;
    }
    const members = new Map(this.members);
    for (const [family, set] of next) members.set(setName(family), set);
    this.members = members;
    return { invalid, otherFamily };
  }
}

