// The dashboard's heartbeat on a fake clock: a frame at once for the first watcher, one a second while anyone
// watches, rates over the time since the previous frame, nothing at all when nobody watches.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type AgentState, DashboardSampler, type DashboardFrame } from '../../agent/admin/dashboard-sampler.ts';
import { createMetrics } from '../../agent/telemetry/metrics.ts';
import { FakeTimers } from '../support/fake-timers.ts';

const KEY = 'shop/cart:8080';
const AGENT: AgentState = { readiness: { ready: true }, version: '0.1.0', node: 'node-a', rssBytes: 1, eventLoopDelayMs: 0 };

function setup() {
  const clock = new FakeTimers();
  const metrics = createMetrics({ processMetrics: false });
  let readings = 0;
  const sampler = new DashboardSampler({
    clock,
    wallClockMs: () => 1_800_000_000_000 + clock.now(),
    readings: () => {
      readings++;
      return metrics.readings();
    },
    services: () => [{ key: KEY, balancer: 'p2c-ewma', endpoints: [{ address: '10.0.0.1:8080', ready: true, serving: true, terminating: false, eligible: true, inFlight: 0, latencyMs: 1, backingOff: false, ejected: false }] }],
    agent: () => AGENT,
    pods: () => [{ namespace: 'default', name: 'client', ips: ['10.1.0.5'] }],
    events: () => [{ time: 't', level: 'info', component: null, msg: 'meshlite ready', code: null }],
  });
  const handle = metrics.requestMetrics(KEY, '10.0.0.1:8080');
  return { clock, sampler, handle, readings: () => readings };
}

describe('DashboardSampler', () => {
  it('sends a frame at once to the first watcher, then one each second with the rate of that second', () => {
    const { clock, sampler, handle } = setup();
    const frames: DashboardFrame[] = [];
    const stop = sampler.watch((frame) => frames.push(frame));
    assert.equal(frames.length, 1);
    for (let i = 0; i < 30; i++) handle.record(0, 0.001);
    clock.advance(1000);
    assert.equal(frames.length, 2);
    assert.equal(frames[1].intervalS, 1);
    assert.equal(frames[1].services[0].requestsPerSecond, 30);
    assert.equal(frames[1].atMs, 1_800_000_001_000);
    assert.deepEqual(frames[1].agent, AGENT);
    assert.deepEqual(frames[1].pods, [{ namespace: 'default', name: 'client', ips: ['10.1.0.5'] }]);
    assert.deepEqual(frames[1].events.map((event) => event.msg), ['meshlite ready']);
    clock.advance(1000);
    assert.equal(frames[2].services[0].requestsPerSecond, 0, 'nothing in that second');
    stop();
  });

  it('a second watcher gets the latest frame at once and shares the heartbeat; the last one to leave stops it', () => {
    const { clock, sampler, readings } = setup();
    const first: DashboardFrame[] = [];
    const second: DashboardFrame[] = [];
    const stopFirst = sampler.watch((frame) => first.push(frame));
    clock.advance(500);
    const stopSecond = sampler.watch((frame) => second.push(frame));
    assert.equal(second.length, 1);
    assert.equal(second[0], first[0]);
    clock.advance(500);
    assert.deepEqual([first.length, second.length, readings()], [2, 2, 2], 'one reading per second for both');
    stopFirst();
    clock.advance(1000);
    assert.deepEqual([first.length, second.length], [2, 3]);
    stopSecond();
    assert.equal(sampler.watchers, 0);
    assert.equal(clock.activeCount, 0, 'no timer left');
    clock.advance(10_000);
    assert.equal(readings(), 3, 'nothing read while nobody watches');
  });

  it('a one-off frame after a pause has its rates over the whole pause', () => {
    const { clock, sampler, handle } = setup();
    sampler.sample();
    for (let i = 0; i < 50; i++) handle.record(0, 0.001);
    clock.advance(5000);
    const frame = sampler.sample();
    assert.equal(frame.intervalS, 5);
    assert.equal(frame.services[0].requestsPerSecond, 10);
    assert.equal(sampler.latest, frame);
  });
});
