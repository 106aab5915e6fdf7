// `meshlite check`: runs every preflight check with the agent's own settings and formats the report, one line per check.

import { type Config, metricsAddresses } from '../config/agent-config.ts';
import type { CommandRunner } from '../intercept/command-runner.ts';
import type { IpFamily } from '../intercept/names.ts';
import { nodeIPsToListenOn } from '../proxy/listener.ts';
import { type CheckLine, fail, firstLine, ok } from './check-result.ts';
import { type CniDirectories, checkCni, type FileAccess } from './cni-check.ts';
import { checkIpset } from './ipset-check.ts';
import { checkIptables } from './iptables-check.ts';
import { checkKubernetes, type KubeAccess } from './kube-check.ts';
import type { SysctlAccess } from '../drain/listener-migration.ts';
import { checkListenerMigration } from './listener-migration-check.ts';
import { type BindProbe, checkPorts, type PortTarget } from './ports-check.ts';

export interface PreflightDependencies {
  /** The settings the agent would run with (the same flags and environment). */
  readonly config: Config;
  readonly runner: CommandRunner;
  readonly files: FileAccess;
  /** Where the CNI installer works (its environment variables, or its defaults). */
  readonly cni: CniDirectories;
  readonly kube: () => Promise<KubeAccess>;
  readonly bind: BindProbe;
  /** The node's network sysctls (read only). */
  readonly sysctl: Pick<SysctlAccess, 'read'>;
  /** Names the throwaway ipsets. */
  readonly pid: number;
  /** Per Kubernetes API request. Default 5000. */
  readonly kubeTimeoutMs?: number;
}

/**
 * Interception's checks (iptables, ipset, CNI) only with --intercept on, the API's only with kubernetes discovery:
 * what the agent would not use cannot stop it. Every check runs even after a problem, so one run shows them all.
 */
export async function runPreflight(deps: PreflightDependencies): Promise<CheckLine[]> {
  const { config, runner } = deps;
  const families: IpFamily[] = [...(config.nodeIPs.v4 === null ? [] : [4 as const]), ...(config.nodeIPs.v6 === null ? [] : [6 as const])];
  const lines: CheckLine[] = [];
  if (config.intercept) {
    lines.push(...(await guarded('iptables', () => checkIptables({ runner, setting: config.iptablesBackend, families }))));
    lines.push(...(await guarded('ipset', () => checkIpset({ runner, families, pid: deps.pid }))));
    lines.push(...(await guarded('CNI', () => checkCni(deps.files, deps.cni))));
  } else {
    lines.push(ok('interception off (--intercept off): iptables, ipset and CNI not needed'));
  }
  if (config.discovery === 'kubernetes') {
    lines.push(...(await guarded('Kubernetes API', () => checkKubernetes({ connect: deps.kube, timeoutMs: deps.kubeTimeoutMs ?? 5000 }))));
  } else {
    lines.push(ok(`static discovery (${config.staticFile}): the Kubernetes API is not needed`));
  }
  lines.push(...(await guarded('ports', () => checkPorts(deps.bind, portTargets(config)))));
  lines.push(...(await guarded('upgrade hand-over', () => checkListenerMigration(deps.sysctl))));
  return lines;
}

/** Every address the agent binds: the proxy (and each node IP at its port, in transparent mode), admin, metrics. */
export function portTargets(config: Config): PortTarget[] {
  const targets: PortTarget[] = [{ what: 'proxy', flag: '--listen', address: config.listen }];
  if (config.intercept && config.listen.port !== 0) {
    for (const host of nodeIPsToListenOn(config.listen.host, config.nodeIPs)) {
      targets.push({ what: 'proxy on the node IP', flag: '--node-ip', address: { host, port: config.listen.port } });
    }
  }
  targets.push({ what: 'admin', flag: '--admin', address: config.admin });
  for (const address of metricsAddresses(config)) targets.push({ what: 'metrics', flag: '--metrics', address });
  return targets;
}

/** A check that throws is a bug in the check, not a finding about the node; it still gets its line. */
async function guarded(name: string, check: () => Promise<CheckLine[]>): Promise<CheckLine[]> {
  try {
    return await check();
  } catch (error) {
    return [fail(name, `the check itself failed (${firstLine(error)})`, 'report this as a meshlite bug, with this line')];
  }
}

/** `ok    <what>` or `FAIL  <what>: <problem> — <what to do>`: the two prefixes have one width, so columns line up. */
export function formatLine(line: CheckLine): string {
  return line.status === 'ok' ? `ok    ${line.what}` : `FAIL  ${line.what}: ${line.problem} — ${line.fix}`;
}

export function formatReport(lines: readonly CheckLine[]): string {
  return lines.map((line) => `${formatLine(line)}\n`).join('');
}

/** 0 when every check is ok, 1 on any problem. */
export function exitCodeOf(lines: readonly CheckLine[]): 0 | 1 {
  return lines.some((line) => line.status === 'fail') ? 1 : 0;
}
