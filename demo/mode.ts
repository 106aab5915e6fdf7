// Which mode the demo runs in: transparent where this machine can make pods of network namespaces, else explicit.

import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ModeName } from './options.ts';

export type ModeChoice = { mode: 'transparent' } | { mode: 'explicit'; reason: string };

/** What decides whether transparent mode can run; injected so that the decision is testable on any machine. */
export interface HostFacts {
  platform: string;
  uid: number | undefined;
  /** CapEff from /proc/self/status; null when unknown. */
  capabilities: bigint | null;
  /** Whether an executable file exists at this path. */
  executable(path: string): boolean;
  exists(path: string): boolean;
}

const CNI_DIR = '/usr/lib/cni';
const CNI_PLUGINS = ['bridge', 'host-local', 'loopback'];
// The commands the harness and the agent run; `setsid` keeps the terminal's Ctrl-C away from the pods' processes.
const TOOLS: ReadonlyArray<[string, string]> = [
  ['ip', 'iproute2'],
  ['iptables-restore', 'iptables'],
  ['ipset', 'ipset'],
  ['setsid', 'util-linux'],
];
const ADDON = fileURLToPath(new URL('../build/Release/original_dst.node', import.meta.url));
// Making a network namespace needs CAP_SYS_ADMIN, everything inside it CAP_NET_ADMIN: root in a container may lack both.
const CAP_NET_ADMIN = 12n;
const CAP_SYS_ADMIN = 21n;

export class ModeUnavailable extends Error {}

/** Why transparent mode cannot run here, or null when it can. */
export function transparentBlocker(facts: HostFacts): string | null {
  if (facts.platform !== 'linux') return `not Linux: ${facts.platform}`;
  if (facts.uid !== 0) return `not root: uid ${facts.uid ?? 'unknown'}`;
  if (facts.capabilities !== null) {
    const missing = [
      ['CAP_NET_ADMIN', CAP_NET_ADMIN],
      ['CAP_SYS_ADMIN', CAP_SYS_ADMIN],
    ].filter(([, bit]) => ((facts.capabilities as bigint) & (1n << (bit as bigint))) === 0n);
    if (missing.length > 0) return `root without ${missing.map(([name]) => name).join(' and ')}, as in an unprivileged container`;
  }
  const plugins = CNI_PLUGINS.map((name) => join(CNI_DIR, name)).filter((path) => !facts.executable(path));
  if (plugins.length > 0) return `CNI plugins missing: ${plugins.join(', ')} (apt install containernetworking-plugins)`;
  const paths = (process.env.PATH ?? '').split(delimiter).filter((dir) => dir !== '');
  const tools = TOOLS.filter(([name]) => !paths.some((dir) => facts.executable(join(dir, name))));
  if (tools.length > 0) {
    return `not on PATH: ${tools.map(([name]) => name).join(', ')} (apt install ${[...new Set(tools.map(([, pkg]) => pkg))].join(' ')})`;
  }
  if (!facts.exists(ADDON)) return `the SO_ORIGINAL_DST addon is not built: ${ADDON} (npm rebuild builds it)`;
  return null;
}

/** The mode to run in; throws ModeUnavailable when transparent mode was asked for and cannot run. */
export function chooseMode(requested: ModeName, facts: HostFacts = hostFacts()): ModeChoice {
  if (requested === 'explicit') return { mode: 'explicit', reason: 'chosen with --mode explicit' };
  const blocker = transparentBlocker(facts);
  if (blocker === null) return { mode: 'transparent' };
  if (requested === 'transparent') throw new ModeUnavailable(`transparent mode cannot run here: ${blocker}`);
  return { mode: 'explicit', reason: blocker };
}

export function hostFacts(): HostFacts {
  return { platform: process.platform, uid: process.getuid?.(), capabilities: effectiveCapabilities(), executable, exists: existsSync };
}

function effectiveCapabilities(): bigint | null {
  try {
    const match = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return match === null ? null : BigInt(`0x${match[1]}`);
  } catch {
    return null;
  }
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
