// The service index at initial-sync scale: 10,000 Services (1,000 gRPC), 100,000 endpoints in 11,000 slices.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EndpointSliceRecord, ServiceRecord } from '../../agent/discovery/kube-objects.ts';
import { grpcPort, indexUnderTest, serviceRecord, sliceRecord } from '../support/service-records.ts';

const SERVICES = 10_000;
const ENDPOINTS_PER_SERVICE = 10;

function ip(prefix: number, n: number): string {
  return `${prefix}.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}

/** Every 10th Service is gRPC; every 20th and every 20th + 5 is split over two slices (half of those gRPC). */
function cluster(): { services: ServiceRecord[]; slices: EndpointSliceRecord[] } {
  const services: ServiceRecord[] = [];
  const slices: EndpointSliceRecord[] = [];
  let endpoint = 0;
  for (let i = 0; i < SERVICES; i++) {
    const name = `svc-${i}`;
    const ports = i % 10 === 0 ? [grpcPort()] : [];
    services.push(serviceRecord(name, { ports, clusterIPs: [ip(172, i)] }));
    const ips = Array.from({ length: ENDPOINTS_PER_SERVICE }, () => ip(10, endpoint++));
    const split = i % 20 === 0 || i % 20 === 5;
    for (const [part, listed] of (split ? [ips.slice(0, 5), ips.slice(5)] : [ips]).entries()) {
      slices.push(sliceRecord(`${name}-${part}`, name, listed));
    }
  }
  return { services, slices };
}

test('10,000 Services and 100,000 endpoints in 11,000 slices, in mixed arrival order', (t) => {
  const { services, slices } = cluster();
  assert.equal(slices.length, 11_000);
  assert.equal(slices.reduce((n, s) => n + s.endpoints.length, 0), 100_000);
  const { registry, index, updates } = indexUnderTest();
  // With --expose-gc the heap figure is the index's and registry's retained size; without it, garbage included.
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const started = performance.now();
  let changedBySlices = 0;
  // The first half of the slices come before every Service, the rest after: both paths at full size.
  const half = slices.length / 2;
  for (const slice of slices.slice(0, half)) changedBySlices += index.applySlice(slice).length;
  for (const service of services) index.applyService(service);
  for (const slice of slices.slice(half)) changedBySlices += index.applySlice(slice).length;
  const elapsedMs = performance.now() - started;
  gc?.();
  const heapMiB = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
  t.diagnostic(`indexed in ${elapsedMs.toFixed(0)} ms; heap +${heapMiB.toFixed(1)} MiB (records built beforehand excluded)`);

  assert.equal(registry.size, 1_000);
  assert.deepEqual(index.describe(), {
    services: 10_000,
    grpcServices: 1_000,
    grpcServicePorts: 1_000,
    slices: 11_000,
    slicesWaiting: 0,
    invalidServices: 0,
    servicesOnLastGood: 0,
    invalidSlices: 0,
    slicesOnLastGood: 0,
  });
  let endpoints = 0;
  for (const key of registry.keys()) endpoints += registry.get(key)?.endpoints.length ?? 0;
  assert.equal(endpoints, 1_000 * ENDPOINTS_PER_SERVICE);
  // One reset per gRPC Service, plus one add per endpoint that arrived after its Service.
  const resets = updates.filter((u) => u.type === 'reset').length;
  const adds = updates.filter((u) => u.type === 'add').length;
  assert.equal(resets, 1_000);
  assert.equal(updates.length, resets + adds);
  assert.ok(adds < endpoints, `${adds} adds`);
  // Only slices of gRPC Services that arrived after their Service reported a change.
  assert.ok(changedBySlices > 0 && changedBySlices <= 1_100, `${changedBySlices} changed keys`);
  assert.equal(registry.lookupByAddress('172.0.0.10', 50051)?.key, 'default/svc-10:50051');
  assert.equal(registry.lookupByAddress(ip(10, 10 * ENDPOINTS_PER_SERVICE + 3), 50051)?.key, 'default/svc-10:50051');
  assert.equal(registry.lookupByAddress(ip(10, 11 * ENDPOINTS_PER_SERVICE + 3), 50051), undefined);
});
