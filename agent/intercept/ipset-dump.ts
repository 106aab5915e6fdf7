// Reads `ipset save` and `ipset list -n` output into sets with their type, family, timeout support and members.

import { savedMember } from './set-members.ts';
import type { Members } from './member-set.ts';

export interface SavedSet {
  readonly name: string;
  /** `hash:ip`, `hash:ip,port`, … as created. */
  readonly type: string;
  /** `inet` or `inet6`; null for set types without a family (list:set). */
  readonly family: string | null;
  /** The set's default timeout in seconds when it was created with timeout support; null without. */
  readonly timeoutS: number | null;
  /** In the spelling of set-members.ts (savedMember): the member only, never its timeout. */
  readonly members: Members;
  /** The members that expire (a non-zero timeout left); a member with `timeout 0` or none is permanent. */
  readonly expiring: Members;
}

/**
 * Parses `ipset save [NAME]`: `create NAME TYPE [family F] [options]` lines, each followed by its
 * `add NAME MEMBER [timeout N] [other options]` lines.
 */
export function parseIpsetSave(text: string): Map<string, SavedSet> {
  const sets = new Map<string, SavedSet & { readonly members: Set<string>; readonly expiring: Set<string> }>();
  for (const raw of text.split('\n')) {
    const words = raw.trim().split(/\s+/);
    if (words[0] === 'create' && words.length >= 3) {
      const family = optionValue(words, 'family', 3);
      const timeout = optionValue(words, 'timeout', 3);
      const timeoutS = timeout === null ? null : Number(timeout);
      sets.set(words[1], { name: words[1], type: words[2], family, timeoutS, members: new Set(), expiring: new Set() });
    } else if (words[0] === 'add' && words.length >= 3) {
      const set = sets.get(words[1]);
      if (set === undefined) continue;
      const member = savedMember(words[2]);
      set.members.add(member);
      const timeout = optionValue(words, 'timeout', 3);
      if (timeout !== null && Number(timeout) > 0) set.expiring.add(member);
    }
  }
  return sets;
}

/** The word after `option` (searched from `from` on), or null. */
function optionValue(words: readonly string[], option: string, from: number): string | null {
  const at = words.indexOf(option, from);
  return at > 0 && at + 1 < words.length ? words[at + 1] : null;
}

/** Parses `ipset list -n`: one set name a line. */
export function parseIpsetNames(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
}
