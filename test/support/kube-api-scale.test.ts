// The test Kubernetes API server at benchmark scale: 10,000 Services and 11,000 EndpointSlices with 100,000 endpoints load, list and watch in seconds.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import { DiscoveryV1Api, KubeConfig } from '@kubernetes/client-node';
import { startKubeApiServer } from './kube-api-server.ts';

const SERVICES = 10_000;
const SLICES = 11_000;
const ENDPOINTS = 100_000;

it('loads, lists and watches 10,000 Services and 11,000 EndpointSlices (100,000 endpoints) in seconds', async (t) => {
  const server = await startKubeApiServer();
  t.after(() => server.close());
  const started = performance.now();
  for (let i = 0; i < SERVICES; i++) {
    server.apply('services', {
      metadata: { name: `svc-${i}`, namespace: `ns-${i % 50}` },
      spec: { clusterIP: `10.96.${i >> 8}.${i & 255}`, ports: [{ name: 'grpc', port: 50051, appProtocol: 'grpc' }] },
    });
  }
  let endpoint = 0;
  for (let i = 0; i < SLICES; i++) {
    // Spread 100,000 endpoints over 11,000 slices: the first ones get 10, the rest 9.
    const count = Math.min(i < ENDPOINTS - 9 * SLICES ? 10 : 9, ENDPOINTS - endpoint);
    const endpoints = Array.from({ length: count }, () => {
      const n = endpoint++;
      return { addresses: [`10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`], conditions: { ready: true, serving: true, terminating: false } };
    });
    const service = `svc-${i % SERVICES}`;
    server.apply('endpointslices', {
      metadata: { name: `${service}-${i}`, namespace: `ns-${i % SERVICES % 50}`, labels: { 'kubernetes.io/service-name': service } },
      addressType: 'IPv4',
      endpoints,
      ports: [{ name: 'grpc', port: 50051, protocol: 'TCP' }],
    });
  }
  assert.equal(endpoint, ENDPOINTS);
  const loaded = performance.now();

  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(server.kubeconfigPath);
  const full = await kubeConfig.makeApiClient(DiscoveryV1Api).listEndpointSliceForAllNamespaces();
  assert.equal(full.items.length, SLICES);
  assert.equal(full.items.reduce((sum, slice) => sum + (slice.endpoints?.length ?? 0), 0), ENDPOINTS);
  const listed = performance.now();

  const response = await fetch(`${server.url}/api/v1/services?watch=true`, { headers: { Authorization: `Bearer ${server.token}` } });
  const reader = response.body!.getReader();
  let lines = 0;
  while (lines < SERVICES) {
    const { value, done } = await reader.read();
    assert.equal(done, false);
    for (const byte of value!) if (byte === 10) lines++;
  }
  await reader.cancel();
  const watched = performance.now();
  t.diagnostic(`load ${Math.round(loaded - started)} ms, list ${Math.round(listed - loaded)} ms, watch ${Math.round(watched - listed)} ms`);
  // Generous bounds: they catch quadratic work (minutes at this size), not a slow machine.
  assert.ok(loaded - started < 20_000, 'load');
  assert.ok(watched - loaded < 20_000, 'list and watch');
});
