// Removes everything interception created — jumps, chains, sets, in both families and backends — and nothing else.

import type { Logger } from '../telemetry/logger.ts';
import type { CommandRunner } from './command-runner.ts';
import { parseIptablesSave } from './iptables-dump.ts';
import { IPTABLES_BACKENDS, type IptablesBackend, type IptablesBackendSetting, iptablesCommands } from './iptables-backend.ts';
import { parseIpsetNames } from './ipset-dump.ts';
import { ALL_SET_NAMES, IP_FAMILIES, type IpFamily } from './names.ts';
import { InterceptCommandError, runChecked } from './netfilter-command.ts';
import { planRuleRemoval, planSetRemoval } from './removal-plan.ts';

export interface UninstallOptions {
  readonly runner: CommandRunner;
  readonly logger: Logger;
  /** auto: both backends (rules may be left in either, e.g. after kube-proxy moved); nft or legacy: that one only. */
  readonly backend: IptablesBackendSetting;
}

export interface UninstallReport {
  /** What was removed, e.g. `nft v4: nat PREROUTING: jump`, `ipset meshlite-pods-v4`. Empty on a clean machine. */
  readonly removed: string[];
  /** What could not even be read (a backend's tools failing), so was left as it may be. */
  readonly unreadable: string[];
}

/**
 * Rules before sets: the kernel refuses to destroy a set a rule still names. A tool that is not installed (no
 * legacy iptables on the host) is skipped quietly; one that cannot read is logged and skipped, so that a host
 * without IPv6 still gets its IPv4 rules removed. Idempotent: every step is planned from what exists now.
 * Throws (InterceptCommandError, ML_INTERCEPT_COMMAND_FAILED) when something that exists could not be removed,
 * after having removed everything else it could.
 */
export async function uninstall(options: UninstallOptions): Promise<UninstallReport> {
  const { runner, backend } = options;
  const log = options.logger.child({ component: 'intercept' });
  const removed: string[] = [];
  const unreadable: string[] = [];
  const failures: InterceptCommandError[] = [];
  const backends: readonly IptablesBackend[] = backend === 'auto' ? IPTABLES_BACKENDS : [backend];
  for (const each of backends) {
    for (const family of IP_FAMILIES) {
      const where = `${each} v${family}`;
      const dump = await readOrSkip(runner, iptablesCommands(each, family).save, [], where, unreadable, log);
      if (dump === null) continue;
      try {
        removed.push(...(await removeRulesFrom(runner, each, family, dump)).map((item) => `${where}: ${item}`));
      } catch (error) {
        failures.push(error as InterceptCommandError);
      }
    }
  }
  const names = await readOrSkip(runner, 'ipset', ['list', '-n'], 'ipset', unreadable, log);
  if (names !== null) {
    const plan = planSetRemoval(parseIpsetNames(names));
    try {
      if (plan.script !== null) await runChecked(runner, 'ipset', ['restore'], plan.script);
      removed.push(...plan.removed.map((name) => `ipset ${name}`));
    } catch (error) {
      failures.push(error as InterceptCommandError);
    }
  }
  if (removed.length > 0) log.info({ removed }, 'interception removed');
  else log.info('nothing of interception to remove');
  for (const failure of failures) log.error({ code: failure.code, err: failure }, 'removing interception failed');
  if (failures.length > 0) throw failures[0];
  return { removed, unreadable };
}

/** Removes meshlite's jumps and chains of one backend and family; `dump` is its `-save` output when already read. */
export async function removeRulesFrom(
  runner: CommandRunner,
  backend: IptablesBackend,
  family: IpFamily,
  dump?: string,
): Promise<string[]> {
  const commands = iptablesCommands(backend, family);
  const plan = planRuleRemoval(parseIptablesSave(dump ?? (await runChecked(runner, commands.save, []))));
  if (plan.script !== null) await runChecked(runner, commands.restore, commands.restoreArgs, plan.script);
  return plan.removed;
}

/** Destroys those of meshlite's sets named in `names` that exist (after their rules are gone). */
export async function removeSets(runner: CommandRunner, names: readonly string[] = ALL_SET_NAMES): Promise<string[]> {
  const existing = parseIpsetNames(await runChecked(runner, 'ipset', ['list', '-n'])).filter((name) => names.includes(name));
  const plan = planSetRemoval(existing);
  if (plan.script !== null) await runChecked(runner, 'ipset', ['restore'], plan.script);
  return plan.removed;
}

async function readOrSkip(
  runner: CommandRunner,
  file: string,
  args: readonly string[],
  where: string,
  unreadable: string[],
  log: Logger,
): Promise<string | null> {
  let result: Awaited<ReturnType<CommandRunner>>;
  try {
    result = await runner(file, args);
  } catch (error) {
    log.debug({ command: file, err: error }, 'not installed; nothing of interception can be there');
    return null;
  }
  if (result.code === 0) return result.stdout;
  const failure = new InterceptCommandError([file, ...args].join(' '), result.code, result.stderr);
  log.warn({ code: failure.code, err: failure }, `cannot read ${where}; skipped`);
  unreadable.push(where);
  return null;
}
