// meshlite end to end on a node made of network namespaces: pods made by the real CNI plugins with meshlite's chained
// after bridge, kube-proxy-like rules, the agent in the node namespace with transparent interception.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { waitFor } from '../../lab/wait-for.ts';
import { writePluginWrapper } from '../../lab/cni-plugin-wrapper.ts';
import { e2eSkipReason, type E2eRun, startE2eRun } from '../../lab/e2e-harness.ts';
import type { E2eNode } from '../../lab/node.ts';
import type { GrpcBackend } from '../../lab/grpc-backend-pod.ts';
import {
  type AgentPaths,
  agentPaths,
  type MeshliteOptions,
  meshliteChain,
  PROXY_PORT,
  relayedRequests,
  type StaticPod,
  startMeshlite,
  writeStaticFile,
} from '../../lab/meshlite-agent.ts';
import { assertSpread } from './support/spread.ts';

const skip = e2eSkipReason();
const CLUSTER_IP = '10.79.100.10';
const HTTP_CLUSTER_IP = '10.79.100.20';

interface Cluster {
  run: E2eRun;
  node: E2eNode;
  paths: AgentPaths;
  backends: GrpcBackend[];
  pods: StaticPod[];
  publish(): void;
}

/** Agent first (pods must be able to enroll), then three backend pods, a web pod, kube-proxy's rules, the service. */
async function cluster(run: E2eRun, pods: StaticPod[], options: MeshliteOptions = {}): Promise<Cluster & { agentStop: (graceMs?: number) => Promise<{ code: number | null }> }> {
  const paths = agentPaths(run);
  writeStaticFile(paths.staticFile, [], pods);
  const node = await run.createNode({ chain: meshliteChain(run, paths, writePluginWrapper) });
  const agent = await startMeshlite(run, node, paths, options);
  const backendPods = [];
  for (const name of ['echo-a', 'echo-b', 'echo-c']) backendPods.push(await run.createPod(node, { name }));
  const backends = await Promise.all(backendPods.map((pod) => run.startGrpcBackend(pod)));
  const kubeProxy = run.kubeProxy(node);
  await kubeProxy.addService({ name: 'echo', portName: 'grpc', clusterIp: CLUSTER_IP, port: 50051 }, backends.map((b) => ({ ip: b.host.ipv4, port: b.port })));
  const publish = (): void =>
    writeStaticFile(paths.staticFile, [{ name: 'echo', clusterIP: CLUSTER_IP, port: 50051, endpoints: backends.map((b) => `${b.host.ipv4}:${b.port}`) }], pods);
  publish();
  await agent.line((line) => line.includes('static discovery file reloaded'), 10_000);
  return { run, node, paths, backends, pods, publish, agentStop: (graceMs?: number) => agent.stop({ graceMs }) };
}

test('an annotated pod is balanced per request over ONE channel (ClusterIP and pod IP); a plain pod is not; HTTP untouched; the proxy port refuses strangers', { skip: skip ?? false, timeout: 180_000 }, async (t) => {
  const run = await startE2eRun();
  try {
    const pods: StaticPod[] = [
      { name: 'client-on', inject: 'enabled' },
      { name: 'client-off', inject: 'disabled' },
    ];
    // Round-robin: this checks that interception balances every request; p2c-ewma's evenness between pods that share
    // two loaded cores is a statistic (±19% seen here, 26% once in CI) and is tested in explicit mode.
    const { node, backends } = await cluster(run, pods, { balancer: 'round-robin' });
    const web = await run.createPod(node, { name: 'web' });
    const http = await run.startHttpServer(web);
    await run.kubeProxy(node).addService({ name: 'web', portName: 'http', clusterIp: HTTP_CLUSTER_IP, port: 80 }, [{ ip: web.ipv4, port: http.port }]);
    // The pods' IPs come from host-local at CNI ADD: the agent learned client-on's from meshlite's plugin.
    const on = await run.createPod(node, { name: 'client-on', network: 'clients' });
    const off = await run.createPod(node, { name: 'client-off', network: 'clients' });

    // The first connection of a pod enrolled by CNI ADD is already intercepted: the agent relays its RPCs.
    const relayedBefore = await relayedRequests(run, node);
    const first = await run.grpcClient(on, { target: `${CLUSTER_IP}:50051`, count: 30 });
    assert.equal(first.ok, 30);
    assert.equal((await relayedRequests(run, node)) - relayedBefore, 30, 'the agent relayed every RPC of the first connection');

    // The problem, then the fix: the same 3000 RPCs on one channel, from a plain pod and from an annotated one.
    const plain = await run.grpcClient(off, { target: `${CLUSTER_IP}:50051`, count: 300, concurrency: 16 });
    assert.deepEqual(plain.failures, []);
    assert.equal(Object.keys(plain.byBackend).length, 1, `a plain pod's channel reached ${Object.keys(plain.byBackend).join(', ')}`);
    const balanced = await run.grpcClient(on, { target: `${CLUSTER_IP}:50051`, count: 3000, concurrency: 16 }, 120_000);
    assertSpread(balanced, backends, 3000, t);
    // Round-robin makes one pick per request (none fails, so none is sent twice) in turn over the three: exact.
    assert.deepEqual(backends.map((b) => balanced.byBackend[b.id] ?? 0), [1000, 1000, 1000], 'round-robin over one channel');

    // Headless style: dialing one backend pod's IP is balanced over all three too.
    const headless = await run.grpcClient(on, { target: backends[0].address, count: 3000, concurrency: 16 }, 60_000);
    assertSpread(headless, backends, 3000, t);
    assert.deepEqual(backends.map((b) => headless.byBackend[b.id] ?? 0), [1000, 1000, 1000], 'round-robin, dialing a pod IP');

    // Plain HTTP/1.1 on a port that is not gRPC: not intercepted, answered by the web pod itself.
    const page = await run.httpRequest(on, { url: `http://${HTTP_CLUSTER_IP}/hello` });
    assert.equal(page.status, 200);
    assert.equal((JSON.parse(page.body) as { remoteAddress: string }).remoteAddress, on.ipv4, 'straight from the pod, not via the agent');

    // The proxy port itself: refused from a pod that did not opt in, and from another node.
    assert.equal((await run.probeTcp(off.ns, node.ipv4, PROXY_PORT)).outcome, 'refused');
    const other = await run.createNode();
    await run.connectNodes(node, other);
    assert.equal((await run.probeTcp(other.ns, node.ipv4, PROXY_PORT)).outcome, 'refused');
  } finally {
    await run.cleanup();
  }
  assert.deepEqual(run.leftovers(), { namespaces: [], processes: [], strays: [], tempDir: false });
});

