// Without meshlite: kube-proxy balances connections, so one grpc-js channel sends every RPC to the same backend.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { e2eSkipReason, type E2eRun, startE2eRun } from '../../lab/e2e-harness.ts';
import type { GrpcBackend } from '../../lab/grpc-backend-pod.ts';

const skip = e2eSkipReason();
const CLUSTER_IP = '10.79.100.10';
const HTTP_CLUSTER_IP = '10.79.100.20';

function assertNothingLeft(run: E2eRun): void {
  assert.deepEqual(run.leftovers(), { namespaces: [], processes: [], strays: [], tempDir: false });
}

test('baseline: one channel to a ClusterIP lands every RPC on one backend; pod IPs and plain HTTP work', { skip: skip ?? false, timeout: 60_000 }, async () => {
  const run = await startE2eRun();
  try {
    const node = await run.createNode();
    const backendPods = [];
    for (const name of ['echo-a', 'echo-b', 'echo-c']) backendPods.push(await run.createPod(node, { name }));
    const web = await run.createPod(node, { name: 'web' });
    const client = await run.createPod(node, { name: 'client', network: 'clients' });
    assert.match(client.ipv4, /^10\.79\.2\./);
    assert.ok(backendPods.every((pod) => pod.ipv4.startsWith('10.79.1.')));

    const [backends, http] = await Promise.all([
      Promise.all(backendPods.map((pod) => run.startGrpcBackend(pod))),
      run.startHttpServer(web),
    ]);
    const kubeProxy = run.kubeProxy(node);
    const endpoints = backends.map((b: GrpcBackend) => ({ ip: b.host.ipv4, port: b.port }));
    await kubeProxy.addService({ name: 'echo', portName: 'grpc', clusterIp: CLUSTER_IP, port: 50051 }, endpoints);
    await kubeProxy.addService({ name: 'web', portName: 'http', clusterIp: HTTP_CLUSTER_IP, port: 80 }, [
      { ip: web.ipv4, port: http.port },
    ]);

    const [oneChannel, manyChannels, direct, page] = await Promise.all([
      run.grpcClient(client, { target: `${CLUSTER_IP}:50051`, count: 300, concurrency: 10 }),
      run.grpcClient(client, { target: `${CLUSTER_IP}:50051`, count: 30, channels: 30 }),
      Promise.all(backends.map((b) => run.grpcClient(client, { target: b.address, count: 10 }))),
      run.httpRequest(client, { url: `http://${HTTP_CLUSTER_IP}/hello` }),
    ]);

    // The problem meshlite fixes: kube-proxy chose a backend for the one connection, and all 300 requests followed.
    assert.deepEqual(oneChannel.failures, []);
    assert.equal(oneChannel.ok, 300);
    const chosen = Object.keys(oneChannel.byBackend);
    assert.equal(chosen.length, 1, `one channel reached ${chosen.join(', ')}`);
    assert.ok(backends.some((b) => b.id === chosen[0]));
    // The rules do balance: 30 connections all picking one of 3 backends has probability 3 · 3^-30.
    assert.equal(manyChannels.ok, 30);
    assert.deepEqual(Object.keys(manyChannels.byBackend).sort(), ['echo-a', 'echo-b', 'echo-c']);

    assert.deepEqual(
      direct.map((summary) => summary.byBackend),
      backends.map((b) => ({ [b.id]: 10 })),
    );

    assert.equal(page.status, 200);
    assert.equal(page.httpVersion, '1.1');
    const seen = JSON.parse(page.body) as { servedBy: string; url: string; remoteAddress: string };
    assert.equal(seen.servedBy, 'web');
    assert.equal(seen.url, '/hello');
    assert.equal(seen.remoteAddress, client.ipv4, 'routed between bridges, not masqueraded');
  } finally {
    await run.cleanup();
  }
  assertNothingLeft(run);
});
