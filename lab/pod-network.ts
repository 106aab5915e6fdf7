// The conflists of a node's pod networks: Debian's bridge + host-local, then whatever is chained after (meshlite's).

import { join } from 'node:path';
import type { CniNetwork, CniPluginConfig } from './cni-runtime.ts';

/** Where Debian's containernetworking-plugins install bridge, host-local, loopback, … */
export const DEBIAN_CNI_DIR = '/usr/lib/cni';

/**
 * Backends and clients sit on separate bridges: traffic between them is routed by the node, so it passes the node's
 * nat PREROUTING (where kube-proxy and meshlite DNAT). On one bridge it would be switched, unseen by iptables,
 * unless br_netfilter were loaded — and tests load no kernel modules.
 */
export type PodNetworkRole = 'backends' | 'clients';

export interface PodSubnets {
  ipv4: string;
  /** Present when the node is dual-stack. */
  ipv6?: string;
}

export interface PodNetwork extends CniNetwork {
  role: PodNetworkRole;
  /** The bridge in the node namespace; each node namespace has its own, so the name only needs to be unique there. */
  bridge: string;
  subnets: PodSubnets;
}

/** Plugins chained after bridge in every pod network of a node, and the extra CNI_PATH dirs they are found in. */
export interface CniChain {
  plugins: CniPluginConfig[];
  /** Searched before /usr/lib/cni. */
  cniPath: string[];
}

const BRIDGES: Record<PodNetworkRole, string> = { backends: 'ml-br-be', clients: 'ml-br-cl' };

/**
 * Subnets by node index (1-based) and role: node 1 has 10.79.1.0/24 (backends) and 10.79.2.0/24 (clients),
 * node 2 10.79.11.0/24 and 10.79.12.0/24, …; IPv6 likewise fd79:1::/64, fd79:2::/64, fd79:11::/64, …
 */
export function podSubnets(nodeIndex: number, role: PodNetworkRole, dualStack: boolean): PodSubnets {
  const third = 10 * (nodeIndex - 1) + (role === 'backends' ? 1 : 2);
  return dualStack ? { ipv4: `10.79.${third}.0/24`, ipv6: `fd79:${third}::/64` } : { ipv4: `10.79.${third}.0/24` };
}

export interface PodNetworkOptions {
  nodeIndex: number;
  role: PodNetworkRole;
  dualStack: boolean;
  /** host-local keeps its leases on disk: a directory of the run, never its default /var/lib/cni/networks. */
  ipamDataDir: string;
  chain?: CniChain;
}

export function podNetwork(options: PodNetworkOptions): PodNetwork {
  const subnets = podSubnets(options.nodeIndex, options.role, options.dualStack);
  const ranges = [[{ subnet: subnets.ipv4 }]];
  if (subnets.ipv6 !== undefined) ranges.push([{ subnet: subnets.ipv6 }]);
  const name = `ml-e2e-${options.role}`;
  const bridge: CniPluginConfig = {
    type: 'bridge',
    bridge: BRIDGES[options.role],
    isGateway: true,
    // Without it Debian's bridge plugin gives the pod no default route (checked on this machine).
    isDefaultGateway: true,
    ipMasq: false,
    hairpinMode: true,
    ipam: { type: 'host-local', ranges, dataDir: join(options.ipamDataDir, name) },
  };
  return {
    role: options.role,
    bridge: BRIDGES[options.role],
    subnets,
    conflist: { cniVersion: '1.0.0', name, plugins: [bridge, ...(options.chain?.plugins ?? [])] },
    cniPath: [...(options.chain?.cniPath ?? []), DEBIAN_CNI_DIR],
  };
}

/** The conflist a runtime uses for a sandbox's loopback (containerd's go-cni does exactly this, with CNI_IFNAME=lo). */
export function loopbackNetwork(): CniNetwork {
  return { conflist: { cniVersion: '1.0.0', name: 'cni-loopback', plugins: [{ type: 'loopback' }] }, cniPath: [DEBIAN_CNI_DIR] };
}
