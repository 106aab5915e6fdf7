// Parsers of setting values (choices, integers in a range, host:port, node IPs, DNS names): a value or what was expected.

import { isIP } from 'node:net';
import { canonicalIPv6, type HostPort, parseHostPort } from '../vocabulary/host-port.ts';
import type { Config, MetricsListen } from './agent-config.ts';

export type Parsed<T> = { ok: true; value: T } | { ok: false; expected: string };

export function ok<T>(value: T): Parsed<T> {
  return { ok: true, value };
}

export function oneOf<T extends string>(choices: readonly T[]): (text: string) => Parsed<T> {
  return (text) => ((choices as readonly string[]).includes(text) ? ok(text as T) : { ok: false, expected: `one of ${choices.join(', ')}` });
}

export function listenAddress(text: string): Parsed<HostPort> {
  const result = parseHostPort(text, { allowHostname: true, allowPortZero: true });
  return result.ok ? result : { ok: false, expected: `host:port, e.g. 0.0.0.0:15001 or [::1]:15001 (${result.reason})` };
}

/** `off` is read by the setting itself; this reads `node:PORT` (every node IP) or a listen address. */
export function metricsListen(text: string): Parsed<MetricsListen | null> {
  if (text === 'off') return ok(null);
  if (text.startsWith('node:')) {
    const port = integerIn(1, 65_535)(text.slice('node:'.length));
    return port.ok ? ok({ on: 'node-ips', port: port.value }) : { ok: false, expected: 'node:PORT with a port from 1 to 65535' };
  }
  const address = listenAddress(text);
  return address.ok ? ok({ on: 'address', address: address.value }) : { ok: false, expected: `node:PORT, off or ${address.expected}` };
}

export function integerIn(min: number, max: number): (text: string) => Parsed<number> {
  return (text) => {
    const value = /^[0-9]+$/.test(text) ? Number(text) : Number.NaN;
    return value >= min && value <= max ? ok(value) : { ok: false, expected: `an integer from ${min} to ${max}` };
  };
}

/** Explicit --workers values above this are refused: far beyond any node's useful proxy threads, surely a typo. */
export const MAX_WORKERS = 64;

/** `auto` (resolved at start from the CPU limit, see workers/worker-count.ts) or a thread count. */
export function workerCount(text: string): Parsed<number | 'auto'> {
  if (text === 'auto') return ok('auto');
  const count = integerIn(1, MAX_WORKERS)(text);
  return count.ok ? count : { ok: false, expected: `auto or an integer from 1 to ${MAX_WORKERS}` };
}

/** A comma-separated list of at most one IPv4 and one IPv6 address, as the downward API's status.hostIPs gives. */
export function nodeIPs(text: string): Parsed<Config['nodeIPs']> {
  const result: Config['nodeIPs'] = { v4: null, v6: null };
  if (text === '') return ok(result);
  for (const part of text.split(',')) {
    const ip = part.trim();
    const family = isIP(ip);
    const slot = family === 4 ? 'v4' : family === 6 ? 'v6' : null;
    if (slot === null || result[slot] !== null) return { ok: false, expected: 'one IPv4 and/or one IPv6 address, comma-separated' };
    result[slot] = family === 6 ? canonicalIPv6(ip) : ip;
  }
  return ok(result);
}

export const DNS_NAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
