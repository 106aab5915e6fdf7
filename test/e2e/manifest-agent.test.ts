// The agent as the rendered DaemonSet starts it (test/e2e/support/kubelet-container.ts: the image's entrypoint, the
// manifest's args, env with the downward API, volumes, read-only root, capabilities, exec probes with the kubelet's
// periods and thresholds), on a lab node, with Kubernetes discovery in-cluster over TLS: an upgrade with identical
// flags, an IPv6-only node, and restarts while the API server is unreachable.

import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { writePluginWrapper } from '../../lab/cni-plugin-wrapper.ts';
import { type E2eRun, e2eSkipReason, startE2eRun } from '../../lab/e2e-harness.ts';
import { META } from '../../lab/grpc-peers.ts';
import { adminGet, meshliteChain, relayedRequests } from '../../lab/meshlite-agent.ts';
import { setNamespaceSysctl } from '../../lab/netns.ts';
import type { E2eNode } from '../../lab/node.ts';
import { waitFor } from '../../lab/wait-for.ts';
import { endpointSliceObject, grpcServiceObject } from '../support/kube-api-objects.ts';
import { renderKustomization } from '../support/kustomize-render.ts';
import { type NamespacedKubeApi, startKubeApiInNamespace } from './support/kube-api-in-namespace.ts';
import { hostPathOf, type KubeletContainer, type KubeletNode, type ManifestPodSpec, startContainer } from './support/kubelet-container.ts';

const skip = e2eSkipReason();
const CLUSTER_IP = '10.79.100.10';
const CLUSTER_IP6 = 'fd79:100::10';
const PORT = 50051;
const METRICS_PORT = 15090;

interface RenderedAgent {
  namespace: string;
  spec: ManifestPodSpec;
  /** The agent container's env value, as written in the manifest. */
  env(name: string): string;
}

async function renderedAgent(): Promise<RenderedAgent> {
  const objects = await renderKustomization(new URL('../../manifests/', import.meta.url));
  const daemonSet = objects.find((o) => o.kind === 'DaemonSet' && o.metadata.name === 'meshlite');
  assert.ok(daemonSet !== undefined, 'the install renders the meshlite DaemonSet');
  const spec = (daemonSet.spec as { template: { spec: ManifestPodSpec } }).template.spec;
  const agent = spec.containers.find((c) => c.name === 'agent');
  assert.ok(agent !== undefined);
  return {
    namespace: daemonSet.metadata.namespace ?? 'default',
    spec,
    env: (name) => {
      const value = agent.env?.find((e) => e.name === name)?.value;
      assert.ok(value !== undefined, `the agent's env sets ${name}`);
      return value;
    },
  };
}

interface ManifestNode {
  run: E2eRun;
  node: E2eNode;
  kubelet: KubeletNode;
  agent: RenderedAgent;
  api: NamespacedKubeApi;
  /** Starts the agent container of a pod of the DaemonSet (a new pod, or the same pod's container again). */
  startAgent(podName: string): KubeletContainer;
  /** The client pod, created as the kubelet does once its Pod object exists, then given its IPs in the status. */
  clientPod(name: string): Promise<Awaited<ReturnType<E2eRun['createPod']>>>;
}

