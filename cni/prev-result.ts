// The previous plugin's result (prevResult) as a chained plugin sees it: checked, passed on, and read for the pod's IPs.

import { isIP } from 'node:net';
import { CniError, CniErrorCode } from './cni-errors.ts';

export type PrevResult = Record<string, unknown>;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The runtime converts prevResult to the configuration's cniVersion before it calls the plugin, so its shape is the
 * request's; meshlite only needs it to be an object whose "ips" (when present) is a list of { address: "IP/prefix" }.
 */
export function prevResultOf(config: Record<string, unknown>): PrevResult | null {
  const prev = config.prevResult;
  if (prev === undefined || prev === null) return null;
  if (!isObject(prev)) {
    throw new CniError(CniErrorCode.INVALID_CONFIG, 'invalid prevResult: expected an object', `got ${JSON.stringify(prev)}`);
  }
  return prev;
}

/**
 * Every address in prevResult.ips without its prefix length, in order, without duplicates; IPv4 and IPv6 alike,
 * because interception follows every address a pod may connect from. An empty list is valid (a primary network
 * that assigns no IP): the agent then enrolls the pod from its watch, if at all.
 */
export function ipsOf(prev: PrevResult): string[] {
  const { ips } = prev;
  if (ips === undefined || ips === null) return [];
  if (!Array.isArray(ips)) {
    throw new CniError(CniErrorCode.INVALID_CONFIG, 'invalid prevResult: "ips" must be a list', `got ${JSON.stringify(ips)}`);
  }
  const addresses: string[] = [];
  for (const entry of ips) {
    const cidr = isObject(entry) ? entry.address : undefined;
    const address = typeof cidr === 'string' ? cidr.split('/')[0] : undefined;
    if (address === undefined || isIP(address) === 0) {
      throw new CniError(
        CniErrorCode.INVALID_CONFIG,
        'invalid prevResult: every "ips" entry needs an "address" in CIDR notation',
        `got ${JSON.stringify(entry)}`,
      );
    }
    if (!addresses.includes(address)) addresses.push(address);
  }
  return addresses;
}
