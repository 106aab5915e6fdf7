// kube-proxy's iptables mode in miniature: ClusterIP:port DNAT to one endpoint per connection, in a node namespace.

import { createHash } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { inNamespace } from './netns.ts';

export interface ServiceEndpoint {
  ip: string;
  port: number;
}

export interface ClusterIpServiceSpec {
  /** Kubernetes namespace and name; with portName they make the service port's name, as kube-proxy's comments do. */
  namespace?: string;
  name: string;
  portName?: string;
  /** An IPv4 or IPv6 ClusterIP (a fake one: 10.79.100.0/24, fd79:100::/112 by convention). */
  clusterIp: string;
  port: number;
}

export interface ClusterIpService {
  spec: ClusterIpServiceSpec;
  endpoints(): readonly ServiceEndpoint[];
  /** Replaces the endpoints (a scale-up, a pod gone): one atomic iptables-restore, like one kube-proxy sync. */
  setEndpoints(endpoints: readonly ServiceEndpoint[]): Promise<void>;
  remove(): Promise<void>;
}

export interface KubeProxy {
  addService(spec: ClusterIpServiceSpec, endpoints: readonly ServiceEndpoint[]): Promise<ClusterIpService>;
  /** The nat table's rules as `iptables-save` prints them, for debugging a failed test. */
  dump(family: 'ipv4' | 'ipv6'): Promise<string>;
}

type Family = 'ipv4' | 'ipv6';

export interface ServiceState {
  spec: ClusterIpServiceSpec;
  endpoints: readonly ServiceEndpoint[];
}

function portName(spec: ClusterIpServiceSpec): string {
  return `${spec.namespace ?? 'default'}/${spec.name}${spec.portName === undefined ? '' : `:${spec.portName}`}`;
}

// kube-proxy names chains by a hash of what they stand for; 16 characters keep them under iptables' 28.
function chainName(kind: 'SVC' | 'SEP', key: string): string {
  return `KUBE-${kind}-${createHash('sha256').update(key).digest('hex').slice(0, 16).toUpperCase()}`;
}

const hostRoute = (ip: string): string => `${ip}/${isIPv6(ip) ? 128 : 32}`;
const hostPort = (ep: ServiceEndpoint): string => (isIPv6(ep.ip) ? `[${ep.ip}]:${ep.port}` : `${ep.ip}:${ep.port}`);

/**
 * Renders the whole of kube-proxy's state for one family, as kube-proxy does on every sync: nat KUBE-SERVICES →
 * KUBE-SVC (one `statistic random` rule per endpoint, probability 1/(endpoints left), the last one unconditional)
 * → KUBE-SEP (DNAT); a service without endpoints is REJECTed in filter KUBE-SERVICES (connection refused).
 * Chains of services or endpoints that are gone are deleted. Hairpin masquerade is left out: clients and backends
 * sit on different bridges.
 */
export function renderRules(services: readonly ServiceState[], stale: readonly string[], jumps: boolean): string {
  const nat: string[] = ['*nat', ':KUBE-SERVICES - [0:0]'];
  const natRules: string[] = [];
  const filter: string[] = ['*filter', ':KUBE-SERVICES - [0:0]'];
  if (jumps) {
    const portals = ['-m', 'comment', '--comment', '"kubernetes service portals"', '-j', 'KUBE-SERVICES'].join(' ');
    natRules.push(`-A PREROUTING ${portals}`, `-A OUTPUT ${portals}`);
    filter.push(
      '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    );
  }
  for (const { spec, endpoints } of services) {
    const name = portName(spec);
    const match = `-d ${hostRoute(spec.clusterIp)} -p tcp -m comment --comment "${name} cluster IP" -m tcp --dport ${spec.port}`;
    if (endpoints.length === 0) {
      const reject = isIPv6(spec.clusterIp) ? 'icmp6-port-unreachable' : 'icmp-port-unreachable';
      filter.push(`-A KUBE-SERVICES ${match} -j REJECT --reject-with ${reject}`);
      continue;
    }
    const svc = chainName('SVC', name);
    nat.push(`:${svc} - [0:0]`);
    natRules.push(`-A KUBE-SERVICES ${match} -j ${svc}`);
    endpoints.forEach((ep, i) => {
      const sep = chainName('SEP', `${name} ${hostPort(ep)}`);
      nat.push(`:${sep} - [0:0]`);
      const left = endpoints.length - i;
      const pick = left > 1 ? `-m statistic --mode random --probability ${(1 / left).toFixed(10)} ` : '';
      natRules.push(`-A ${svc} -m comment --comment "${name} -> ${hostPort(ep)}" ${pick}-j ${sep}`);
      natRules.push(`-A ${sep} -p tcp -m tcp -j DNAT --to-destination ${hostPort(ep)}`);
    });
  }
  // A chain must be empty to be deleted: declaring it in the script flushes it first (what kube-proxy does too).
  nat.push(...stale.map((chain) => `:${chain} - [0:0]`));
  const deletions = stale.map((chain) => `-X ${chain}`);
  return [...nat, ...natRules, ...deletions, 'COMMIT', ...filter, 'COMMIT', ''].join('\n');
}

function chainsOf(services: readonly ServiceState[]): Set<string> {
  const chains = new Set<string>();
  for (const { spec, endpoints } of services) {
    if (endpoints.length === 0) continue;
    const name = portName(spec);
    chains.add(chainName('SVC', name));
    for (const ep of endpoints) chains.add(chainName('SEP', `${name} ${hostPort(ep)}`));
  }
  return chains;
}

/** A kube-proxy for one node namespace. Its rules live (and die) with that namespace. */
export function createKubeProxy(nodeNs: string): KubeProxy {
  const services = new Map<string, ServiceState>();
  const synced: Record<Family, { jumps: boolean; chains: Set<string> }> = {
    ipv4: { jumps: false, chains: new Set() },
    ipv6: { jumps: false, chains: new Set() },
  };
  const familyOf = (spec: ClusterIpServiceSpec): Family => (isIPv6(spec.clusterIp) ? 'ipv6' : 'ipv4');

  const sync = async (family: Family): Promise<void> => {
    const mine = [...services.values()].filter((s) => familyOf(s.spec) === family);
    const chains = chainsOf(mine);
    const stale = [...synced[family].chains].filter((chain) => !chains.has(chain));
    const script = renderRules(mine, stale, !synced[family].jumps);
    const restore = family === 'ipv6' ? 'ip6tables-restore' : 'iptables-restore';
    await inNamespace(nodeNs, restore, ['--noflush'], { input: script });
    synced[family] = { jumps: true, chains };
  };

  return {
    async addService(spec, endpoints) {
      const key = portName(spec);
      if (services.has(key)) throw new Error(`service port ${key} exists`);
      const family = familyOf(spec);
      for (const ep of endpoints) {
        if (isIPv6(ep.ip) !== (family === 'ipv6')) throw new Error(`endpoint ${ep.ip} is not of ${spec.clusterIp}'s family`);
      }
      const state: ServiceState = { spec, endpoints: [...endpoints] };
      services.set(key, state);
      await sync(family);
      return {
        spec,
        endpoints: () => state.endpoints,
        async setEndpoints(next) {
          state.endpoints = [...next];
          await sync(family);
        },
        async remove() {
          services.delete(key);
          await sync(family);
        },
      };
    },
    dump: (family) => inNamespace(nodeNs, family === 'ipv6' ? 'ip6tables-save' : 'iptables-save', []),
  };
}