/** A node whose host paths live under the run's directory, the test API (HTTPS) in it, the CNI chain to the agent's socket. */
async function manifestNode(run: E2eRun, options: { ipv6Only?: boolean } = {}): Promise<ManifestNode> {
  const agent = await renderedAgent();
  const root = join(run.tmpDir, 'node-host');
  // The CNI plugin runs on the host: it reaches the agent's socket where its hostPath volume puts it.
  const cniSocket = hostPathOf(agent.spec, 'agent', agent.env('MESHLITE_CNI_SOCKET'), root);
  const node = await run.createNode({ dualStack: options.ipv6Only === true, chain: meshliteChain(run, { staticFile: '', cniSocket }, writePluginWrapper) });
  const hostIPs = options.ipv6Only === true ? [node.ipv6 ?? assert.fail('a dual-stack node')] : [node.ipv4];
  const kubelet: KubeletNode = { ns: node.ns, name: node.name, hostIPs, root };
  const api = await startKubeApiInNamespace(run, node, join(run.tmpDir, 'kube-control.sock'), { tls: true });
  const inCluster = api.inCluster ?? assert.fail('the API speaks HTTPS');
  await api.apply('namespaces', { metadata: { name: 'default' } });
  await api.apply('namespaces', { metadata: { name: agent.namespace } });
  const podObject = (name: string, ips: string[] = []) => ({
    metadata: { name, namespace: 'default', annotations: { 'meshlite.io/inject': 'enabled' } },
    spec: { nodeName: node.name, containers: [{ name: 'app', image: 'app:1' }] },
    status: ips.length === 0 ? { phase: 'Pending' } : { phase: 'Running', podIP: ips[0], podIPs: ips.map((ip) => ({ ip })) },
  });
  return {
    run,
    node,
    kubelet,
    agent,
    api,
    startAgent: (podName) => startContainer(run, kubelet, { pod: { name: podName, namespace: agent.namespace, spec: agent.spec }, container: 'agent', api: inCluster }),
    clientPod: async (name) => {
      await api.apply('pods', podObject(name));
      const pod = await run.createPod(node, { name, network: 'clients' });
      await api.apply('pods', podObject(name, [pod.ipv4, ...(pod.ipv6 === undefined ? [] : [pod.ipv6])]));
      return pod;
    },
  };
}

/** Three echo backends behind one gRPC Service: kube-proxy's rules in the node, the Service and slice in the API. */
async function echoService(m: ManifestNode, family: 'IPv4' | 'IPv6' = 'IPv4') {
  const pods = [];
  for (const name of ['echo-a', 'echo-b', 'echo-c']) pods.push(await m.run.createPod(m.node, { name }));
  const backends = await Promise.all(pods.map((pod) => m.run.startGrpcBackend(pod, { bind: family === 'IPv6' ? 'any' : 'ipv4' })));
  const ips = backends.map((b) => (family === 'IPv6' ? (b.host.ipv6 ?? assert.fail('an IPv6 pod')) : b.host.ipv4));
  const clusterIP = family === 'IPv6' ? CLUSTER_IP6 : CLUSTER_IP;
  await m.run.kubeProxy(m.node).addService({ name: 'echo', portName: 'grpc', clusterIp: clusterIP, port: PORT }, ips.map((ip) => ({ ip, port: PORT })));
  const service = grpcServiceObject('echo', { clusterIP, port: PORT });
  (service.spec as Record<string, unknown>).ipFamilies = [family];
  await m.api.apply('services', service);
  const slice = endpointSliceObject('echo-x1', 'echo', PORT, ips.map((ip) => ({ ip })));
  slice.addressType = family;
  await m.api.apply('endpointslices', slice);
  return { backends, target: family === 'IPv6' ? `[${CLUSTER_IP6}]:${PORT}` : `${CLUSTER_IP}:${PORT}` };
}

/** Effective capabilities of a process, as /proc says (hex mask). */
function effectiveCapabilities(pid: number): bigint {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('CapEff:'));
  return BigInt(`0x${line?.split(/\s+/)[1] ?? '0'}`);
}
const CAP_NET_ADMIN = 12n;
const CAP_NET_RAW = 13n;

/** GETs `url` every 100 ms from the node's namespace until `stopFile` exists; counts answers that were not 200. */
function pollFromNode(m: ManifestNode, url: string, stopFile: string) {
  const script = `
    const [url, stopFile] = process.argv.slice(1);
    const { existsSync } = require('node:fs');
    const counts = { ok: 0, failed: 0, firstFailure: null };
    (async () => {
      const deadline = Date.now() + 170000;
      while (!existsSync(stopFile) && Date.now() < deadline) {
        try {
          const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
          await response.text();
          if (response.status === 200) counts.ok++; else { counts.failed++; counts.firstFailure ??= 'HTTP ' + response.status; }
        } catch (error) { counts.failed++; counts.firstFailure ??= String(error.cause ?? error); }
        await new Promise((r) => setTimeout(r, 100));
      }
      process.stdout.write(JSON.stringify(counts) + '\\n');
    })();`;
  const poller = m.run.spawn(m.node.ns, process.execPath, ['-e', script, url, stopFile]);
  return {
    stop: async (): Promise<{ ok: number; failed: number; firstFailure: string | null }> => {
      writeFileSync(stopFile, '');
      await poller.wait(30_000);
      return JSON.parse(poller.stdout().trim().split('\n').pop() ?? '{}');
    },
  };
}

