// IP addresses as the Kubernetes API writes them, read into the one spelling meshlite compares (the registry's and the kernel's).

import { isIPv4, isIPv6 } from 'node:net';
import { canonicalIPv6 } from './host-port.ts';

export interface KubeIp {
  /** Dotted IPv4, or RFC 5952 IPv6 (lower case, compressed): what inet_ntop gives for the original destination. */
  ip: string;
  family: 4 | 6;
}

/** Longer than any spelling of an address (an IPv6 with an embedded IPv4 is at most 45 characters). */
const MAX_TEXT = 64;

/** IPv4 with leading zeros ("010.0.0.1"): Kubernetes accepted it before 1.33 and reads each part as decimal
 *  (Go's ParseIPSloppy), so objects written then may still hold it; Node's isIPv4 rejects it. */
const LEGACY_IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** IPv4-mapped IPv6 after canonicalisation, which writes the IPv4 part as two hex groups (`::ffff:a00:1`). */
const MAPPED_HEX = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/;

/**
 * The address in `text`, or null when it is not one. IPv4-mapped IPv6 (`::ffff:10.0.0.1`) is IPv4, as Go (and so
 * Kubernetes' validation) reads it and as normalizeIp below spells it. Zone indexes (`fe80::1%eth0`) are
 * refused: an API address never has one, and a dialled one would depend on the node's interfaces.
 */
export function parseKubeIp(text: unknown): KubeIp | null {
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_TEXT) return null;
  if (isIPv4(text)) return { ip: text, family: 4 };
  if (isIPv6(text) && !text.includes('%')) {
    const mapped = normalizeIp(text);
    if (!mapped.includes(':')) return { ip: mapped, family: 4 };
    const ip = canonicalIPv6(mapped);
    const hex = MAPPED_HEX.exec(ip);
    if (hex === null) return { ip, family: 6 };
    const high = Number.parseInt(hex[1], 16);
    const low = Number.parseInt(hex[2], 16);
    return { ip: `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`, family: 4 };
  }
  const legacy = LEGACY_IPV4.exec(text);
  if (legacy === null) return null;
  const parts = legacy.slice(1).map(Number);
  return parts.every((part) => part <= 255) ? { ip: parts.join('.'), family: 4 } : null;
}

const MAPPED_IPV4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/;

/** One spelling per address: no brackets, lower case, IPv4-mapped IPv6 as plain IPv4 (what a dual-stack socket
 *  may report for an IPv4 peer). */
export function normalizeIp(ip: string): string {
  let result = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  if (result.includes(':')) {
    result = result.toLowerCase();
    const mapped = MAPPED_IPV4.exec(result);
    if (mapped !== null) result = mapped[1];
  }
  return result;
}
