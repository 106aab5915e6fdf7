// Preflight: the proxy, admin and metrics addresses can be bound, alone or shared with a running agent (SO_REUSEPORT).

import { formatHostPort, type HostPort } from '../vocabulary/host-port.ts';
import { type CheckLine, fail, ok } from './check-result.ts';

/** What one bind attempt did; the probe binds and closes at once, so it never keeps a port. */
export type BindOutcome = { readonly bound: true } | { readonly bound: false; readonly code: string; readonly message: string };

export type BindProbe = (address: HostPort, reusePort: boolean) => Promise<BindOutcome>;

/** One address the agent would listen on, and the setting that names it (for what to do). */
export interface PortTarget {
  /** e.g. `proxy (--listen)`. */
  readonly what: string;
  readonly flag: string;
  readonly address: HostPort;
}

/**
 * A plain bind first: it succeeds only when nothing listens there. When it fails with EADDRINUSE, a bind with
 * SO_REUSEPORT tells a running agent (which binds every address that way, so that an upgrade can share it) from another
 * program (whose socket does not allow sharing). Port 0 means any free port: nothing to check.
 */
export async function checkPorts(probe: BindProbe, targets: readonly PortTarget[]): Promise<CheckLine[]> {
  const lines: CheckLine[] = [];
  for (const target of targets) {
    const where = `${target.what} ${formatHostPort(target.address.host, target.address.port)}`;
    if (target.address.port === 0) {
      lines.push(ok(`${where}: any free port`));
      continue;
    }
    const plain = await probe(target.address, false);
    if (plain.bound) {
      lines.push(ok(`${where}: free`));
      continue;
    }
    if (plain.code === 'EADDRINUSE') {
      const shared = await probe(target.address, true);
      if (shared.bound) lines.push(ok(`${where}: shared with a running agent (SO_REUSEPORT)`));
      else lines.push(fail(where, 'in use by another program', `stop that program (ss -ltnp shows which), or give meshlite another address with ${target.flag}`));
      continue;
    }
    const reason = plain.message.includes(plain.code) ? plain.message : `${plain.code}: ${plain.message}`;
    lines.push(fail(where, `cannot bind (${reason})`, fixFor(plain.code, target)));
  }
  return lines;
}

function fixFor(code: string, target: PortTarget): string {
  if (code === 'EADDRNOTAVAIL') return `${target.address.host} is not an address of this node: give one of its addresses with ${target.flag} (or --node-ip)`;
  if (code === 'EACCES') return `a port below 1024 needs CAP_NET_BIND_SERVICE: choose a higher port with ${target.flag}`;
  return `choose another address with ${target.flag}`;
}
