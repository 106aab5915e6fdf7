// A pod sandbox made the way a container runtime makes one: `ip netns add`, loopback plugin, then the conflist's ADD.

import { randomBytes, randomUUID } from 'node:crypto';
import { addNetworkList, type CniExecOptions, type CniNetwork, type CniResult, delNetworkList } from './cni-runtime.ts';
import { addNamespace, deleteNamespace, namespacePath } from './netns.ts';
import type { E2eNode } from './node.ts';
import { loopbackNetwork, type PodNetwork } from './pod-network.ts';

export interface PodSpec {
  /** Kubernetes name and namespace: they reach the plugins in CNI_ARGS (K8S_POD_NAME, K8S_POD_NAMESPACE). */
  name: string;
  namespace?: string;
}

export interface E2ePod {
  name: string;
  namespace: string;
  uid: string;
  /** The sandbox (pause container) id: CNI_CONTAINERID and K8S_POD_INFRA_CONTAINER_ID. */
  containerId: string;
  /** The pod's network namespace. */
  ns: string;
  node: E2eNode;
  network: PodNetwork;
  ipv4: string;
  ipv6?: string;
  /** What the conflist's ADD returned (the last plugin's result). */
  result: CniResult;
}

/** CNI_ARGS as kubelet's CRI runtime sends them: IgnoreUnknown first, or plugins reject the K8S_ keys. */
export function kubernetesCniArgs(pod: { name: string; namespace: string; containerId: string; uid: string }) {
  const args: Array<[string, string]> = [
    ['IgnoreUnknown', '1'],
    ['K8S_POD_NAMESPACE', pod.namespace],
    ['K8S_POD_NAME', pod.name],
    ['K8S_POD_INFRA_CONTAINER_ID', pod.containerId],
    ['K8S_POD_UID', pod.uid],
  ];
  return args;
}

function ipsOf(result: CniResult): { ipv4?: string; ipv6?: string } {
  const out: { ipv4?: string; ipv6?: string } = {};
  for (const { address } of result.ips ?? []) {
    const ip = address.split('/')[0];
    if (ip.includes(':')) out.ipv6 ??= ip;
    else out.ipv4 ??= ip;
  }
  return out;
}

export interface PodRuntime {
  /** The pod's namespace name (chosen by the run, so that its prefix marks it as the run's). */
  ns: string;
  cni: CniExecOptions;
}

/** Creates the sandbox. On failure nothing is left: the runtime's DEL ran, and the namespace is deleted. */
export async function createPod(node: E2eNode, network: PodNetwork, spec: PodSpec, runtime: PodRuntime): Promise<E2ePod> {
  const namespace = spec.namespace ?? 'default';
  const containerId = randomBytes(32).toString('hex');
  const uid = randomUUID();
  const netns = namespacePath(runtime.ns);
  const args = kubernetesCniArgs({ name: spec.name, namespace, containerId, uid });
  await addNamespace(runtime.ns);
  try {
    await addNetworkList(loopbackNetwork(), { containerId, netns, ifName: 'lo', args }, runtime.cni);
    const result = await addNetworkList(network, { containerId, netns, ifName: 'eth0', args }, runtime.cni);
    const { ipv4, ipv6 } = ipsOf(result);
    if (ipv4 === undefined) throw new Error(`pod ${spec.name}: the CNI result has no IPv4 address`);
    const pod: E2ePod = { name: spec.name, namespace, uid, containerId, ns: runtime.ns, node, network, ipv4, result };
    if (ipv6 !== undefined) pod.ipv6 = ipv6;
    return pod;
  } catch (err) {
    await deleteNamespace(runtime.ns).catch(() => {});
    throw err;
  }
}

/** Tears the sandbox down in the runtime's order: CNI DEL (eth0's conflist, then loopback), then the namespace. */
export async function deletePod(pod: E2ePod, cni: CniExecOptions): Promise<void> {
  const netns = namespacePath(pod.ns);
  const args = kubernetesCniArgs(pod);
  const errors: unknown[] = [];
  const networks: Array<[CniNetwork, string]> = [
    [pod.network, 'eth0'],
    [loopbackNetwork(), 'lo'],
  ];
  for (const [network, ifName] of networks) {
    await delNetworkList(network, { containerId: pod.containerId, netns, ifName, args }, cni).catch((err) =>
      errors.push(err),
    );
  }
  await deleteNamespace(pod.ns);
  if (errors.length > 0) throw new AggregateError(errors, `CNI DEL of pod ${pod.name} failed`);
}
