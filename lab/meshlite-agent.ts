// The meshlite agent on an e2e node: run in the node's namespace like a hostNetwork DaemonSet pod, with static discovery.

import { writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { E2eRun } from './e2e-harness.ts';
import { agentNodeFlags } from './image-recipe.ts';
import type { E2eNode } from './node.ts';
import type { NamespaceProcess } from './netns-process.ts';

const MAIN = fileURLToPath(new URL('../agent/main.ts', import.meta.url));
const CNI_MAIN = fileURLToPath(new URL('../cni/main.ts', import.meta.url));
export const PROXY_PORT = 15001;
const ADMIN = '127.0.0.1:15000';

export interface StaticService {
  name: string;
  clusterIP: string;
  /** A dual-stack Service's ClusterIPs, primary (= clusterIP) first, one per family. */
  clusterIPs?: string[];
  port: number;
  /** `IP:port` or `[IPv6]:port`. */
  endpoints: string[];
}

export interface StaticPod {
  name: string;
  namespace?: string;
  ip?: string;
  inject: 'enabled' | 'disabled';
}

/** The file the agent watches; written atomically, as a ConfigMap update is. */
export function writeStaticFile(path: string, services: StaticService[], pods: StaticPod[]): void {
  const lines = ['services:'];
  if (services.length === 0) lines[0] = 'services: []';
  for (const s of services) {
    lines.push(`  - name: ${s.name}`, '    namespace: default', `    port: ${s.port}`, `    clusterIP: ${s.clusterIP}`);
    // Quoted: a plain `[fd79::1]:50051` would be a YAML flow sequence.
    if (s.clusterIPs !== undefined) lines.push(`    clusterIPs: [${s.clusterIPs.map((ip) => JSON.stringify(ip)).join(', ')}]`);
    lines.push('    endpoints:');
    for (const address of s.endpoints) lines.push(`      - address: ${JSON.stringify(address)}`);
    if (s.endpoints.length === 0) lines[lines.length - 1] = '    endpoints: []';
  }
  if (pods.length > 0) lines.push('pods:');
  for (const p of pods) {
    const ip = p.ip === undefined ? '' : `, ip: "${p.ip}"`;
    lines.push(`  - { name: ${p.name}, namespace: ${p.namespace ?? 'default'}${ip}, inject: ${p.inject} }`);
  }
  writeFileSync(`${path}.tmp`, `${lines.join('\n')}\n`);
  renameSync(`${path}.tmp`, path);
}

export interface AgentPaths {
  staticFile: string;
  cniSocket: string;
}

export function agentPaths(run: E2eRun): AgentPaths {
  return { staticFile: join(run.tmpDir, 'meshlite.yaml'), cniSocket: join(run.tmpDir, 'cni.sock') };
}

export interface MeshliteOptions {
  /**
   * Both node IPs (`--node-ip 10.79.0.N,fd79::N`, as the DaemonSet passes status.hostIPs on a dual-stack node):
   * IPv6 is intercepted too, redirected to `[fd79::N]:15001`, which the agent then listens on beside --listen.
   * Needs a dual-stack node. Default false: IPv4 only.
   */
  dualStack?: boolean;
  /** The admin address (default 127.0.0.1:15000): a second agent on the node, as during an upgrade, needs another. */
  admin?: string;
  /** Kubernetes discovery through this kubeconfig (an API server the node namespace reaches), instead of the file. */
  kubernetes?: { kubeconfig: string; nodeName: string };
  /**
   * The balancing policy (default: the agent's, p2c-ewma). Tests of interception rather than of the policy use
   * round-robin: p2c-ewma rightly follows the latency differences of pods sharing two loaded cores, and a spread of
   * 774/965/1261 (seen once in CI) says nothing about whether a connection was intercepted.
   */
  balancer?: 'round-robin' | 'p2c-ewma' | 'least-request';
}

/** Starts the agent in the node namespace with interception on; resolves once it logged "meshlite ready". */
export async function startMeshlite(run: E2eRun, node: E2eNode, paths: AgentPaths, options: MeshliteOptions = {}): Promise<NamespaceProcess> {
  if (options.dualStack === true && node.ipv6 === undefined) throw new Error(`node ${node.name} is not dual-stack`);
  const nodeIPs = options.dualStack === true ? `${node.ipv4},${node.ipv6}` : node.ipv4;
  const discovery =
    options.kubernetes === undefined
      ? ['--discovery', 'static', '--static-file', paths.staticFile]
      : ['--discovery', 'kubernetes', '--kubeconfig', options.kubernetes.kubeconfig, '--node-name', options.kubernetes.nodeName];
  const agent = run.spawn(node.ns, process.execPath, [
    ...agentNodeFlags(),
    MAIN,
    ...discovery,
    '--listen',
    `${node.ipv4}:${PROXY_PORT}`,
    '--admin',
    options.admin ?? ADMIN,
    '--intercept',
    'on',
    '--node-ip',
    nodeIPs,
    '--cni-socket',
    paths.cniSocket,
    '--reconcile-interval-ms',
    '2000',
    ...(options.balancer === undefined ? [] : ['--balancer', options.balancer]),
  ]);
  await agent.line((line) => line.includes('"msg":"meshlite ready"'), 20_000);
  return agent;
}

/** The CNI chain that puts meshlite after bridge, fail-open (the default). */
export function meshliteChain(run: E2eRun, paths: AgentPaths, writeWrapper: (dir: string, type: string, script: string) => string) {
  const dir = join(run.tmpDir, 'cni-bin');
  writeWrapper(dir, 'meshlite', CNI_MAIN);
  return { plugins: [{ type: 'meshlite', agentSocket: paths.cniSocket, logFile: join(run.tmpDir, 'cni.log') }], cniPath: [dir] };
}

/** One GET on the agent's admin server, from inside the node namespace (it binds the node's loopback). */
export async function adminGet(run: E2eRun, node: E2eNode, path: string, admin = ADMIN): Promise<string> {
  const script = `fetch('http://${admin}${path}').then((r) => r.text()).then((t) => process.stdout.write(t), (e) => { console.error(e); process.exit(1); })`;
  const fetcher = run.spawn(node.ns, process.execPath, ['-e', script]);
  const exit = await fetcher.wait(10_000);
  if (exit.code !== 0) throw new Error(`admin GET ${path} failed: ${fetcher.stderr()}`);
  return fetcher.stdout();
}

/** Requests the agent relayed so far (every service and status). */
export async function relayedRequests(run: E2eRun, node: E2eNode, admin = ADMIN): Promise<number> {
  const text = await adminGet(run, node, '/metrics', admin);
  let total = 0;
  for (const match of text.matchAll(/^meshlite_requests_total\{[^}]*\} (\d+)$/gm)) total += Number(match[1]);
  return total;
}
