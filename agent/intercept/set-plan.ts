// The `ipset restore` script that makes meshlite's sets hold exactly the desired members (pure): only the difference.

import { type FailMode, PERMANENT_TIMEOUT_S } from './fail-mode.ts';
import type { SavedSet } from './ipset-dump.ts';
import { migrationSetName, type SetDefinition } from './names.ts';
import { type Members, membersMissing } from './member-set.ts';

export interface SetChange {
  readonly name: string;
  /** The set did not exist and is created. */
  readonly created: boolean;
  readonly added: string[];
  readonly removed: string[];
  /** Fail open only: the pods set existed without timeout support (an older meshlite's) and is rebuilt with it. */
  readonly migrated?: true;
  /** Fail closed only: members that were expiring (left by a fail-open agent) and are made permanent. */
  readonly madePermanent?: string[];
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
 * desired empty. `current` holds the sets that exist (from `ipset save`). Members are compared without their
 * timeouts. A set that exists is never re-created: `create -exist` fails when its options differ from the existing
 * set's (a maxelem changed between versions would make every apply fail). `-exist` on add and del makes a script that
 * raced with another writer still succeed. Fail open adds pods with the set's timeout; fail closed with `timeout 0`
 * (permanent), or without a timeout into an older set that has no timeout support.
 */
export function planSets(
  definitions: readonly SetDefinition[],
  desired: ReadonlyMap<string, Members>,
  current: ReadonlyMap<string, SavedSet>,
  failMode: FailMode,
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
    const added = membersMissing(have, wanted);
    const removed = membersMissing(wanted, have);
    const created = existing === undefined;
    const withoutTimeouts = existing !== undefined && existing.timeoutS === null;
    const migrate = failMode === 'open' && definition.timeoutS !== null && withoutTimeouts;
    const madePermanent =
      failMode === 'closed' && existing !== undefined && !withoutTimeouts && existing.expiring.size > 0 ? [...wanted].filter((member) => existing.expiring.has(member)) : [];
    if (!created && !migrate && added.length === 0 && removed.length === 0 && madePermanent.length === 0) continue;
    changes.push({ name, created, added, removed, ...(migrate ? { migrated: true } : {}), ...(madePermanent.length > 0 ? { madePermanent } : {}) });
    if (migrate) {
      lines.push(...migrationLines(definition, wanted));
      continue;
    }
    const timeout = definition.memberTimeoutS === null || withoutTimeouts ? '' : ` timeout ${failMode === 'open' ? definition.memberTimeoutS : PERMANENT_TIMEOUT_S}`;
    if (created) lines.push(createLine(name, definition));
    for (const member of removed) lines.push(`del ${name} ${member} -exist`);
    for (const member of [...added, ...madePermanent]) lines.push(`add ${name} ${member}${timeout} -exist`);
  }
  return { changes, conflicts, script: lines.length === 0 ? null : `${lines.join('\n')}\n` };
}

function createLine(name: string, definition: SetDefinition): string {
  const timeout = definition.timeoutS === null ? '' : ` timeout ${definition.timeoutS}`;
  return `create ${name} ${definition.type} family ${definition.family} maxelem ${definition.maxelem}${timeout} -exist`;
}

/**
 * The rebuild of a pods set without timeout support: iptables rules reference it, so it can be neither destroyed nor
 * re-created; a new set is filled and swapped with it (rules follow the name, so they see the new set at once), and
 * the old one, now unreferenced, destroyed. `flush` empties a leftover of a migration that was interrupted.
 */
function migrationLines(definition: SetDefinition, wanted: Members): string[] {
  const temporary = migrationSetName(definition.name);
  return [
    createLine(temporary, definition),
    `flush ${temporary}`,
    ...[...wanted].map((member) => `add ${temporary} ${member} timeout ${definition.memberTimeoutS} -exist`),
    `swap ${temporary} ${definition.name}`,
    `destroy ${temporary}`,
  ];
}
