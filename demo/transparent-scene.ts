// Transparent mode: a node made of network namespaces, as in a cluster; the client pod dials a ClusterIP, unaware of meshlite.
//
// Built with lab/, the project's network-namespace toolkit (the e2e tests use it too): everything lives in
// namespaces named `ml-e2e-<pid>-<rand>-…` (never the machine's own), so deleting them removes every interface,
// rule and set, and a run that was killed is swept by the next one. Long-running processes start under `setsid`:
// the terminal's Ctrl-C then reaches only the demo, which stops them in order.

import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writePluginWrapper } from '../lab/cni-plugin-wrapper.ts';
import { agentNodeFlags } from '../lab/image-recipe.ts';
import { type E2eRun, startE2eRun } from '../lab/e2e-harness.ts';
import { startGrpcBackend } from '../lab/grpc-backend-pod.ts';
import { agentPaths, meshliteChain, PROXY_PORT, writeStaticFile } from '../lab/meshlite-agent.ts';
import type { NamespaceProcess, NamespaceSpawner } from '../lab/netns-process.ts';
import type { E2ePod } from '../lab/pod.ts';
import type { Tally } from './load.ts';
import type { Options } from './options.ts';
import type { PodClientArgs } from './pod-client.ts';
import { listenForReports, type Report } from './progress-channel.ts';
import { forwardToUnixSocket } from './admin-forward.ts';
import {
  AGENT_DRAIN_TIMEOUT_MS,
  AGENT_STOP_GRACE_MS,
  BACKEND_IDS,
  IN_FLIGHT,
  RPC_DEADLINE_MS,
  type Say,
  type Scene,
  type SceneClient,
} from './scene.ts';
import type { Teardown } from './teardown.ts';

export const CLUSTER_IP = '10.79.100.10';
export const SERVICE_PORT = 50051;
const SERVICE = { namespace: 'default', name: 'echo', portName: 'grpc' };
const POD_NAMESPACE = 'demo';
const ANNOTATED = 'client-on';
const PLAIN = 'client-off';
const ADMIN = '127.0.0.1:15000';
const AGENT_MAIN = fileURLToPath(new URL('../agent/main.ts', import.meta.url));
const POD_CLIENT = fileURLToPath(new URL('./pod-client.ts', import.meta.url));
const CONNECTIONS_PROBE = fileURLToPath(new URL('./agent-connections.ts', import.meta.url));
const ADMIN_RELAY = fileURLToPath(new URL('./admin-forward.ts', import.meta.url));
const REPORT_EVERY_MS = 200;
const READY_TIMEOUT_MS = 20_000;
const CLIENT_STOP_GRACE_MS = RPC_DEADLINE_MS + 2_000;
const KEPT_LINES = 20;