test('agent down at CNI ADD, fail-open: the pod starts and works unintercepted; once the agent is back its new connections are balanced', { skip: skip ?? false, timeout: 120_000 }, async () => {
  const run = await startE2eRun();
  try {
    const pods: StaticPod[] = [{ name: 'late', inject: 'enabled' }];
    // What is tested is enrolment after the outage, not the policy's evenness: see MeshliteOptions.balancer.
    const c = await cluster(run, pods, { balancer: 'round-robin' });
    await c.agentStop();
    const late = await run.createPod(c.node, { name: 'late', network: 'clients' });
    // Not enrolled: kube-proxy's single choice, as without meshlite.
    const alone = await run.grpcClient(late, { target: `${CLUSTER_IP}:50051`, count: 100, concurrency: 8 });
    assert.deepEqual(alone.failures, []);
    assert.equal(Object.keys(alone.byBackend).length, 1);

    // The agent comes back; with static discovery it learns the pod's IP from the file (with a cluster, from its watch).
    c.pods[0] = { ...c.pods[0], ip: late.ipv4 };
    c.publish();
    await startMeshlite(run, c.node, c.paths, { balancer: 'round-robin' });
    await waitFor(
      async () => {
        const probe = await run.grpcClient(late, { target: `${CLUSTER_IP}:50051`, count: 30, concurrency: 3 });
        return Object.keys(probe.byBackend).length > 1;
      },
      { timeoutMs: 20_000, intervalMs: 200, message: 'new connections balanced' },
    );
    const balanced = await run.grpcClient(late, { target: `${CLUSTER_IP}:50051`, count: 3000, concurrency: 16 }, 120_000);
    assertSpread(balanced, c.backends, 3000);
    // The probes before it are done: this channel's 3000 are 3000 picks in turn, exactly 1000 each.
    assert.deepEqual(c.backends.map((b) => balanced.byBackend[b.id] ?? 0), [1000, 1000, 1000], 'round-robin after the outage');
  } finally {
    await run.cleanup();
  }
});

