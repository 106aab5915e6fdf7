// The iptables rules interception needs (pure): what they are, what a dump lacks, and the restore script that repairs it.

import { chainRules, hasChain, hasComment, type IptablesDump, ruleTarget, sameRule } from './iptables-dump.ts';
import {
  CHAIN_HOOKS,
  type ChainHook,
  destinationSetName,
  type IpFamily,
  MESHLITE_COMMENT,
  podSetName,
  type TableName,
} from './names.ts';

export interface RuleSpec {
  readonly family: IpFamily;
  /** Canonical spelling (IPv6 compressed, lower case): the DNAT target and the address the listener guard covers. */
  readonly nodeIP: string;
  readonly proxyPort: number;
}

/** What a dump lacks or has wrong, one entry per finding, in CHAIN_HOOKS order. */
export type RuleProblem =
  | { kind: 'chain-missing'; table: TableName; chain: string }
  | { kind: 'chain-changed'; table: TableName; chain: string }
  | { kind: 'jump-missing'; table: TableName; builtin: string }
  | { kind: 'jump-duplicated'; table: TableName; builtin: string; count: number }
  | { kind: 'jump-changed'; table: TableName; builtin: string }
  | { kind: 'jump-misplaced'; table: TableName; builtin: string };

/** The chain kube-proxy's jumps lead to start with this; meshlite's jump must come before the first of them. */
const KUBE_CHAIN_PREFIX = 'KUBE-';

/** The jump from a built-in chain, spelled as iptables-save prints it (so it compares equal and `-D` finds it). */
export function jumpSpec(hook: ChainHook): string {
  return `-m comment --comment ${MESHLITE_COMMENT} -j ${hook.chain}`;
}

/**
 * The rules of meshlite's own chains, spelled as iptables-save prints them.
 *
 * nat: a TCP connection from an opted-in pod (source in the pods set) to a gRPC destination (address and port in
 * the destinations set) is redirected to the listener on the node IP.
 *
 * filter (the listener guard; see docs/architecture.md, Interception): on the node IP, the proxy port takes only
 * connections that were DNATed here; anything else addressed to it directly is refused with a TCP reset. Reset
 * rather than drop: the port is no secret (the DaemonSet's manifest names it), so silence hides nothing, while a
 * reset makes a misdirected client fail at once with "connection refused" — what it would see were nothing
 * listening — instead of hanging until its connect timeout; and it answers each SYN with one small packet, no
 * amplification.
 */
export function ownChainRules(spec: RuleSpec): Record<TableName, string[]> {
  const { family, nodeIP, proxyPort } = spec;
  const host = family === 4 ? `${nodeIP}/32` : `${nodeIP}/128`;
  const target = family === 4 ? `${nodeIP}:${proxyPort}` : `[${nodeIP}]:${proxyPort}`;
  const toListener = `-d ${host} -p tcp -m tcp --dport ${proxyPort}`;
  return {
    nat: [
      `-p tcp -m set --match-set ${podSetName(family)} src -m set --match-set ${destinationSetName(family)} dst,dst ` +
        `-j DNAT --to-destination ${target}`,
    ],
    filter: [`${toListener} -m conntrack --ctstate DNAT -j ACCEPT`, `${toListener} -j REJECT --reject-with tcp-reset`],
  };
}

/** Everything meshlite expects of `spec`'s family that `dump` lacks or has changed; empty when all is in place. */
export function checkRules(dump: IptablesDump, spec: RuleSpec): RuleProblem[] {
  const expected = ownChainRules(spec);
  const problems: RuleProblem[] = [];
  for (const hook of CHAIN_HOOKS) {
    const { table, chain, builtin } = hook;
    if (!hasChain(dump, table, chain)) {
      problems.push({ kind: 'chain-missing', table, chain });
    } else if (!sameRules(chainRules(dump, table, chain), expected[table])) {
      problems.push({ kind: 'chain-changed', table, chain });
    }
    const jump = checkJump(chainRules(dump, table, builtin), hook);
    if (jump !== null) problems.push(jump);
  }
  return problems;
}