/** Builds the node, registering each part with `teardown` as soon as it exists, so that a failure half-way undoes it. */
export async function setUpTransparent(options: Options, say: Say, teardown: Teardown): Promise<Scene> {
  const run = await startE2eRun();
  teardown.add(() => removeRun(run), () => removeRunNow(run));
  const alone: NamespaceSpawner = (ns, file, args, spawnOptions) => run.spawn(ns, 'setsid', [file, ...args], spawnOptions);
  if (run.swept.namespaces.length > 0) say(`  swept     ${run.swept.namespaces.length} namespaces that a killed run left behind`);

  const tallies = new Map<string, Tally>([ANNOTATED, PLAIN].map((name) => [name, emptyTally()]));
  let connections: number | null = null;
  const reports = await listenForReports(join(run.tmpDir, 'demo.sock'), (report: Report) => {
    if (report.kind === 'connections') connections = report.count;
    else updateTally(tallies.get(report.from), report);
  });
  teardown.add(async () => {
    await reports.close();
    return '';
  });

  // The agent first, like a DaemonSet pod that is there before the pods it must enroll; no endpoints yet.
  const paths = agentPaths(run);
  writeStaticFile(paths.staticFile, [], [{ name: ANNOTATED, namespace: POD_NAMESPACE, inject: 'enabled' }]);
  const node = await run.createNode({ chain: meshliteChain(run, paths, writePluginWrapper) });
  say(`  node      network namespace ${node.ns}, node IP ${node.ipv4}`);
  const agentArgs = ['--discovery', 'static', '--static-file', paths.staticFile, '--listen', `${node.ipv4}:${PROXY_PORT}`];
  agentArgs.push('--admin', ADMIN, '--intercept', 'on', '--node-ip', node.ipv4, '--cni-socket', paths.cniSocket);
  agentArgs.push('--balancer', options.balancer, '--drain-timeout-ms', String(AGENT_DRAIN_TIMEOUT_MS));
  const agent = alone(node.ns, process.execPath, [...agentNodeFlags(), AGENT_MAIN, ...agentArgs]);
  teardown.add(async () => {
    const exit = await agent.stop({ graceMs: AGENT_STOP_GRACE_MS });
    return `the agent, pid ${agent.pid} (${exit.signal === null ? `exit ${exit.code}` : `signal ${exit.signal}`})`;
  });
  await agent.line((line) => line.includes('"msg":"meshlite ready"'), READY_TIMEOUT_MS);
  say(`  agent     pid ${agent.pid} in the node namespace (as a hostNetwork DaemonSet pod): interception on, proxy on`);
  say(`            ${node.ipv4}:${PROXY_PORT}, endpoints and opt-ins from ${paths.staticFile}`);

  // Pods are deleted before the agent stops, as a node deletes them: CNI DEL reaches the agent, which forgets them.
  const pods: E2ePod[] = [];
  teardown.add(async () => {
    await Promise.all(pods.map((pod) => run.deletePod(pod)));
    return pods.length > 0 ? `the ${pods.length} pods (their processes, then CNI DEL)` : '';
  });
  for (const id of BACKEND_IDS) pods.push(await run.createPod(node, { name: id, namespace: POD_NAMESPACE }));
  const backends = await Promise.all(pods.map((pod, i) => startGrpcBackend(alone, pod, { id: BACKEND_IDS[i], port: SERVICE_PORT })));
  const addresses = new Map(backends.map((b) => [b.id, b.address]));
  say(`  backends  ${[...addresses].map(([id, address]) => `${id} ${address}`).join(', ')}`);
  say(`            (pods: namespaces made by the CNI bridge plugin, meshlite's plugin chained after it)`);
  const endpoints = backends.map((b) => ({ ip: b.host.ipv4, port: b.port }));
  await run.kubeProxy(node).addService({ ...SERVICE, clusterIp: CLUSTER_IP, port: SERVICE_PORT }, endpoints);
  writeStaticFile(
    paths.staticFile,
    [{ name: SERVICE.name, clusterIP: CLUSTER_IP, port: SERVICE_PORT, endpoints: [...addresses.values()] }],
    [{ name: ANNOTATED, namespace: POD_NAMESPACE, inject: 'enabled' }],
  );
  await agent.line((line) => line.includes('static discovery file reloaded'), READY_TIMEOUT_MS);
  const target = `${CLUSTER_IP}:${SERVICE_PORT}`;
  say(`  service   ${SERVICE.name}: ClusterIP ${target} → the 3 backends, by kube-proxy-like rules (one backend per`);
  say('            connection) and in the static file the agent reads');

  // Created after the agent has the service: meshlite's CNI plugin enrolls client-on before its first connection.
  for (const name of [ANNOTATED, PLAIN]) pods.push(await run.createPod(node, { name, namespace: POD_NAMESPACE, network: 'clients' }));
  const [on, off] = pods.slice(-2);
  say(`  clients   ${ANNOTATED}  pod ${on.ipv4}, annotated meshlite.io/inject: enabled: enrolled by meshlite's CNI plugin`);
  say('                       as it was created');
  say(`            ${PLAIN} pod ${off.ipv4}, no annotation`);
  say(`            each: ONE grpc-js channel = ONE HTTP/2 connection to ${target}, ${IN_FLIGHT} unary RPCs in flight`);
  // The dashboard, forwarded from the node namespace's loopback to this machine's, as kubectl port-forward would.
  const relaySocket = join(run.tmpDir, 'admin.sock');
  const relay = alone(node.ns, process.execPath, [ADMIN_RELAY, relaySocket, ADMIN]);
  await relay.line((line) => line === 'forwarding', READY_TIMEOUT_MS);
  const dashboard = await forwardToUnixSocket(relaySocket);
  teardown.add(async () => {
    await dashboard.close();
    return '';
  });
  say(`  dashboard ${dashboard.url}   (open it in a browser while the demo runs; the agent's admin server in the node)`);
  say(`  admin     ip netns exec ${node.ns} curl http://${ADMIN}/debug/endpoints   (also /metrics, /readyz)`);
  say(`  all of it namespaces ${run.prefix}-*, files in ${run.tmpDir}`);
  say();
  say(`  Through the ClusterIP alone, which balances connections, ${PLAIN}'s one connection and so every request on it`);
  say(`  reaches one backend. ${ANNOTATED}'s connection is DNATed to the agent in the node's PREROUTING; the agent picks`);
  say(`  a backend for each request (${options.balancer}).`);
  say();

  const probe = alone(node.ns, process.execPath, [CONNECTIONS_PROBE, ADMIN, join(run.tmpDir, 'demo.sock')]);
  const clients: NamespaceProcess[] = [];
  const clientPods = [on, off];
  for (const pod of clientPods) {
    const args: PodClientArgs = {
      name: pod.name,
      target,
      inFlight: IN_FLIGHT,
      deadlineMs: RPC_DEADLINE_MS,
      socket: join(run.tmpDir, 'demo.sock'),
      reportEveryMs: REPORT_EVERY_MS,
    };
    clients.push(alone(pod.ns, process.execPath, [POD_CLIENT, JSON.stringify(args)]));
  }
  let loadStopped: Promise<void> | null = null;
  const stopLoad = (): Promise<void> => {
    loadStopped ??= (async () => {
      await Promise.all(clients.map((client) => client.stop({ graceMs: CLIENT_STOP_GRACE_MS })));
      // A client's last report may still be on its way when its exit is seen.
      await Promise.race([Promise.all(clientPods.map((pod) => reports.ended(pod.name))), sleep(1_000)]);
      await probe.stop();
    })();
    return loadStopped;
  };
  teardown.add(async () => {
    await stopLoad();
    return 'the load';
  });
  await Promise.all([probe, ...clients].map((proc) => proc.line((line) => line === 'running', READY_TIMEOUT_MS)));

  const sceneClients: SceneClient[] = [
    {
      title: `${ANNOTATED} (annotated): the agent picks a backend for each request`,
      tally: tallies.get(ANNOTATED) ?? emptyTally(),
      balanced: true,
    },
    {
      title: `${PLAIN} (no annotation): kube-proxy picked one backend for its one connection`,
      tally: tallies.get(PLAIN) ?? emptyTally(),
      balanced: false,
    },
  ];
  return {
    backends: addresses,
    clients: sceneClients,
    connections: async () => connections,
    agentExited: agent.exited.then((exit) => (exit.signal === null ? `exit ${exit.code}` : `signal ${exit.signal}`)),
    agentOutput: () => [...lastLines(agent.stdout()), ...lastLines(agent.stderr())].slice(-KEPT_LINES),
    stopLoad,
  };
}

