// Reads `ipset save` and `ipset list -n` output into sets with their type, family and members.

import { savedMember } from './set-members.ts';

export interface SavedSet {
  readonly name: string;
  /** `hash:ip`, `hash:ip,port`, … as created. */
  readonly type: string;
  /** `inet` or `inet6`; null for set types without a family (list:set). */
  readonly family: string | null;
  /** In the spelling of set-members.ts (savedMember). */
  readonly members: Set<string>;
}

/** Parses `ipset save [NAME]`: `create NAME TYPE [family F] [options]` lines, each followed by its `add NAME MEMBER` lines. */
export function parseIpsetSave(text: string): Map<string, SavedSet> {
  const sets = new Map<string, SavedSet>();
  for (const raw of text.split('\n')) {
    const words = raw.trim().split(/\s+/);
    if (words[0] === 'create' && words.length >= 3) {
      const familyAt = words.indexOf('family', 3);
      const family = familyAt > 0 && familyAt + 1 < words.length ? words[familyAt + 1] : null;
      sets.set(words[1], { name: words[1], type: words[2], family, members: new Set() });
    } else if (words[0] === 'add' && words.length >= 3) {
      // Options after the member (timeout, comment, …) are not part of it.
      sets.get(words[1])?.members.add(savedMember(words[2]));
    }
  }
  return sets;
}

/** Parses `ipset list -n`: one set name a line. */
export function parseIpsetNames(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
}
