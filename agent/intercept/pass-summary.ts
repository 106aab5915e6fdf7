// Tells what a pass changed (pure): updates asked for, versus repairs of what someone else removed or changed.

import type { RepairKind } from './intercept-metrics.ts';
import type { PassResult } from './interception-pass.ts';
import { describeProblem } from './rule-plan.ts';
import type { Members } from './member-set.ts';

export interface Repair {
  readonly kind: RepairKind;
  readonly count: number;
  /** One line for the log: `meshlite-pods-v4: 1 member missing (10.1.0.5)`, `v4 nat PREROUTING: jump missing`. */
  readonly description: string;
}

export interface PassSummary {
  /** Per changed set: counts, for the info line. */
  readonly sets: Record<string, { created: boolean; added: number; removed: number; migrated?: true; madePermanent?: number }>;
  /** Every rule problem fixed, repaired or not: `v4 nat MESHLITE-PREROUTING: chain missing`. */
  readonly rules: string[];
  readonly repairs: Repair[];
}

/** At most this many members are named in a log line; the count is always exact. */
const MEMBERS_NAMED = 10;

/**
 * `applied` is what the previous successful pass left in the kernel (set name → members), or null before the first
 * one; `rulesInstalled` says whether a pass of this process already installed the rules. A difference is a repair
 * only against what this process had put there: at start, rules or members left by a previous agent that differ
 * are an update (the configuration may have changed), not someone else's doing.
 */
export function summarizePass(
  result: PassResult,
  applied: ReadonlyMap<string, Members> | null,
  rulesInstalled: boolean,
): PassSummary {
  const sets: PassSummary['sets'] = {};
  const repairs: Repair[] = [];
  for (const change of result.setChanges) {
    sets[change.name] = {
      created: change.created,
      added: change.added.length,
      removed: change.removed.length,
      ...(change.migrated === true ? { migrated: true } : {}),
      ...(change.madePermanent === undefined ? {} : { madePermanent: change.madePermanent.length }),
    };
    const before = applied?.get(change.name);
    if (before === undefined) continue;
    if (change.created) repairs.push({ kind: 'set', count: 1, description: `${change.name}: set missing, re-created` });
    const missing = change.added.filter((member) => before.has(member));
    if (missing.length > 0) {
      repairs.push({ kind: 'set_member', count: missing.length, description: `${change.name}: ${count(missing, 'member')} missing (${named(missing)})` });
    }
    const foreign = change.removed.filter((member) => !before.has(member));
    if (foreign.length > 0) {
      repairs.push({ kind: 'set_member', count: foreign.length, description: `${change.name}: ${count(foreign, 'member')} added by someone else (${named(foreign)})` });
    }
  }
  const rules: string[] = [];
  for (const [family, problems] of result.ruleProblems) {
    for (const problem of problems) {
      const description = `v${family} ${describeProblem(problem)}`;
      rules.push(description);
      if (rulesInstalled) repairs.push({ kind: problem.kind.startsWith('jump-') ? 'jump' : 'chain', count: 1, description });
    }
  }
  return { sets, rules, repairs };
}

function count(members: readonly string[], noun: string): string {
  return `${members.length} ${noun}${members.length === 1 ? '' : 's'}`;
}

function named(members: readonly string[]): string {
  const shown = members.slice(0, MEMBERS_NAMED).join(', ');
  return members.length > MEMBERS_NAMED ? `${shown}, …` : shown;
}
