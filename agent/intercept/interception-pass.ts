// One pass of interception against the kernel: read meshlite's sets (and rules), plan the difference, apply it.

import type { CommandRunner } from './command-runner.ts';
import type { FailMode } from './fail-mode.ts';
import { parseIptablesSave } from './iptables-dump.ts';
import { type IptablesBackend, iptablesCommands } from './iptables-backend.ts';
import { parseIpsetNames, parseIpsetSave, type SavedSet } from './ipset-dump.ts';
import type { IpFamily, SetDefinition } from './names.ts';
import { setDefinitions } from './names.ts';
import { InterceptError, runChecked } from './netfilter-command.ts';
import { planRules, type RuleProblem } from './rule-plan.ts';
import { planSets, type SetChange } from './set-plan.ts';
import type { Members } from './member-set.ts';

/** A family interception is on for, and the node IP its connections are redirected to. */
export interface FamilyTarget {
  readonly family: IpFamily;
  readonly nodeIP: string;
}

export interface PassOptions {
  readonly runner: CommandRunner;
  readonly backend: IptablesBackend;
  readonly families: readonly FamilyTarget[];
  readonly proxyPort: number;
  /** How pods are added: expiring unless refreshed (open), or permanent (closed). */
  readonly failMode: FailMode;
  /** Set name → the members it must hold exactly (a missing entry: empty). */
  readonly desired: ReadonlyMap<string, Members>;
  /** Also check and repair the iptables rules (start and the periodic reconcile); a sets-only pass skips them. */
  readonly rules: boolean;
  /** A family's `-save` output already read (backend detection reads IPv4's): saves one command. */
  readonly dumps?: ReadonlyMap<IpFamily, string>;
  /**
   * What the sets hold as far as the caller knows (what its last successful pass left there): when given, the sets
   * are not read. A sets-only pass uses this, so a pod's enrollment costs one `ipset restore` and no dump of a large
   * destinations set; `-exist` keeps the script valid even if someone changed a set meanwhile, and the periodic
   * reconcile, which reads, repairs that.
   */
  readonly assumed?: ReadonlyMap<string, Members>;
}

export interface PassResult {
  /** meshlite's sets as they were before this pass (absent: the set did not exist). */
  readonly before: ReadonlyMap<string, SavedSet>;
  readonly setChanges: readonly SetChange[];
  /** What each family's rules lacked before this pass; empty lists when they were right or not checked. */
  readonly ruleProblems: ReadonlyMap<IpFamily, readonly RuleProblem[]>;
}

/**
 * Sets first, then rules: `iptables-restore` refuses a rule naming a set that does not exist, and a new rule must
 * find its sets already filled. A set of the wrong type (ML_INTERCEPT_SET_CONFLICT) costs only its own family:
 * the other family is applied, then the pass fails so that the manager reports and retries.
 */
export async function applyInterception(options: PassOptions): Promise<PassResult> {
  const { runner, backend, families, proxyPort, desired } = options;
  const definitions = families.flatMap(({ family }) => setDefinitions(family));
  const before = options.assumed === undefined ? await readSets(runner, definitions) : assumedSets(definitions, options.assumed);
  const setPlan = planSets(definitions, desired, before, options.failMode);
  if (setPlan.script !== null) await runChecked(runner, 'ipset', ['restore'], setPlan.script);
  const blocked = new Set(
    definitions.filter((definition) => setPlan.conflicts.some((c) => c.startsWith(`${definition.name}:`))).map((d) => d.ipFamily),
  );
  const ruleProblems = new Map<IpFamily, RuleProblem[]>();
  for (const { family, nodeIP } of families) {
    ruleProblems.set(family, []);
    if (!options.rules || blocked.has(family)) continue;
    const commands = iptablesCommands(backend, family);
    const dump = options.dumps?.get(family) ?? (await runChecked(runner, commands.save, []));
    const plan = planRules(parseIptablesSave(dump), { family, nodeIP, proxyPort });
    ruleProblems.set(family, plan.problems);
    if (plan.script !== null) await runChecked(runner, commands.restore, commands.restoreArgs, plan.script);
  }
  if (setPlan.conflicts.length > 0) {
    throw new InterceptError('ML_INTERCEPT_SET_CONFLICT', `ipsets in the way: ${setPlan.conflicts.join('; ')}`);
  }
  return { before, setChanges: setPlan.changes, ruleProblems };
}

/** As this process's passes left them: with the timeout support they were created with, no member retimed since.
 *  The members are the applied snapshot itself, not a copy (a snapshot never changes; 10,000 destinations took
 *  1–1.4 ms to copy, on every pass). */
function assumedSets(definitions: readonly SetDefinition[], assumed: ReadonlyMap<string, Members>): Map<string, SavedSet> {
  return new Map(
    definitions.map(({ name, type, family, timeoutS }) => [name, { name, type, family, timeoutS, members: assumed.get(name) ?? NO_MEMBERS, expiring: NO_MEMBERS }]),
  );
}

const NO_MEMBERS: Members = new Set();

/** meshlite's sets among `definitions` that exist, with their members: `ipset list -n`, then `ipset save` of each. */
export async function readSets(runner: CommandRunner, definitions: readonly SetDefinition[]): Promise<Map<string, SavedSet>> {
  const existing = new Set(parseIpsetNames(await runChecked(runner, 'ipset', ['list', '-n'])));
  const sets = new Map<string, SavedSet>();
  for (const { name } of definitions) {
    if (!existing.has(name)) continue;
    // One set at a time: `ipset save` of everything would also print kube-proxy's (IPVS mode) sets, which can be large.
    const saved = parseIpsetSave(await runChecked(runner, 'ipset', ['save', name])).get(name);
    if (saved !== undefined) sets.set(name, saved);
  }
  return sets;
}