/**
 * The `iptables-restore --noflush` script that puts right everything checkRules finds, or null when nothing is
 * wrong. Only tables with a problem appear. Declaring a chain flushes it, so a chain is rewritten whole in the same
 * commit as its jump: the apply is atomic (no moment with half a chain) and idempotent (running it twice is
 * running it once). A jump is inserted at position 1 only when none is right, so it is never duplicated.
 */
export function planRules(dump: IptablesDump, spec: RuleSpec): { problems: RuleProblem[]; script: string | null } {
  const problems = checkRules(dump, spec);
  if (problems.length === 0) return { problems, script: null };
  const expected = ownChainRules(spec);
  const lines: string[] = [];
  for (const hook of CHAIN_HOOKS) {
    const { table, chain, builtin } = hook;
    const mine = problems.filter((problem) => problem.table === table);
    if (mine.length === 0) continue;
    lines.push(`*${table}`);
    if (mine.some((problem) => problem.kind === 'chain-missing' || problem.kind === 'chain-changed')) {
      lines.push(`:${chain} - [0:0]`);
      for (const rule of expected[table]) lines.push(`-A ${chain} ${rule}`);
    }
    if (mine.some((problem) => problem.kind.startsWith('jump-'))) {
      for (const rule of chainRules(dump, table, builtin)) {
        if (hasComment(rule, MESHLITE_COMMENT)) lines.push(`-D ${builtin} ${rule}`);
      }
      lines.push(`-I ${builtin} 1 ${jumpSpec(hook)}`);
    }
    lines.push('COMMIT');
  }
  return { problems, script: `${lines.join('\n')}\n` };
}

/** One line per problem, for logs: `nat PREROUTING: jump to MESHLITE-PREROUTING missing`. */
export function describeProblem(problem: RuleProblem): string {
  switch (problem.kind) {
    case 'chain-missing':
      return `${problem.table} ${problem.chain}: chain missing`;
    case 'chain-changed':
      return `${problem.table} ${problem.chain}: rules changed`;
    case 'jump-missing':
      return `${problem.table} ${problem.builtin}: jump missing`;
    case 'jump-duplicated':
      return `${problem.table} ${problem.builtin}: jump present ${problem.count} times`;
    case 'jump-changed':
      return `${problem.table} ${problem.builtin}: jump changed`;
    case 'jump-misplaced':
      return `${problem.table} ${problem.builtin}: jump after kube-proxy's`;
  }
}

/** The one finding about meshlite's jump in a built-in chain's rules, or null when it is right. */
function checkJump(rules: readonly string[], hook: ChainHook): RuleProblem | null {
  const { table, builtin } = hook;
  const mine = rules.map((rule, index) => ({ rule, index })).filter(({ rule }) => hasComment(rule, MESHLITE_COMMENT));
  if (mine.length === 0) return { kind: 'jump-missing', table, builtin };
  if (mine.length > 1) return { kind: 'jump-duplicated', table, builtin, count: mine.length };
  if (!sameRule(mine[0].rule, jumpSpec(hook))) return { kind: 'jump-changed', table, builtin };
  // Before kube-proxy's first jump: its DNAT ends the nat traversal, so a later jump would never see the packet.
  // Other tools' jumps may come first (a CNI's own chain at position 1 is fine): fighting over position 1 would
  // make two reconcilers move their jumps forever.
  const firstKube = rules.findIndex((rule) => ruleTarget(rule)?.startsWith(KUBE_CHAIN_PREFIX) ?? false);
  if (firstKube >= 0 && firstKube < mine[0].index) return { kind: 'jump-misplaced', table, builtin };
  return null;
}

function sameRules(actual: readonly string[], expected: readonly string[]): boolean {
  return actual.length === expected.length && actual.every((rule, i) => sameRule(rule, expected[i]));
}
