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
  /**
   * Destinations parsed before, by port and then IP as given: a replace (every endpoint change of a large Service)
   * parses only addresses it has not seen, and gets the same member strings back, whose hashes are computed once.
   * Emptied when it holds far more than is desired now, so pods that came and went do not pile up.
   */
  private readonly parsedDestinations = new Map<number, Map<string, Member | null>>();
  private parsedCount = 0;

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
    const next = new Map(this.families.map((family) => [family, new Set<string>()]));
    const invalid: string[] = [];
    let otherFamily = 0;
    let count = 0;
    for (const { ip, port } of destinations) {
      count++;
      const member = this.parsedDestination(ip, port);
      if (member === null) invalid.push(`${ip}:${port}`);
      else {
        const set = next.get(member.family);
        if (set === undefined) otherFamily++;
        else set.add(member.member);
      }
    }
    if (this.parsedCount > 2 * count + 1024) {
      this.parsedDestinations.clear();
      this.parsedCount = 0;
    }
    this.install(destinationSetName, next);
    return { invalid, otherFamily };
  }

  private parsedDestination(ip: string, port: number): Member | null {
    let byIp = this.parsedDestinations.get(port);
    if (byIp === undefined) {
      byIp = new Map();
      this.parsedDestinations.set(port, byIp);
    }
    let member = byIp.get(ip);
    if (member === undefined) {
      member = destinationMember(String(ip), port);
      byIp.set(ip, member);
      this.parsedCount++;
    }
    return member;
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
    this.install(setName, next);
    return { invalid, otherFamily };
  }

  /** The new sets of one side, in a new map: the snapshot handed out before stays as it was. */
  private install(setName: (family: IpFamily) => string, next: ReadonlyMap<IpFamily, ReadonlySet<string>>): void {
    const members = new Map(this.members);
    for (const [family, set] of next) members.set(setName(family), set);
    this.members = members;
  }
}

