// Runs a CNI conflist the way libcni does for a container runtime: ADD in order chaining prevResult, DEL in reverse.

import { accessSync, constants, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand } from './command.ts';

/** One plugin's entry in a conflist: `type` names the executable, looked up in CNI_PATH. */
export interface CniPluginConfig {
  type: string;
  [key: string]: unknown;
}

export interface CniConflist {
  cniVersion: string;
  name: string;
  plugins: CniPluginConfig[];
}

/** A conflist and the directories its plugins are found in (CNI_PATH, in search order). */
export interface CniNetwork {
  conflist: CniConflist;
  cniPath: string[];
}

/** What the runtime knows of the container: the CNI_* variables other than CNI_COMMAND and CNI_PATH. */
export interface CniRuntimeConf {
  containerId: string;
  /** Path of the pod's network namespace (CNI_NETNS). */
  netns: string;
  ifName: string;
  /** CNI_ARGS as ordered pairs; kubelet's start with IgnoreUnknown=1 and carry the K8S_POD_* values. */
  args: Array<[string, string]>;
}

/** A plugin's result (the CNI spec's Result type); kept loose because chained plugins pass it on untouched. */
export interface CniResult {
  cniVersion: string;
  interfaces?: Array<{ name: string; mac?: string; sandbox?: string }>;
  ips?: Array<{ interface?: number; address: string; gateway?: string }>;
  routes?: Array<{ dst: string; gw?: string }>;
  [key: string]: unknown;
}

export class CniPluginError extends Error {
  readonly code: number | undefined;
  constructor(plugin: string, command: string, code: number | undefined, message: string) {
    super(`CNI ${command} of plugin ${plugin} failed${code === undefined ? '' : ` (code ${code})`}: ${message}`);
    this.code = code;
  }
}

export interface CniExecOptions {
  /** The namespace the runtime runs in: the node's. The plugins create the bridge and host-side veths there. */
  hostNamespace: string;
  /** libcni's result cache (it keeps the ADD result for DEL); a directory of the run, never /var/lib/cni. */
  cacheDir: string;
  timeoutMs?: number;
}

function findPlugin(type: string, cniPath: readonly string[]): string {
  for (const dir of cniPath) {
    const candidate = join(dir, type);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  throw new CniPluginError(type, 'lookup', undefined, `no executable "${type}" in CNI_PATH ${cniPath.join(':')}`);
}

/** libcni's buildOneConfig: the plugin's own keys, plus the list's name and version, plus prevResult if any. */
export function pluginConfig(list: CniConflist, plugin: CniPluginConfig, prevResult: CniResult | undefined): object {
  const config: Record<string, unknown> = { ...plugin, cniVersion: list.cniVersion, name: list.name };
  if (prevResult !== undefined) config.prevResult = prevResult;
  return config;
}

async function execPlugin(
  command: 'ADD' | 'DEL',
  network: CniNetwork,
  plugin: CniPluginConfig,
  config: object,
  rt: CniRuntimeConf,
  options: CniExecOptions,
): Promise<CniResult | undefined> {
  const file = findPlugin(plugin.type, network.cniPath);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CNI_COMMAND: command,
    CNI_CONTAINERID: rt.containerId,
    CNI_NETNS: rt.netns,
    CNI_IFNAME: rt.ifName,
    CNI_ARGS: rt.args.map(([key, value]) => `${key}=${value}`).join(';'),
    CNI_PATH: network.cniPath.join(':'),
  };
  const result = await runCommand('ip', ['netns', 'exec', options.hostNamespace, file], {
    env,
    input: JSON.stringify(config),
    timeoutMs: options.timeoutMs ?? 10_000,
  });
  if (result.code !== 0) {
    // The spec's error result ({code, msg, details}) is on stdout; anything else is reported as it came.
    let code: number | undefined;
    let message = `${result.stdout.trim()} ${result.stderr.trim()}`.trim() || `exit ${result.code ?? result.signal}`;
    try {
      const error = JSON.parse(result.stdout) as { code?: number; msg?: string; details?: string };
      code = error.code;
      message = [error.msg, error.details].filter((part) => part !== undefined && part !== '').join(': ');
    } catch {
      // not a JSON error
    }
    throw new CniPluginError(plugin.type, command, code, message);
  }
  if (command === 'DEL' || result.stdout.trim() === '') return undefined;
  return JSON.parse(result.stdout) as CniResult;
}

function cachePath(options: CniExecOptions, list: CniConflist, rt: CniRuntimeConf): string {
  return join(options.cacheDir, 'results', `${list.name}-${rt.containerId}-${rt.ifName}`);
}

/** Runs DEL of every plugin in reverse order, each given the cached ADD result as prevResult (libcni, CNI ≥ 0.4). */
export async function delNetworkList(network: CniNetwork, rt: CniRuntimeConf, options: CniExecOptions): Promise<void> {
  const list = network.conflist;
  const path = cachePath(options, list, rt);
  let cached: CniResult | undefined;
  try {
    cached = (JSON.parse(readFileSync(path, 'utf8')) as { result: CniResult }).result;
  } catch {
    cached = undefined; // ADD never finished: plugins must still clean up what they can (the spec's rule)
  }
  for (const plugin of [...list.plugins].reverse()) {
    await execPlugin('DEL', network, plugin, pluginConfig(list, plugin, cached), rt, options);
  }
  rmSync(path, { force: true });
}

/**
 * Runs ADD of every plugin in order, each given the previous plugin's result as prevResult; the last result is
 * the list's, and is cached for DEL. When a plugin fails, the runtime tears the sandbox's network down (DEL of
 * the whole list) before it reports the error, so that a half-set-up pod leaves nothing behind.
 */
export async function addNetworkList(
  network: CniNetwork,
  rt: CniRuntimeConf,
  options: CniExecOptions,
): Promise<CniResult> {
  const list = network.conflist;
  let result: CniResult | undefined;
  try {
    for (const plugin of list.plugins) {
      const out = await execPlugin('ADD', network, plugin, pluginConfig(list, plugin, result), rt, options);
      if (out === undefined) throw new CniPluginError(plugin.type, 'ADD', undefined, 'no result on stdout');
      result = out;
    }
  } catch (err) {
    await delNetworkList(network, rt, options).catch(() => {});
    throw err;
  }
  if (result === undefined) throw new Error(`conflist ${list.name} has no plugins`);
  const path = cachePath(options, list, rt);
  mkdirSync(join(options.cacheDir, 'results'), { recursive: true });
  writeFileSync(path, JSON.stringify({ kind: 'cniCacheV1', networkName: list.name, ...rt, result }));
  return result;
}
