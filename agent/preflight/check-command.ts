// `node agent/main.ts check [settings]`: the preflight with the node's real files, ports, commands and API client.

import { nodeSysctlAccess } from '../drain/listener-migration.ts';
import type { Config, ConfigError } from '../config/agent-config.ts';
import type { CommandRunner } from '../intercept/command-runner.ts';
import { fail } from './check-result.ts';
import { cniDirectoriesFrom } from './cni-check.ts';
import { bindOnce, kubeAccessOf, nodeFiles } from './node-access.ts';
import { exitCodeOf, formatReport, runPreflight } from './preflight.ts';

export interface CheckCommandOptions {
  readonly runner: CommandRunner;
  /** The installer's environment variables name the CNI directories (MESHLITE_CNI_CONF_DIR, MESHLITE_CNI_BIN_DIR). */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly pid: number;
  readonly write: (text: string) => void;
}

/**
 * Writes the report and returns the exit code (0: every line ok; 1: a problem). Settings the agent would refuse are
 * the report's one line: nothing else can be checked for an agent that would not start.
 */
export async function runCheckCommand(settings: Config | ConfigError, options: CheckCommandOptions): Promise<0 | 1> {
  if (settings instanceof Error) {
    const lines = [fail('settings', settings.message, 'fix the setting: node agent/main.ts --help lists every one')];
    options.write(formatReport(lines));
    return 1;
  }
  const lines = await runPreflight({
    config: settings,
    runner: options.runner,
    files: nodeFiles,
    cni: cniDirectoriesFrom(options.env),
    kube: kubeAccessOf(settings),
    bind: bindOnce,
    sysctl: nodeSysctlAccess,
    pid: options.pid,
  });
  options.write(formatReport(lines));
  return exitCodeOf(lines);
}
