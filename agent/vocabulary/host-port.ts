// "host:port" addresses as settings and the static file write them: IPv4, bracketed IPv6, or (where allowed) a hostname.

import { isIPv4, isIPv6 } from 'node:net';

export interface HostPort {
  /** Without brackets; IPv6 in canonical (compressed, lower-case) form so equal addresses compare equal. */
  readonly host: string;
  readonly port: number;
}

export interface HostPortRules {
  /** Hostnames are fine for a listen address; endpoints must be IPs (no DNS on the request path). */
  readonly allowHostname: boolean;
  /** Port 0 asks the kernel for a free port: useful for listeners in tests, meaningless for an endpoint. */
  readonly allowPortZero: boolean;
}

export type HostPortResult = { ok: true; value: HostPort } | { ok: false; reason: string };

const HOSTNAME_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

/** Parses "1.2.3.4:80", "[::1]:80" or (when allowed) "name:80"; the reason says what is wrong, for the caller's message. */
export function parseHostPort(text: string, rules: HostPortRules): HostPortResult {
  let hostText: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || text[close + 1] !== ':') return fail('an IPv6 address is written as [address]:port');
    hostText = text.slice(1, close);
    portText = text.slice(close + 2);
    if (!isIPv6(hostText) || hostText.includes('%')) return fail(`"${hostText}" is not an IPv6 address`);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) return fail('the port is missing');
    hostText = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (hostText.includes(':')) return fail('an IPv6 address must be in brackets, e.g. [::1]:15001');
    if (hostText === '') return fail('the host is missing');
    if (!isIPv4(hostText)) {
      if (!rules.allowHostname) return fail(`"${hostText}" is not an IP address`);
      if (!isHostname(hostText)) return fail(`"${hostText}" is not an IP address or a hostname`);
    }
  }
  if (!/^[0-9]{1,5}$/.test(portText)) return fail(`the port "${portText}" is not a number`);
  const port = Number(portText);
  const minPort = rules.allowPortZero ? 0 : 1;
  if (port < minPort || port > 65535) return fail(`the port ${port} is not in ${minPort}..65535`);
  const host = isIPv6(hostText) ? canonicalIPv6(hostText) : hostText.toLowerCase();
  return { ok: true, value: { host, port } };
}

/** The inverse of parseHostPort: brackets around IPv6 hosts. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** An address meshlite wrote itself ("10.0.0.1:80", "[fd00::1]:80": an endpoint's registry address) into host and
 *  port, without validation: use parseHostPort for anything a person or the API wrote. */
export function splitHostPort(address: string): HostPort {
  const colon = address.lastIndexOf(':');
  let host = address.slice(0, colon);
  if (host.startsWith('[')) host = host.slice(1, -1);
  return { host, port: Number(address.slice(colon + 1)) };
}

/** Canonical text of an IPv6 address ("0:0::1" → "::1"); the WHATWG URL parser implements RFC 5952's rules. */
export function canonicalIPv6(address: string): string {
  return new URL(`http://[${address}]/`).hostname.slice(1, -1);
}

function isHostname(text: string): boolean {
  const name = text.endsWith('.') ? text.slice(0, -1) : text;
  const labels = name.split('.');
  // An all-numeric last label ("10.0.0", "300.1.1.1") is a mistyped IP, never a name (RFC 3696 §2).
  if (/^[0-9]+$/.test(labels[labels.length - 1])) return false;
  return name.length > 0 && name.length <= 253 && labels.every((label) => HOSTNAME_LABEL.test(label));
}

function fail(reason: string): HostPortResult {
  return { ok: false, reason };
}
