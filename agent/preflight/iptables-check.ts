// Preflight: which iptables backend the agent would use (kube-proxy's), and that its save and restore commands run.

import type { BackendDecision } from '../intercept/backend-detection.ts';
import { detectBackend } from '../intercept/backend-detection.ts';
import type { CommandRunner } from '../intercept/command-runner.ts';
import { type IptablesBackend, type IptablesBackendSetting, iptablesCommands } from '../intercept/iptables-backend.ts';
import { CHAIN_HOOKS, type IpFamily } from '../intercept/names.ts';
import { InterceptCommandError, runChecked } from '../intercept/netfilter-command.ts';
import { type CheckLine, fail, firstLine, ok } from './check-result.ts';

export interface IptablesCheckOptions {
  readonly runner: CommandRunner;
  readonly setting: IptablesBackendSetting;
  /** The IP families of --node-ip: interception writes rules for these only. */
  readonly families: readonly IpFamily[];
}

export const INSTALL_IPTABLES = 'install iptables (Debian and Ubuntu: apt-get install iptables, which ships both backends) or run the check in the meshlite image';
const NEED_NET_ADMIN =
  "run it as root with CAP_NET_ADMIN in the node's network namespace (the DaemonSet's agent container: kubectl -n meshlite-system exec ds/meshlite -c agent -- node agent/main.ts check)";

/**
 * A restore that only parses and builds meshlite's chains, never commits (`--test`): proves the tool runs with the
 * rights it needs without changing a rule.
 */
export function restoreTestScript(): string {
  const lines: string[] = [];
  for (const hook of CHAIN_HOOKS) lines.push(`*${hook.table}`, `:${hook.chain} - [0:0]`, 'COMMIT');
  return `${lines.join('\n')}\n`;
}

/** One line for the backend, then one per IP family: `<backend>-save` and `<backend>-restore --test` run. */
export async function checkIptables(options: IptablesCheckOptions): Promise<CheckLine[]> {
  const { runner, setting, families } = options;
  let backend: IptablesBackend;
  const lines: CheckLine[] = [];
  try {
    const { decision } = await detectBackend(runner, setting);
    backend = decision.backend;
    lines.push(ok(`iptables backend: ${backend} (${reasonText(decision)})`));
  } catch {
    // detectBackend throws only when neither backend's -save runs: missing, or refused.
    return [fail('iptables backend', 'neither iptables-nft-save nor iptables-legacy-save runs', INSTALL_IPTABLES)];
  }
  for (const family of families) {
    const commands = iptablesCommands(backend, family);
    const what = `iptables ${backend} IPv${family}`;
    try {
      await runChecked(runner, commands.save, []);
      await runChecked(runner, commands.restore, ['--test', ...commands.restoreArgs], restoreTestScript());
      lines.push(ok(`${what}: ${commands.save} and ${commands.restore} run`));
    } catch (error) {
      const notStarted = error instanceof InterceptCommandError && error.exitCode === null;
      lines.push(fail(what, firstLine(error), notStarted ? INSTALL_IPTABLES : NEED_NET_ADMIN));
    }
  }
  return lines;
}

function reasonText(decision: BackendDecision): string {
  switch (decision.reason) {
    case 'forced':
      return 'set by --iptables-backend';
    case 'kube-chains':
      return `kube-proxy's rules are there: ${decision.kubeLines[decision.backend]} KUBE- lines`;
    case 'only-available':
      return 'the only backend whose tools run';
    case 'more-rules':
      return 'no kube-proxy rules yet; the backend with more rules, looked at again once the agent runs';
    case 'default':
      return 'no kube-proxy rules yet; the default, looked at again once the agent runs';
  }
}
