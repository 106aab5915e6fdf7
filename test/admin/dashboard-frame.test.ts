// The dashboard's per-service frame: rates, statuses, quantiles from histogram differences, shares, spread and states.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type BalancedService, endpointDisplayState, interceptedPods, quantileMs, serviceFrames } from '../../agent/admin/dashboard-frame.ts';
import { createMetrics, REQUEST_DURATION_BUCKETS } from '../../agent/telemetry/metrics.ts';

const KEY = 'shop/cart:8080';
const endpoint = (address: string, fields: Partial<BalancedService['endpoints'][number]> = {}) => ({
  address,
  ready: true,
  serving: true,
  terminating: false,
  eligible: true,
  inFlight: 0,
  latencyMs: 1,
  backingOff: false,
  ejected: false,
  ...fields,
});

describe('quantileMs', () => {
  it('interpolates inside the bucket the rank falls in, as histogram_quantile does', () => {
    const counts = REQUEST_DURATION_BUCKETS.map((_, i) => (i === 1 ? 10 : 0)); // all in (0.5 ms, 1 ms]
    assert.equal(quantileMs(REQUEST_DURATION_BUCKETS, counts, 10, 0.5), 0.75);
    assert.equal(quantileMs(REQUEST_DURATION_BUCKETS, counts, 10, 1), 1);
    const spread = REQUEST_DURATION_BUCKETS.map((_, i) => (i === 0 ? 50 : i === 4 ? 50 : 0)); // 50 ≤ 0.5 ms, 50 in (5, 10] ms
    assert.equal(quantileMs(REQUEST_DURATION_BUCKETS, spread, 100, 0.5), 0.5);
    assert.ok(Math.abs((quantileMs(REQUEST_DURATION_BUCKETS, spread, 100, 0.99) ?? 0) - 9.9) < 1e-9);
  });

  it('is null without observations, and the last bound when the rank is past every bucket (+Inf)', () => {
    assert.equal(quantileMs(REQUEST_DURATION_BUCKETS, [], 0, 0.5), null);
    assert.equal(quantileMs(REQUEST_DURATION_BUCKETS, REQUEST_DURATION_BUCKETS.map(() => 0), 3, 0.5), 30_000);
  });
});