function assertNoRestarts(container: KubeletContainer, name: string): void {
  assert.deepEqual(container.probes.restarts, [], `${name}: no startup or liveness probe failed past its threshold`);
}

test('upgrade from the manifest, identical flags: 0 of 12000 unary RPCs lost, server streams in flight complete, the new agent ready before the old exits, /metrics on the node IP answers throughout', { skip: skip ?? false, timeout: 240_000 }, async (t: TestContext) => {
  const run = await startE2eRun();
  try {
    const m = await manifestNode(run);
    // What README's Upgrade asks of a node: the kernel hands connections queued on a closing listener to the next
    // one of its SO_REUSEPORT group (the agent cannot set it from its container, whose /proc/sys is read-only).
    await setNamespaceSysctl(m.node.ns, 'net.ipv4.tcp_migrate_req', '1');
    const old = m.startAgent('meshlite-old');
    await waitFor(() => old.probes.ready, { timeoutMs: 60_000, intervalMs: 100, message: 'the first agent ready (its readiness probe)' });
    const caps = effectiveCapabilities(old.process.pid);
    assert.equal(caps, (1n << CAP_NET_ADMIN) | (1n << CAP_NET_RAW), `the agent runs with NET_ADMIN and NET_RAW only (CapEff ${caps.toString(16)})`);
    const { backends, target } = await echoService(m);
    const client = await m.clientPod('client');
    await waitFor(async () => (await run.grpcClient(client, { target, count: 1 })).ok === 1, { timeoutMs: 20_000, message: 'the Service reached' });

    const metricsUrl = `http://${m.node.ipv4}:${METRICS_PORT}/metrics`;
    const metrics = pollFromNode(m, metricsUrl, join(run.tmpDir, 'metrics-poll.stop'));
    let loadDone = false;
    // Paced to last at least 30 s however fast the machine (4 workers, 10 ms between calls, 12,000 calls): longer than
    // the old agent lives after the streams open (their 20 s, then its exit).
    const load = run.grpcClient(client, { target, count: 12_000, concurrency: 4, intervalMs: 10, timeoutMs: 5_000 }, 200_000);
    void load.finally(() => {
      loadDone = true;
    });
    await waitFor(async () => (await relayedRequests(run, m.node)) > 300, { timeoutMs: 30_000, message: 'load through the first agent' });
    // Server streams opened through the first agent alone: each waits 20 s at the backend before its 50 messages,
    // so they are still in flight when the old agent gets SIGTERM, and complete during its drain (25 s at most).
    let streamsDone = false;
    const streams = run.grpcClient(client, { target, count: 8, concurrency: 8, serverStream: { messages: 50, size: 64 }, metadata: { [META.delayMs]: '20000' }, timeoutMs: 60_000 }, 120_000);
    void streams.finally(() => {
      streamsDone = true;
    });
    await waitFor(async () => /^meshlite_downstream_connections(\{[^}]*\})? ([2-9]|\d\d+)$/m.test(await adminGet(run, m.node, '/metrics')), { timeoutMs: 20_000, message: 'the streams connected to the first agent' });

    // The DaemonSet's surge: a new pod, same spec, same node; the old pod is deleted once the new one is ready.
    const startedAt = Date.now();
    const next = m.startAgent('meshlite-new');
    await waitFor(() => next.probes.ready, { timeoutMs: 60_000, intervalMs: 100, message: 'the new agent ready (its readiness probe)' });
    const readyAt = next.probes.readySinceMs ?? assert.fail('ready');
    assert.equal(streamsDone, false, 'the streams are still in flight when the old agent gets SIGTERM');
    const exit = await old.terminate();
    const oldExitedAt = Date.now();
    assert.deepEqual(exit, { code: 0, signal: null }, 'the old agent drained and exited on its own');
    assert.ok(readyAt < oldExitedAt, 'the new agent was ready before the old one exited');
    assert.equal(loadDone, false, 'the load outlasted the old agent');

    const [summary, streamed] = await Promise.all([load, streams]);
    const scrapes = await metrics.stop();
    t.diagnostic(`new agent ready ${readyAt - startedAt} ms after its start; old agent exited ${oldExitedAt - readyAt} ms later; unary ${summary.ok}/${summary.count} in ${summary.durationMs} ms; streams ${streamed.ok}/${streamed.count}; /metrics on the node IP ${scrapes.ok} ok, ${scrapes.failed} failed (first: ${scrapes.firstFailure})`);
    assert.deepEqual(summary.failures, []);
    assert.equal(summary.ok, 12_000);
    assert.deepEqual(streamed.failures, [], 'every server stream in flight completed, every message in order');
    assert.equal(streamed.ok, 8);
    assert.equal(scrapes.failed, 0, `/metrics on ${metricsUrl} answered throughout (first failure: ${scrapes.firstFailure})`);
    assert.ok(scrapes.ok > 50, `scraped ${scrapes.ok} times`);
    assert.equal(Object.keys(summary.byBackend).length, backends.length, 'balanced over every backend');
    const relayedByNext = await relayedRequests(run, m.node);
    assert.ok(relayedByNext > 0, 'the new agent relays');
    assert.ok(!old.process.stdout().includes('ML_LISTENER_MIGRATION_OFF'), 'the agent found tcp_migrate_req on');
    assertNoRestarts(old, 'old agent');
    assertNoRestarts(next, 'new agent');
    assert.deepEqual(await next.terminate(), { code: 0, signal: null });
  } finally {
    await run.cleanup();
  }
  assert.deepEqual(run.leftovers(), { namespaces: [], processes: [], strays: [], tempDir: false });
});