test('an upgrade loses nothing: the new agent starts beside the old one on the same port, the old one drains and exits; 0 failed', { skip: skip ?? false, timeout: 120_000 }, async () => {
  const run = await startE2eRun();
  try {
    const c = await cluster(run, [{ name: 'client', inject: 'enabled' }]);
    const client = await run.createPod(c.node, { name: 'client', network: 'clients' });
    // The new agent cannot have seen the pod's CNI ADD: with static discovery the file must carry the pod's IP, as
    // the pod's status does for an agent that watches the API.
    c.pods[0] = { ...c.pods[0], ip: client.ipv4 };
    c.publish();
    // One channel, calls spaced out so that the load spans the whole upgrade.
    let loadDone = false;
    const load = run.grpcClient(client, { target: `${CLUSTER_IP}:50051`, count: 8000, concurrency: 8, intervalMs: 10 }, 100_000);
    void load.finally(() => {
      loadDone = true;
    });
    await waitFor(async () => (await relayedRequests(run, c.node)) > 200, { timeoutMs: 20_000, message: 'load through the old agent' });
    // An upgrade (see docs/architecture.md, Drain and upgrades): the DaemonSet surges, so the new agent, with the old
    // one's flags exactly, binds the same proxy and admin ports (SO_REUSEPORT) and becomes ready first.
    const next = await startMeshlite(run, c.node, c.paths);
    const old = await c.agentStop(30_000);
    assert.equal(old.code, 0, 'the old agent drained and exited on its own');
    assert.equal(loadDone, false, 'the load outlasted the old agent');
    const summary = await load;
    assert.deepEqual(summary.failures, []);
    assert.equal(summary.ok, 8000);
    // The old agent is gone: the shared admin port is the new agent's alone.
    assert.ok((await relayedRequests(run, c.node)) > 0, 'the new agent took over the connection');
    assert.equal(Object.keys(summary.byBackend).length, 3);
    await next.stop({ graceMs: 30_000 });
  } finally {
    await run.cleanup();
  }
});

/**
 * What a dump says, without what changes by itself: `# Generated by …` lines, `[packets:bytes]`, and the seconds a
 * set member has left (fail open's pods).
 */
function normalizedDump(text: string): string {
  return text
    .split('\n')
    .filter((line) => !line.startsWith('#'))
    .map((line) => line.replace(/\[\d+:\d+\]/g, '[0:0]').replace(/^(add \S+ \S+) timeout \d+$/, '$1'))
    .join('\n');
}

async function netfilterState(run: E2eRun, node: E2eNode): Promise<string> {
  const dump = async (file: string, args: string[]): Promise<string> => {
    const process = run.spawn(node.ns, file, args);
    const exit = await process.wait(10_000);
    assert.equal(exit.code, 0, `${file} ${args.join(' ')}: ${process.stderr()}`);
    return normalizedDump(process.stdout());
  };
  return [await dump('iptables-save', []), await dump('ip6tables-save', []), await dump('ipset', ['save'])].join('\n--\n');
}

test('rules and sets stay when the agent stops, its pods expire by themselves (fail open); after `meshlite uninstall` the node namespace is exactly as before the agent', { skip: skip ?? false, timeout: 120_000 }, async () => {
  const run = await startE2eRun();
  try {
    const paths = agentPaths(run);
    const node = await run.createNode();
    await run.kubeProxy(node).addService({ name: 'echo', portName: 'grpc', clusterIp: CLUSTER_IP, port: 50051 }, [{ ip: '10.79.1.9', port: 50051 }]);
    const before = await netfilterState(run, node);
    writeStaticFile(paths.staticFile, [{ name: 'echo', clusterIP: CLUSTER_IP, port: 50051, endpoints: ['10.79.1.9:50051'] }], [
      { name: 'client', ip: '10.79.2.9', inject: 'enabled' },
    ]);
    const agent = await startMeshlite(run, node, paths);
    const installed = await netfilterState(run, node);
    assert.match(installed, /-A PREROUTING .*-j MESHLITE-PREROUTING/);
    assert.match(installed, /add meshlite-pods-v4 10\.79\.2\.9/);
    assert.match(installed, /add meshlite-dsts-v4 10\.79\.100\.10,tcp:50051/);
    // Rules and sets stay (the next agent finds them in place); the pods set's members, no longer refreshed, expire
    // within 2 s, so that opted-in pods reach their Services through kube-proxy while no agent runs.
    await agent.stop();
    await waitFor(async () => !/add meshlite-pods-v4 /.test(await netfilterState(run, node)), { timeoutMs: 5_000, intervalMs: 100, message: 'the pods expired' });
    assert.equal(await netfilterState(run, node), installed.replace(/^add meshlite-pods-v4 .*\n/m, ''), 'rules, sets and destinations kept after the agent stopped');

    const uninstall = run.spawn(node.ns, process.execPath, [new URL('../../agent/main.ts', import.meta.url).pathname, 'uninstall']);
    assert.equal((await uninstall.wait(30_000)).code, 0, uninstall.stderr());
    assert.match(uninstall.stdout(), /removed /);
    assert.equal(await netfilterState(run, node), before);
    // Twice is fine: nothing left to remove.
    const again = run.spawn(node.ns, process.execPath, [new URL('../../agent/main.ts', import.meta.url).pathname, 'uninstall']);
    assert.equal((await again.wait(30_000)).code, 0, again.stderr());
    assert.match(again.stdout(), /nothing of meshlite was installed/);
  } finally {
    await run.cleanup();
  }
});