describe('serviceFrames', () => {
  it('per interval: rate, statuses, success rate, quantiles, shares against the even share, and the spread', () => {
    const metrics = createMetrics({ processMetrics: false });
    const a = metrics.requestMetrics(KEY, '10.0.0.1:8080');
    const b = metrics.requestMetrics(KEY, '10.0.0.2:8080');
    const c = metrics.requestMetrics(KEY, '10.0.0.3:8080');
    a.record(0, 0.002);
    const before = metrics.readings();
    for (let i = 0; i < 100; i++) a.record(0, 0.002);
    for (let i = 0; i < 98; i++) b.record(0, 0.002);
    b.record(14, 0.002);
    b.record(14, 0.002);
    for (let i = 0; i < 50; i++) c.record(0, 0.002);
    const services: BalancedService[] = [{ key: KEY, balancer: 'p2c-ewma', endpoints: [endpoint('10.0.0.1:8080'), endpoint('10.0.0.2:8080', { inFlight: 3 }), endpoint('10.0.0.3:8080')] }];
    const [frame] = serviceFrames(before, metrics.readings(), services, 2);
    assert.equal(frame.requestsPerSecond, 125);
    assert.deepEqual(frame.byStatus, { '0': 248, '14': 2 });
    assert.equal(frame.successRate, 248 / 250);
    assert.ok(frame.p50Ms !== null && frame.p50Ms > 1 && frame.p50Ms <= 2.5, `p50 ${frame.p50Ms}`);
    assert.deepEqual(
      frame.endpoints.map((e) => [e.address, e.requests, e.share, e.inFlight, e.state]),
      [
        ['10.0.0.1:8080', 100, 0.4, 0, 'ready'],
        ['10.0.0.2:8080', 100, 0.4, 3, 'ready'],
        ['10.0.0.3:8080', 50, 0.2, 0, 'ready'],
      ],
    );
    assert.deepEqual({ namespace: frame.namespace, name: frame.name, port: frame.port, balancer: frame.balancer }, { namespace: 'shop', name: 'cart', port: '8080', balancer: 'p2c-ewma' });
    assert.equal(frame.evenShare, 1 / 3);
    assert.equal(frame.spread, 2);
    assert.equal(frame.idleReady, 0);
    assert.deepEqual(frame.endpointsByState, { ready: 3, 'backing off': 0, ejected: 0, draining: 0, terminating: 0, 'not ready': 0 });
  });

  it('draining and backing-off endpoints are out of the even share and the spread; a ready one that got nothing is counted idle, with no spread', () => {
    const metrics = createMetrics({ processMetrics: false });
    for (let i = 0; i < 10; i++) metrics.requestMetrics(KEY, '10.0.0.1:8080').record(0, 0.001);
    for (let i = 0; i < 5; i++) metrics.requestMetrics(KEY, '10.0.0.2:8080').record(0, 0.001);
    const services: BalancedService[] = [
      {
        key: KEY,
        balancer: 'round-robin',
        endpoints: [endpoint('10.0.0.1:8080'), endpoint('10.0.0.2:8080', { eligible: false, terminating: true }), endpoint('10.0.0.3:8080'), endpoint('10.0.0.4:8080', { eligible: false, ready: false, serving: false }), endpoint('10.0.0.5:8080', { backingOff: true })],
      },
    ];
    const [frame] = serviceFrames(null, metrics.readings(), services, 1);
    assert.deepEqual(frame.endpoints.map((e) => e.state), ['ready', 'draining', 'ready', 'not ready', 'backing off']);
    assert.deepEqual(frame.endpointsByState, { ready: 2, 'backing off': 1, ejected: 0, draining: 1, terminating: 0, 'not ready': 1 });
    assert.equal(frame.evenShare, 1 / 2);
    assert.equal(frame.idleReady, 1);
    assert.equal(frame.spread, null);
  });

  it('a service without requests: no rate, shares, success rate, quantiles or spread', () => {
    const [frame] = serviceFrames(null, [], [{ key: KEY, balancer: 'p2c-ewma', endpoints: [endpoint('10.0.0.1:8080'), endpoint('10.0.0.2:8080')] }], 1);
    assert.equal(frame.requestsPerSecond, 0);
    assert.deepEqual(frame.byStatus, {});
    assert.deepEqual([frame.successRate, frame.p50Ms, frame.p99Ms, frame.spread], [null, null, null, null]);
    assert.deepEqual(frame.endpoints.map((e) => e.share), [null, null]);
    assert.equal(frame.idleReady, 0);
  });

  it('display states follow the picker and the endpoint conditions', () => {
    assert.equal(endpointDisplayState(endpoint('x')), 'ready');
    assert.equal(endpointDisplayState(endpoint('x', { eligible: false, terminating: true, serving: true })), 'draining');
    assert.equal(endpointDisplayState(endpoint('x', { backingOff: true })), 'backing off');
    assert.equal(endpointDisplayState(endpoint('x', { eligible: false, ejected: true })), 'ejected');
    assert.equal(endpointDisplayState(endpoint('x', { eligible: false, terminating: true, serving: false })), 'terminating');
    assert.equal(endpointDisplayState(endpoint('x', { eligible: false })), 'not ready');
    // A pool that backs off matters only while the endpoint is in the picker; out of it, its conditions say it.
    assert.equal(endpointDisplayState(endpoint('x', { eligible: false, terminating: true, serving: true, backingOff: true })), 'draining');
  });
});

describe('interceptedPods', () => {
  it('one entry per pod with every IP it is enrolled under, sorted by namespace and name', () => {
    const enrolled = new Map([
      ['10.1.0.7', { namespace: 'shop', name: 'cart-0' }],
      ['10.1.0.5', { namespace: 'default', name: 'client' }],
      ['fd00::5', { namespace: 'default', name: 'client' }],
    ]);
    assert.deepEqual(interceptedPods(enrolled), [
      { namespace: 'default', name: 'client', ips: ['10.1.0.5', 'fd00::5'] },
      { namespace: 'shop', name: 'cart-0', ips: ['10.1.0.7'] },
    ]);
  });
});