/** The harness's cleanup (namespaces, processes, temp dir), then its own check that nothing of the run is left. */
async function removeRun(run: E2eRun): Promise<string> {
  await run.cleanup();
  const left = run.leftovers();
  const problems = [
    ...left.namespaces.map((ns) => `namespace ${ns}`),
    ...left.processes.map((pid) => `process ${pid}`),
    ...left.strays.map((pid) => `stray process ${pid}`),
    ...(left.tempDir ? [run.tmpDir] : []),
  ];
  if (problems.length > 0) throw new Error(`left behind: ${problems.join(', ')}`);
  return `the node namespace; removed ${run.tmpDir}; nothing of ${run.prefix} is left`;
}

/** On an abnormal exit: end the run's processes by PID, delete its namespaces, remove its files, synchronously. */
function removeRunNow(run: E2eRun): void {
  const left = run.leftovers();
  for (const pid of left.processes) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // ended meanwhile
    }
  }
  for (const ns of left.namespaces) execFileSync('ip', ['netns', 'delete', ns], { stdio: 'ignore' });
  rmSync(run.tmpDir, { recursive: true, force: true });
}

function emptyTally(): Tally {
  return { served: new Map(), ok: 0, failed: 0, lastError: '' };
}

function updateTally(tally: Tally | undefined, report: Extract<Report, { kind: 'tally' }>): void {
  if (tally === undefined) return;
  tally.ok = report.ok;
  tally.failed = report.failed;
  tally.lastError = report.lastError;
  for (const [id, count] of Object.entries(report.served)) tally.served.set(id, count);
}

function lastLines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '').slice(-KEPT_LINES);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
