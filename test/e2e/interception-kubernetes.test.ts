// meshlite end to end with Kubernetes discovery: the test API server runs in the node's namespace, pods opt in by
// their own or their namespace's annotation, looked up in the API at CNI ADD, and a flipped annotation takes effect.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { endpointSliceObject, grpcServiceObject } from '../support/kube-api-objects.ts';
import { waitFor } from '../../lab/wait-for.ts';
import { writePluginWrapper } from '../../lab/cni-plugin-wrapper.ts';
import { e2eSkipReason, startE2eRun } from '../../lab/e2e-harness.ts';
import { startKubeApiInNamespace } from './support/kube-api-in-namespace.ts';
import type { GrpcClientSummary } from '../../lab/grpc-client-run.ts';
import { agentPaths, meshliteChain, relayedRequests, startMeshlite } from '../../lab/meshlite-agent.ts';
import { assertSpread } from './support/spread.ts';

const skip = e2eSkipReason();
const CLUSTER_IP = '10.79.100.10';
const NODE_NAME = 'node-a';

function podObject(name: string, namespace: string, inject?: 'enabled' | 'disabled') {
  return {
    metadata: { name, namespace, annotations: inject === undefined ? {} : { 'meshlite.io/inject': inject } },
    spec: { nodeName: NODE_NAME, containers: [{ name: 'app', image: 'app:1' }] },
    status: { phase: 'Pending' },
  };
}

test('Kubernetes discovery: opt-in by pod or namespace annotation decided at CNI ADD, one channel balanced, an annotation flip applies without a restart', { skip: skip ?? false, timeout: 180_000 }, async () => {
  const run = await startE2eRun();
  try {
    const paths = agentPaths(run);
    const node = await run.createNode({ chain: meshliteChain(run, paths, writePluginWrapper) });
    const api = await startKubeApiInNamespace(run, node, join(run.tmpDir, 'kube-control.sock'));
    await api.apply('namespaces', { metadata: { name: 'default' } });
    await api.apply('namespaces', { metadata: { name: 'shop', annotations: { 'meshlite.io/inject': 'enabled' } } });
    await startMeshlite(run, node, paths, { kubernetes: { kubeconfig: api.kubeconfigPath, nodeName: NODE_NAME }, balancer: 'round-robin' });

    // Backends: Pod objects first (a kubelet's view), then the sandboxes, then the Service and its slice.
    const backendPods = [];
    for (const name of ['echo-a', 'echo-b', 'echo-c']) {
      await api.apply('pods', podObject(name, 'default'));
      backendPods.push(await run.createPod(node, { name }));
    }
    const backends = await Promise.all(backendPods.map((pod) => run.startGrpcBackend(pod)));
    await run.kubeProxy(node).addService({ name: 'echo', portName: 'grpc', clusterIp: CLUSTER_IP, port: 50051 }, backends.map((b) => ({ ip: b.host.ipv4, port: b.port })));
    await api.apply('services', grpcServiceObject('echo', { clusterIP: CLUSTER_IP, port: 50051 }));
    await api.apply('endpointslices', endpointSliceObject('echo-x1', 'echo', 50051, backends.map((b) => ({ ip: b.host.ipv4 })), { triggerTimeMs: Date.now() }));

    // Clients: annotated; unannotated; unannotated in an annotated namespace.
    await api.apply('pods', podObject('client-on', 'default', 'enabled'));
    await api.apply('pods', podObject('client-off', 'default'));
    await api.apply('pods', podObject('shopper', 'shop'));
    const on = await run.createPod(node, { name: 'client-on', network: 'clients' });
    const off = await run.createPod(node, { name: 'client-off', network: 'clients' });
    const shopper = await run.createPod(node, { name: 'shopper', namespace: 'shop', network: 'clients' });

    await waitFor(async () => (await run.grpcClient(on, { target: `${CLUSTER_IP}:50051`, count: 1 })).ok === 1, { timeoutMs: 15_000, message: 'the Service reached' });
    const before = await relayedRequests(run, node);
    const first = await run.grpcClient(on, { target: `${CLUSTER_IP}:50051`, count: 30 });
    assert.equal(first.ok, 30);
    assert.equal((await relayedRequests(run, node)) - before, 30, 'the annotated pod was enrolled at CNI ADD');

    // Round-robin makes one pick per request (none fails, so none is sent twice) in turn over the three: each run of
    // 3000 on one channel is exactly 1000 per backend, on top of the ±25% every spread check allows.
    const exact = (summary: GrpcClientSummary): number[] => backends.map((b) => summary.byBackend[b.id] ?? 0);
    const annotated = await run.grpcClient(on, { target: `${CLUSTER_IP}:50051`, count: 3000, concurrency: 16 }, 120_000);
    assertSpread(annotated, backends, 3000);
    assert.deepEqual(exact(annotated), [1000, 1000, 1000], 'round-robin, annotated pod');
    const inShop = await run.grpcClient(shopper, { target: `${CLUSTER_IP}:50051`, count: 3000, concurrency: 16 }, 60_000);
    assertSpread(inShop, backends, 3000);
    assert.deepEqual(exact(inShop), [1000, 1000, 1000], 'round-robin, pod of an annotated namespace');
    const plain = await run.grpcClient(off, { target: `${CLUSTER_IP}:50051`, count: 300, concurrency: 16 });
    assert.deepEqual(plain.failures, []);
    assert.equal(Object.keys(plain.byBackend).length, 1);

    // The pod opts in while it runs: its next connections are balanced, without a restart.
    await api.apply('pods', podObject('client-off', 'default', 'enabled'));
    await waitFor(
      async () => {
        const probe = await run.grpcClient(off, { target: `${CLUSTER_IP}:50051`, count: 30, concurrency: 3 });
        return probe.failures.length === 0 && Object.keys(probe.byBackend).length > 1;
      },
      { timeoutMs: 20_000, intervalMs: 200, message: 'the flipped pod balanced' },
    );
    const flipped = await run.grpcClient(off, { target: `${CLUSTER_IP}:50051`, count: 3000, concurrency: 16 }, 60_000);
    assertSpread(flipped, backends, 3000);
    assert.deepEqual(exact(flipped), [1000, 1000, 1000], 'round-robin, pod that opted in while running');
  } finally {
    await run.cleanup();
  }
  assert.deepEqual(run.leftovers(), { namespaces: [], processes: [], strays: [], tempDir: false });
});
