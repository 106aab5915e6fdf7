// Every thread's balancers and request counts shown as one agent's (/debug/endpoints and the dashboard).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EndpointView, ServiceBalancerView } from '../../agent/balancer/service-balancer.ts';
import { mergeReadings, mergeServices } from '../../agent/workers/thread-views.ts';

function endpoint(address: string, view: Partial<EndpointView> = {}): EndpointView {
  return { address, ready: true, serving: true, terminating: false, eligible: true, ejected: false, inFlight: 0, started: 0, latencyMs: 1, ...view };
}

function service(endpoints: EndpointView[]): ServiceBalancerView {
  return { key: 'default/greeter:50051', balancer: 'p2c-ewma', endpoints };
}

describe('mergeServices', () => {
  it("adds up in-flight and started requests, weighs latency by requests, and shows any thread's ejection", () => {
    const main = [service([endpoint('a:1', { inFlight: 2, started: 10, latencyMs: 1 }), endpoint('b:1', { started: 0 })])];
    const worker = [service([endpoint('a:1', { inFlight: 3, started: 30, latencyMs: 5 }), endpoint('b:1', { eligible: false, ejected: true, inFlight: 1, started: 4, latencyMs: 9 })])];
    const [merged] = mergeServices(main, [worker]);
    assert.deepEqual(merged.endpoints[0], endpoint('a:1', { inFlight: 5, started: 40, latencyMs: 4 }));
    assert.deepEqual(merged.endpoints[1], endpoint('b:1', { eligible: false, ejected: true, inFlight: 1, started: 4, latencyMs: 9 }));
  });

  it("keeps the main thread's list: a service or endpoint a thread does not know yet counts nothing there", () => {
    const main = [service([endpoint('a:1', { inFlight: 1, started: 1 })])];
    assert.deepEqual(mergeServices(main, [[], [service([])]]), main);
  });
});

describe('mergeReadings', () => {
  it('adds up counts by status per endpoint and the duration buckets per service', () => {
    const key = 'default/greeter:50051';
    const merged = mergeReadings([
      [{ key, endpoints: [{ address: 'a:1', byStatus: [3, 0, 1] }], durationBuckets: [1, 2], durationCount: 3 }],
      [{ key, endpoints: [{ address: 'a:1', byStatus: [1, 1, 0] }, { address: 'b:1', byStatus: [5, 0, 0] }], durationBuckets: [4, 0], durationCount: 4 }],
      [],
    ]);
    assert.deepEqual(merged, [
      { key, endpoints: [{ address: 'a:1', byStatus: [4, 1, 1] }, { address: 'b:1', byStatus: [5, 0, 0] }], durationBuckets: [5, 2], durationCount: 7 },
    ]);
  });
});
