// Network namespaces by name (`ip netns`): create, delete, list, run a command inside, list the processes inside.

import { readdirSync, statSync } from 'node:fs';
import { run, type RunOptions } from './command.ts';

/** Anything with a network namespace and addresses to run a server or client in: a pod, or a node (hostNetwork). */
export interface NetHost {
  name: string;
  ns: string;
  ipv4: string;
  ipv6?: string;
}

/** Where `ip netns add` bind-mounts a namespace; CNI_NETNS points here, as a container runtime's does. */
export const NETNS_DIR = '/var/run/netns';

export function namespacePath(name: string): string {
  return `${NETNS_DIR}/${name}`;
}

export async function addNamespace(name: string): Promise<void> {
  await run('ip', ['netns', 'add', name]);
}

/** Deletes a namespace's name. The kernel frees it (and every interface in it) once no process is left inside. */
export async function deleteNamespace(name: string): Promise<void> {
  if (!namespaceExists(name)) return;
  await run('ip', ['netns', 'delete', name]);
}

export function namespaceExists(name: string): boolean {
  try {
    statSync(namespacePath(name));
    return true;
  } catch {
    return false;
  }
}

export function listNamespaces(): string[] {
  try {
    return readdirSync(NETNS_DIR);
  } catch {
    return [];
  }
}

/** Runs `file args` inside the namespace and resolves with its stdout; a non-zero exit throws. */
export function inNamespace(name: string, file: string, args: readonly string[], options?: RunOptions): Promise<string> {
  return run('ip', ['netns', 'exec', name, file, ...args], options);
}

/** Sets a sysctl of the namespace only: /proc/sys/net is per network namespace, the rest is not (never set it). */
export async function setNamespaceSysctl(name: string, key: string, value: string): Promise<void> {
  if (!key.startsWith('net.')) throw new Error(`sysctl ${key} is not per network namespace; refusing to set it`);
  await inNamespace(name, 'sysctl', ['-qw', `${key}=${value}`]);
}

/** `ip -n NAME ...`: iproute2 enters the namespace for this one command. */
export function ipIn(name: string, args: readonly string[]): Promise<string> {
  return run('ip', ['-n', name, ...args]);
}

/** The PIDs of the processes inside a namespace. */
export async function namespacePids(name: string): Promise<number[]> {
  if (!namespaceExists(name)) return [];
  const out = await run('ip', ['netns', 'pids', name]);
  return out.split('\n').filter((line) => line.trim() !== '').map(Number);
}
