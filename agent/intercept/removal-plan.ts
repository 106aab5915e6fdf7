// What removing interception takes (pure): the restore scripts that delete meshlite's jumps, chains and sets, and nothing else.

import { chainRules, hasChain, hasComment, type IptablesDump } from './iptables-dump.ts';
import { ALL_SET_NAMES, CHAIN_HOOKS, MESHLITE_COMMENT } from './names.ts';

export interface RuleRemoval {
  /** For the log: `nat PREROUTING: jump`, `nat MESHLITE-PREROUTING: chain`. */
  readonly removed: string[];
  /** An `iptables-restore --noflush` script, or null when the dump holds nothing of meshlite's. */
  readonly script: string | null;
}

/**
 * Every rule carrying meshlite's comment is deleted by its exact printed spec (a jump somebody duplicated goes too),
 * then meshlite's chains are flushed and deleted. Computed from the dump, so it names only what exists: a second
 * run, or a run on a machine that never had meshlite, yields null and runs nothing.
 */
export function planRuleRemoval(dump: IptablesDump): RuleRemoval {
  const removed: string[] = [];
  const lines: string[] = [];
  for (const { table, chain } of CHAIN_HOOKS) {
    const tableLines: string[] = [];
    for (const rule of dump.get(table)?.rules ?? []) {
      if (rule.chain === chain || !hasComment(rule.spec, MESHLITE_COMMENT)) continue;
      tableLines.push(`-D ${rule.chain} ${rule.spec}`);
      removed.push(`${table} ${rule.chain}: jump`);
    }
    if (hasChain(dump, table, chain)) {
      // -F first: a chain must be empty to be deleted; the chain's own rules need no -D.
      tableLines.push(`-F ${chain}`, `-X ${chain}`);
      removed.push(`${table} ${chain}: chain (${chainRules(dump, table, chain).length} rules)`);
    }
    if (tableLines.length > 0) lines.push(`*${table}`, ...tableLines, 'COMMIT');
  }
  return { removed, script: lines.length === 0 ? null : `${lines.join('\n')}\n` };
}

/** The `ipset restore` script destroying meshlite's sets among `existing` (from `ipset list -n`), or null. */
export function planSetRemoval(existing: Iterable<string>): { removed: string[]; script: string | null } {
  const present = new Set(existing);
  const removed = ALL_SET_NAMES.filter((name) => present.has(name));
  return { removed, script: removed.length === 0 ? null : `${removed.map((name) => `destroy ${name}`).join('\n')}\n` };
}
