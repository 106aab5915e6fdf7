// A "node": a network namespace with a node IP, forwarding on, and two pod networks; nodes can be linked by a veth.

import { addNamespace, ipIn, setNamespaceSysctl } from './netns.ts';
import { type CniChain, type PodNetwork, type PodNetworkRole, podNetwork } from './pod-network.ts';

export interface E2eNode {
  /** node<index>, as a Kubernetes node name. */
  name: string;
  /** 1-based; picks the node's IPs and pod subnets, so give each node of a run its own. */
  index: number;
  /** The node's network namespace: bridges, host-side veths, iptables/ipsets and the agent all live here. */
  ns: string;
  /** The node IP (on the node's loopback, like a routed fabric's node address): 10.79.0.<index>. */
  ipv4: string;
  /** fd79::<index>, when the node is dual-stack. */
  ipv6?: string;
  dualStack: boolean;
  networks: Record<PodNetworkRole, PodNetwork>;
}

export interface NodeOptions {
  index: number;
  ns: string;
  dualStack: boolean;
  /** Where host-local keeps leases (a directory of the run). */
  ipamDataDir: string;
  /** Plugins chained after bridge in both pod networks (meshlite's, later), and their CNI_PATH dirs. */
  chain?: CniChain;
}

/**
 * Creates the node namespace. Everything is set inside it: the root namespace is never changed. IPv6 DAD is off
 * in the node, or the bridges' gateway addresses would stay "tentative" (unusable) for a second or two.
 */
export async function createNode(options: NodeOptions): Promise<E2eNode> {
  const { index, ns, dualStack } = options;
  if (!Number.isInteger(index) || index < 1 || index > 9) throw new Error(`node index ${index} is not 1..9`);
  await addNamespace(ns);
  await ipIn(ns, ['link', 'set', 'lo', 'up']);
  await setNamespaceSysctl(ns, 'net.ipv4.ip_forward', '1');
  const node: E2eNode = {
    name: `node${index}`,
    index,
    ns,
    ipv4: `10.79.0.${index}`,
    dualStack,
    networks: {
      backends: podNetwork({ ...options, nodeIndex: index, role: 'backends' }),
      clients: podNetwork({ ...options, nodeIndex: index, role: 'clients' }),
    },
  };
  await ipIn(ns, ['address', 'add', `${node.ipv4}/32`, 'dev', 'lo']);
  if (dualStack) {
    node.ipv6 = `fd79::${index}`;
    for (const key of ['all', 'default']) await setNamespaceSysctl(ns, `net.ipv6.conf.${key}.accept_dad`, '0');
    await setNamespaceSysctl(ns, 'net.ipv6.conf.all.forwarding', '1');
    await ipIn(ns, ['address', 'add', `${node.ipv6}/128`, 'dev', 'lo']);
  }
  await addDeadUplink(node);
  return node;
}

/**
 * A real node routes everything it does not know to its uplink; traffic to a ClusterIP that kube-proxy does not
 * DNAT (a Service without endpoints) therefore goes through FORWARD, where kube-proxy REJECTs it: the client sees
 * "connection refused". Without a default route the node would answer "network unreachable" before FORWARD. So
 * the node gets an uplink `eth0`: a veth whose far end (in the node namespace too) stays down, so nothing ever
 * leaves through it — nothing outside the run is reachable, as if the node's cable were cut.
 */
async function addDeadUplink(node: E2eNode): Promise<void> {
  await ipIn(node.ns, ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0-far']);
  await ipIn(node.ns, ['link', 'set', 'eth0', 'up']);
  await ipIn(node.ns, ['route', 'add', 'default', 'via', '10.79.0.254', 'dev', 'eth0', 'onlink']);
  if (node.dualStack) await ipIn(node.ns, ['-6', 'route', 'add', 'default', 'via', 'fd79::fe', 'dev', 'eth0', 'onlink']);
}

export interface NodeLink {
  /** The veth's name in each node (ml-to-<peer index>). */
  names: [string, string];
  ipv4: [string, string];
}

/**
 * Links two nodes with a veth pair on a /30 (10.79.0.64 + 4·link, and fd79:0:ff:<link>::/64 when both are
 * dual-stack) and routes each node's IP and pod subnets to the other: a tiny routed cluster network. `link`
 * numbers the links of a run from 0.
 */
export async function connectNodes(a: E2eNode, b: E2eNode, link: number): Promise<NodeLink> {
  if (link < 0 || link > 15) throw new Error(`link number ${link} is not 0..15`);
  const names: [string, string] = [`ml-to-${b.index}`, `ml-to-${a.index}`];
  const base = 64 + 4 * link;
  const ipv4: [string, string] = [`10.79.0.${base + 1}`, `10.79.0.${base + 2}`];
  await ipIn(a.ns, ['link', 'add', names[0], 'type', 'veth', 'peer', 'name', names[1], 'netns', b.ns]);
  const dualStack = a.dualStack && b.dualStack;
  const ends: Array<[E2eNode, string, string, E2eNode, string]> = [
    [a, names[0], ipv4[0], b, ipv4[1]],
    [b, names[1], ipv4[1], a, ipv4[0]],
  ];
  for (const [self, dev, address, peer, gateway] of ends) {
    const end = self === a ? 1 : 2;
    await ipIn(self.ns, ['address', 'add', `${address}/30`, 'dev', dev]);
    if (dualStack) await ipIn(self.ns, ['address', 'add', `fd79:0:ff:${link}::${end}/64`, 'dev', dev, 'nodad']);
    await ipIn(self.ns, ['link', 'set', dev, 'up']);
    const peerV4 = [`${peer.ipv4}/32`, peer.networks.backends.subnets.ipv4, peer.networks.clients.subnets.ipv4];
    for (const dst of peerV4) await ipIn(self.ns, ['route', 'add', dst, 'via', gateway, 'src', self.ipv4]);
    if (dualStack && peer.ipv6 !== undefined && self.ipv6 !== undefined) {
      const via6 = `fd79:0:ff:${link}::${3 - end}`;
      const peerV6 = [`${peer.ipv6}/128`, peer.networks.backends.subnets.ipv6, peer.networks.clients.subnets.ipv6];
      for (const dst of peerV6) {
        if (dst !== undefined) await ipIn(self.ns, ['-6', 'route', 'add', dst, 'via', via6, 'src', self.ipv6]);
      }
    }
  }
  return { names, ipv4 };
}
