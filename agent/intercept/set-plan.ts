// The `ipset restore` script that makes meshlite's sets hold exactly the desired members (pure): only the difference.

import type { SavedSet } from './ipset-dump.ts';
import type { SetDefinition } from './names.ts';

export interface SetChange {
  readonly name: string;
  /** The set did not exist and is created. */
  readonly created: boolean;
  readonly added: string[];
  readonly removed: string[];
}

export interface SetPlan {
  /** One entry per set that changes, in definition order. */
  readonly changes: SetChange[];
  /** Sets that exist with another type or family (someone else's, or damaged): left alone, reported. */
  readonly conflicts: string[];
  /** null when every set is already right. */
  readonly script: string | null;
}

/**
 * `desired` maps a set name to its members (spelled as set-members.ts does); a definition without an entry is
 * desired empty. `current` holds the sets that exist (from `ipset save`). A set that exists is never re-created:
 * `create -exist` fails when its options differ from the existing set's (a maxelem changed between versions would
 * make every apply fail). `-exist` on add and del makes a script that raced with another writer still succeed.
 */
export function planSets(
  definitions: readonly SetDefinition[],
  desired: ReadonlyMap<string, ReadonlySet<string>>,
  current: ReadonlyMap<string, SavedSet>,
): SetPlan {
  const changes: SetChange[] = [];
  const conflicts: string[] = [];
  const lines: string[] = [];
  for (const definition of definitions) {
    const { name } = definition;
    const wanted = desired.get(name) ?? new Set<string>();
    const existing = current.get(name);
    if (existing !== undefined && (existing.type !== definition.type || existing.family !== definition.family)) {
      conflicts.push(`${name}: is ${existing.type} family ${existing.family ?? 'none'}, expected ${definition.type} family ${definition.family}`);
      continue;
    }
    const have = existing?.members ?? new Set<string>();
    const added = [...wanted].filter((member) => !have.has(member));
    const removed = [...have].filter((member) => !wanted.has(member));
    const created = existing === undefined;
    if (!created && added.length === 0 && removed.length === 0) continue;
    changes.push({ name, created, added, removed });
    if (created) lines.push(`create ${name} ${definition.type} family ${definition.family} maxelem ${definition.maxelem} -exist`);
    for (const member of removed) lines.push(`del ${name} ${member} -exist`);
    for (const member of added) lines.push(`add ${name} ${member} -exist`);
  }
  return { changes, conflicts, script: lines.length === 0 ? null : `${lines.join('\n')}\n` };
}
