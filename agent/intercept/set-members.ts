// Set members in the one spelling meshlite compares with the kernel's: `ipset save` prints them this way.

import { parseKubeIp } from '../vocabulary/ip-address.ts';
import type { IpFamily } from './names.ts';

export interface Member {
  readonly family: IpFamily;
  /** `10.1.0.5`, `fd00::5` (hash:ip) or `10.96.0.10,tcp:8080`, `fd00::a,tcp:443` (hash:ip,port). */
  readonly member: string;
}

/** The pods-set member for an IP; null when `ip` is not an address. IPv4-mapped IPv6 is IPv4, as the kernel sees it. */
export function podMember(ip: string): Member | null {
  const parsed = parseKubeIp(ip);
  return parsed === null ? null : { family: parsed.family, member: parsed.ip };
}

/** The destinations-set member for a TCP destination; null when the address or port is invalid. */
export function destinationMember(ip: string, port: number): Member | null {
  const parsed = parseKubeIp(ip);
  if (parsed === null || !Number.isInteger(port) || port < 1 || port > 65_535) return null;
  return { family: parsed.family, member: `${parsed.ip},tcp:${port}` };
}

/**
 * A member as `ipset save` printed it, in the same spelling. Something unexpected (another protocol, a name) is kept
 * as printed: it is then simply not a desired member, and deleting it by its printed form works.
 */
export function savedMember(text: string): string {
  const comma = text.indexOf(',');
  const address = parseKubeIp(comma < 0 ? text : text.slice(0, comma));
  if (address === null) return text;
  if (comma < 0) return address.ip;
  const rest = text.slice(comma + 1);
  const colon = rest.indexOf(':');
  // ipset prints the protocol always; a hand-written `ip,port` means TCP, as ipset reads it.
  const [protocol, port] = colon < 0 ? ['tcp', rest] : [rest.slice(0, colon), rest.slice(colon + 1)];
  return /^\d+$/.test(port) ? `${address.ip},${protocol}:${Number(port)}` : text;
}
