// Runs the meshlite CNI plugin as a runtime does: a child process with CNI_* variables and the configuration on stdin.

import { runCommand } from '../../../agent/intercept/command-runner.ts';
import { fileURLToPath } from 'node:url';
import type { CniVersion } from '../../../cni/cni-version.ts';

export const PLUGIN_MAIN = fileURLToPath(new URL('../../../cni/main.ts', import.meta.url));

export interface PluginRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** The CNI_* variables (and any other); PATH is added so that the child behaves as under a runtime. */
  env: Record<string, string>;
  stdin: string;
  /** Another executable than `node cni/main.ts` (the built single executable, or node with a bundle in `args`). */
  executable?: string;
  args?: string[];
}

export function runPlugin({ env, stdin, executable, args: extra = [] }: RunOptions): Promise<PluginRun> {
  const [file, args] = executable === undefined ? [process.execPath, [PLUGIN_MAIN]] : [executable, extra];
  return runCommand(file, args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, input: stdin });
}

/** The output must be exactly one JSON document and a newline: anything else on stdout breaks the runtime. */
export function stdoutJson(run: PluginRun): Record<string, unknown> {
  if (!run.stdout.endsWith('\n') || run.stdout.indexOf('\n') !== run.stdout.length - 1) {
    throw new Error(`stdout is not one JSON line: ${JSON.stringify(run.stdout)} (stderr ${run.stderr})`);
  }
  return JSON.parse(run.stdout) as Record<string, unknown>;
}

export const CONTAINER_ID = '3f6940ab5ab43bc522569d15b23f8c1bbde1d7678b080398506924fc01d72755';
export const NETNS = '/var/run/netns/cni-1234';
export const POD_ARGS = 'IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=checkout-7d9f;K8S_POD_INFRA_CONTAINER_ID=3f69;K8S_POD_UID=1b2c';

/** What a Kubernetes runtime sets for an attachment command. */
export function attachmentEnv(command: string, overrides: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string | undefined> = {
    CNI_COMMAND: command,
    CNI_CONTAINERID: CONTAINER_ID,
    CNI_NETNS: NETNS,
    CNI_IFNAME: 'eth0',
    CNI_ARGS: POD_ARGS,
    CNI_PATH: '/opt/cni/bin',
    ...overrides,
  };
  return Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined));
}

/** A primary plugin's result in the shape of each version: 0.4.0 still numbers the IP version, 1.x does not. */
export function prevResultFor(cniVersion: CniVersion): Record<string, unknown> {
  const v4 = { interface: 2, address: '10.78.0.5/24', gateway: '10.78.0.1' };
  const v6 = { interface: 2, address: 'fd78::5/64', gateway: 'fd78::1' };
  return {
    cniVersion,
    interfaces: [
      { name: 'cni0', mac: '0a:58:0a:4e:00:01' },
      { name: 'veth1a2b3c4d', mac: '6e:3a:51:aa:01:02' },
      { name: 'eth0', mac: '0a:58:0a:4e:00:05', sandbox: NETNS },
    ],
    ips: cniVersion === '0.4.0' ? [{ version: '4', ...v4 }, { version: '6', ...v6 }] : [v4, v6],
    routes: [{ dst: '0.0.0.0/0', gw: '10.78.0.1' }],
    dns: { nameservers: ['10.96.0.10'], search: ['shop.svc.cluster.local'] },
  };
}

/** The plugin's configuration as a runtime derives it from a conflist entry. */
export function pluginConfig(cniVersion: CniVersion, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { cniVersion, name: 'k8s-pod-network', type: 'meshlite', ...extra };
}