test('IPv6-only node, from the manifest: the agent starts, scrapes on [node IPv6]:15090, and balances an opted-in pod over an IPv6 ClusterIP', { skip: skip ?? false, timeout: 180_000 }, async () => {
  const run = await startE2eRun();
  try {
    const m = await manifestNode(run, { ipv6Only: true });
    const agent = m.startAgent('meshlite-v6');
    await waitFor(() => agent.probes.ready, { timeoutMs: 60_000, intervalMs: 100, message: 'the agent ready (its readiness probe)' });
    const { backends, target } = await echoService(m, 'IPv6');
    const client = await m.clientPod('client');
    await waitFor(async () => (await run.grpcClient(client, { target, count: 1 })).ok === 1, { timeoutMs: 20_000, message: 'the Service reached' });
    const before = await relayedRequests(run, m.node);
    const summary = await run.grpcClient(client, { target, count: 300, concurrency: 8 }, 60_000);
    assert.deepEqual(summary.failures, []);
    assert.equal((await relayedRequests(run, m.node)) - before, 300, 'every RPC relayed by the agent');
    assert.equal(Object.keys(summary.byBackend).length, backends.length, 'balanced over every backend');
    const scrape = run.spawn(m.node.ns, 'curl', ['-fsS', '--max-time', '5', `http://[${m.kubelet.hostIPs[0]}]:${METRICS_PORT}/metrics`]);
    assert.equal((await scrape.wait(10_000)).code, 0, scrape.stderr());
    assert.match(scrape.stdout(), /^meshlite_requests_total\{/m);
    // The dashboard's view of the node: interception ready with the pod and the Service's destinations.
    const frame = JSON.parse(await adminGet(run, m.node, '/dashboard/data')) as { agent: { interception: { state: string; sets: Record<string, number> } }; pods: Array<{ name: string }> };
    assert.equal(frame.agent.interception.state, 'ready');
    assert.equal(frame.agent.interception.sets['meshlite-pods-v6'], 1);
    assert.ok((frame.agent.interception.sets['meshlite-dsts-v6'] ?? 0) >= 1, JSON.stringify(frame.agent.interception));
    assert.deepEqual(frame.pods.map((pod) => pod.name), ['client']);
    // This node left tcp_migrate_req at 0, and the container's /proc/sys is read-only: the agent says so, with its code.
    assert.match(agent.process.stdout(), /"code":"ML_LISTENER_MIGRATION_OFF","err":\{"message":"EROFS[^"]*"\}/);
    assertNoRestarts(agent, 'agent');
  } finally {
    await run.cleanup();
  }
  assert.deepEqual(run.leftovers(), { namespaces: [], processes: [], strays: [], tempDir: false });
});

test('API unreachable, from the manifest: a first start is live and says why it is not ready; an agent that synced, SIGKILLed and restarted during the outage serves from its persisted state within 5 s, then reconciles', { skip: skip ?? false, timeout: 180_000 }, async (t: TestContext) => {
  const run = await startE2eRun();
  try {
    const m = await manifestNode(run);
    await m.api.stop();
    const spawnedAt = Date.now();
    const first = m.startAgent('meshlite-a');
    await waitFor(() => first.probes.startedAtMs !== null, { timeoutMs: 30_000, intervalMs: 50, message: 'the startup probe passed' });
    const healthAfterMs = (first.probes.startedAtMs ?? 0) - spawnedAt;
    const notReady = await first.exec(['curl', '-sS', '--unix-socket', m.agent.env('MESHLITE_PROBE_SOCKET'), 'http://agent/readyz'], 10_000);
    assert.equal(notReady.code, 0, notReady.stderr);
    const body = JSON.parse(notReady.stdout) as { ready: boolean; reason: string };
    assert.equal(body.ready, false);
    assert.match(body.reason, /^(discovery syncing|starting)/);
    assert.equal(first.probes.ready, false);

    await m.api.restart();
    await waitFor(() => first.probes.ready, { timeoutMs: 60_000, intervalMs: 100, message: 'ready once the API answered' });
    const { target } = await echoService(m);
    const client = await m.clientPod('client');
    await waitFor(async () => (await run.grpcClient(client, { target, count: 1 })).ok === 1, { timeoutMs: 20_000, message: 'the Service reached' });
    const stateFile = hostPathOf(m.agent.spec, 'agent', m.agent.env('MESHLITE_STATE_FILE'), m.kubelet.root);
    await waitFor(() => existsSync(stateFile) && readFileSync(stateFile, 'utf8').includes(CLUSTER_IP), { timeoutMs: 20_000, message: 'the view persisted on the node' });

    // The container dies; the API is unreachable when the kubelet starts it again (same pod, same volumes).
    await first.process.stop({ signal: 'SIGKILL' });
    await m.api.stop();
    const restartedAt = Date.now();
    const again = m.startAgent('meshlite-a');
    const relayedBy = async (): Promise<number> => relayedRequests(run, m.node);
    await waitFor(async () => (await relayedBy()) >= 0, { timeoutMs: 30_000, intervalMs: 50, message: 'the restarted agent answers on its admin port' });
    // When the first RPC relayed by the restarted agent succeeded, by the client's own clock (not its process's exit).
    let servedAtMs = 0;
    await waitFor(
      async () => {
        const before = await relayedBy();
        const probe = await run.grpcClient(client, { target, count: 3, concurrency: 3, timeoutMs: 2_000, timeline: true });
        servedAtMs = probe.timeline?.lastOkAtMs ?? 0;
        return probe.ok === 3 && (await relayedBy()) - before === 3;
      },
      { timeoutMs: 30_000, intervalMs: 50, message: 'RPCs relayed by the restarted agent' },
    );
    const servingAfterMs = servedAtMs - restartedAt;
    const timeline = again.process
      .stdout()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { time: string; msg: string })
      .map((entry) => `+${Date.parse(entry.time) - restartedAt} ms ${entry.msg}`);
    t.diagnostic(`the restarted agent's log: ${timeline.join('; ')}`);
    t.diagnostic(`API unreachable: the startup probe (/healthz) passed ${healthAfterMs} ms after the first start; the restarted agent relayed from its persisted state ${servingAfterMs} ms after its start`);
    assert.ok(servingAfterMs <= 5_000, `served from the persisted state within 5 s (${servingAfterMs} ms)`);

    // The API returns: the agent reconciles and stays ready.
    await m.api.restart();
    await waitFor(() => again.process.stdout().includes('"msg":"Kubernetes discovery synced"'), { timeoutMs: 30_000, message: 'reconciled with the API' });
    await waitFor(() => again.probes.ready, { timeoutMs: 30_000, intervalMs: 100, message: 'ready' });
    const after = await run.grpcClient(client, { target, count: 30, concurrency: 3 });
    assert.deepEqual(after.failures, []);
    assertNoRestarts(first, 'first run');
    assertNoRestarts(again, 'restarted agent');
  } finally {
    await run.cleanup();
  }
  assert.deepEqual(run.leftovers(), { namespaces: [], processes: [], strays: [], tempDir: false });
});
