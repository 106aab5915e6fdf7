// A container runtime's part of CNI, as libcni plays it: run a conflist's plugins in order (ADD, CHECK) or in reverse (DEL).

import { inNetworkNamespace } from '../../../agent/intercept/command-runner.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export interface PluginCall {
  type: string;
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface ListRun {
  ok: boolean;
  calls: PluginCall[];
  /** ADD: the last plugin's result, which the runtime caches and hands back as prevResult on CHECK and DEL. */
  result: Record<string, unknown> | null;
}

export interface Attachment {
  containerId: string;
  netnsPath: string;
  ifName: string;
  cniArgs: string;
  /** CNI_PATH: where plugin executables are looked up by type, in order. */
  path: string[];
  /** The network namespace the plugins run in (the "node"); they are started with `ip netns exec`. */
  nodeNamespace: string;
}

function execute(file: string, env: Record<string, string>, stdin: string, nodeNamespace: string): Promise<Omit<PluginCall, 'type'>> {
  return inNetworkNamespace(nodeNamespace)(file, [], { env, input: stdin });
}

/**
 * Runs `command` over the list's plugins the way the specification's section 3 describes: each plugin gets its
 * entry with the list's cniVersion and name; ADD hands each plugin's result to the next as prevResult; CHECK and
 * DEL hand every plugin the cached ADD result; DEL runs backwards and goes on past failures, ADD and CHECK stop.
 */
export async function runList(
  list: { cniVersion: string; name: string; plugins: Record<string, unknown>[] },
  command: 'ADD' | 'CHECK' | 'DEL',
  attachment: Attachment,
  cached: Record<string, unknown> | null,
): Promise<ListRun> {
  const env = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: command,
    CNI_CONTAINERID: attachment.containerId,
    CNI_NETNS: attachment.netnsPath,
    CNI_IFNAME: attachment.ifName,
    CNI_ARGS: attachment.cniArgs,
    CNI_PATH: attachment.path.join(':'),
  };
  const plugins = command === 'DEL' ? [...list.plugins].reverse() : list.plugins;
  const calls: PluginCall[] = [];
  let prevResult = command === 'ADD' ? null : cached;
  let ok = true;
  for (const plugin of plugins) {
    const type = String(plugin.type);
    const file = attachment.path.map((dir) => join(dir, type)).find((candidate) => existsSync(candidate));
    if (file === undefined) throw new Error(`no executable for plugin type ${type} in ${attachment.path.join(':')}`);
    const config = { ...plugin, cniVersion: list.cniVersion, name: list.name, ...(prevResult === null ? {} : { prevResult }) };
    const call = { type, ...(await execute(file, env, JSON.stringify(config), attachment.nodeNamespace)) };
    calls.push(call);
    if (call.code !== 0) {
      ok = false;
      if (command !== 'DEL') break;
      continue;
    }
    if (command === 'ADD') prevResult = JSON.parse(call.stdout) as Record<string, unknown>;
  }
  return { ok, calls, result: command === 'ADD' && ok ? prevResult : null };
}
