// The kernel's hand-over of connections between agents that share a port
// (see docs/architecture.md, Drain and upgrades).
// With SO_REUSEPORT, a connection the kernel queued on the old agent's listener is reset when the old agent closes
// that listener, unless net.ipv4.tcp_migrate_req (Linux 5.14+, per network namespace) is 1: then the
// kernel moves it to another listener of the group, the new agent's. An agent in transparent mode (it manages the
// node's network already) turns it on where it may (a writable /proc/sys: a privileged container, a process on the
// host) and says so where it may not; one in explicit mode changes no node setting.

import { readFile, writeFile } from 'node:fs/promises';

export interface SysctlAccess {
  /** The value as the file holds it, or null when the file does not exist (an older kernel). */
  read(path: string): Promise<string | null>;
  write(path: string, value: string): Promise<void>;
}

export const TCP_MIGRATE_REQ = '/proc/sys/net/ipv4/tcp_migrate_req';

/** The node's /proc/sys, as the agent's process sees it (its network namespace's values). */
export const nodeSysctlAccess: SysctlAccess = {
  read: async (path) => {
    try {
      return await readFile(path, 'utf8');
    } catch (error) {
      if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return null;
      throw error;
    }
  },
  write: (path, value) => writeFile(path, value),
};

/** `on`: already 1; `enabled`: the agent set it; `unsupported`: no such sysctl; `off`: 0 and the agent may not change it. */
export type ListenerMigration = { state: 'on' | 'enabled' | 'unsupported' } | { state: 'off'; reason: string };

export async function ensureListenerMigration(sysctl: SysctlAccess): Promise<ListenerMigration> {
  const value = await sysctl.read(TCP_MIGRATE_REQ);
  if (value === null) return { state: 'unsupported' };
  if (value.trim() === '1') return { state: 'on' };
  try {
    await sysctl.write(TCP_MIGRATE_REQ, '1');
  } catch (error) {
    return { state: 'off', reason: (error as Error).message };
  }
  return { state: 'enabled' };
}
