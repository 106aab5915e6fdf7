// Outlier ejection through a service's balancer: failures in a row eject an endpoint from the picker, its probation
// doubles with each ejection, it comes back on trial (one failure sends it out again, one answer clears it), and never
// more than half of a service's endpoints are out — a service with one endpoint never loses it.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EndpointLoad, LoadOptions } from '../../agent/balancer/endpoint-load.ts';
import { DEFAULT_OUTLIER_POLICY, OutlierEjection, type OutlierPolicy } from '../../agent/balancer/outlier-ejection.ts';
import { policyByName } from '../../agent/balancer/policies.ts';
import { ServiceBalancer } from '../../agent/balancer/service-balancer.ts';
import type { EndpointSpec } from '../../agent/registry/endpoint.ts';
import { FakeClock } from '../support/balancer-simulation.ts';
import { FakeTimers } from '../support/fake-timers.ts';
import { seededRandomInt } from '../support/seeded-random.ts';

const KEY = 'default/greeter:50051';
const MS = 1e6;
const POLICY: OutlierPolicy = { consecutiveFailures: 3, baseEjectionMs: 1_000, maxEjectionMs: 3_000, forgetAfterMs: 10_000, maxEjectedFraction: 0.5 };

const ep = (n: number): EndpointSpec => ({ address: `10.0.0.${n}:50051`, host: `10.0.0.${n}`, port: 50051, ready: true, serving: true, terminating: false });

function setup(endpoints: number[]) {
  const clock = new FakeClock();
  const timers = new FakeTimers();
  const load: LoadOptions = { now: clock.now, latestSample: null, decayNs: 10_000 * MS, defaultRttNs: 1 * MS, failurePenaltyNs: 1000 * MS };
  const deps = { randomInt: seededRandomInt(7), time: clock.cell };
  const ejections: string[] = [];
  const balancer = new ServiceBalancer(
    KEY,
    { policyFor: () => policyByName('round-robin', deps), load, outliers: (events) => new OutlierEjection(POLICY, timers, events) },
    { onEndpointEjected: (l, key, forMs, failures) => ejections.push(`${l.address} ${key} ${forMs} ms after ${failures}`) },
  );
  balancer.apply({ type: 'reset', key: KEY, service: { key: KEY, namespace: 'default', name: 'greeter', port: 50051, clusterIPs: [], balancer: null, endpoints: endpoints.map(ep) } });
  const loadOf = (n: number) => balancer.loadOf(`10.0.0.${n}:50051`) as EndpointLoad;
  const fail = (n: number, times = 1) => {
    for (let i = 0; i < times; i++) {
      loadOf(n).onStart();
      loadOf(n).onFailure();
    }
  };
  const answer = (n: number) => {
    loadOf(n).onStart();
    loadOf(n).onFinish(1 * MS);
  };
  /** Addresses the picker hands out over many picks. */
  const picked = () => {
    const seen = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const pick = balancer.picker.pick();
      if (pick !== null) seen.add(pick.address.replace(/^10\.0\.0\.(\d+):50051$/, '$1'));
    }
    return [...seen].sort();
  };
  const state = (n: number) => balancer.describe().endpoints.find((e) => e.address === `10.0.0.${n}:50051`);
  return { balancer, timers, ejections, fail, answer, picked, state };
}

describe('outlier ejection', () => {
  it('failures in a row eject; an answer in between resets the count', () => {
    const h = setup([1, 2, 3]);
    h.fail(1, 2);
    h.answer(1);
    h.fail(1, 2);
    assert.deepEqual(h.picked(), ['1', '2', '3'], 'two failures after an answer: still in');
    h.fail(1);
    assert.deepEqual(h.picked(), ['2', '3']);
    assert.deepEqual(h.ejections, [`10.0.0.1:50051 ${KEY} 1000 ms after 3`]);
    assert.deepEqual([h.state(1)?.eligible, h.state(1)?.ejected], [false, true]);
  });

  it('the probation ends by itself; back on trial, one failure ejects again for twice as long, up to the maximum', () => {
    const h = setup([1, 2, 3]);
    h.fail(1, 3);
    h.timers.advance(999);
    assert.deepEqual(h.picked(), ['2', '3']);
    h.timers.advance(1);
    assert.deepEqual(h.picked(), ['1', '2', '3']);
    assert.equal(h.state(1)?.ejected, false);
    h.fail(1);
    assert.deepEqual(h.picked(), ['2', '3'], 'one failure on trial');
    h.timers.advance(2_000);
    h.fail(1);
    h.timers.advance(3_000);
    h.fail(1);
    assert.deepEqual(h.ejections.map((line) => line.split(' ')[2]), ['1000', '2000', '3000', '3000']);
  });

  it('an answer on trial clears it: three failures are needed again', () => {
    const h = setup([1, 2, 3]);
    h.fail(1, 3);
    h.timers.advance(1_000);
    h.answer(1);
    h.fail(1, 2);
    assert.deepEqual(h.picked(), ['1', '2', '3']);
  });

  it('an endpoint that stayed in long enough starts again from the base length', () => {
    const h = setup([1, 2, 3]);
    h.fail(1, 3);
    h.timers.advance(1_000);
    h.answer(1);
    h.timers.advance(10_000);
    h.fail(1, 3);
    assert.deepEqual(h.ejections.map((line) => line.split(' ')[2]), ['1000', '1000']);
  });

  it('never more than half of the endpoints: with three, one; with one, none', () => {
    const three = setup([1, 2, 3]);
    three.fail(1, 3);
    three.fail(2, 10);
    assert.deepEqual(three.picked(), ['2', '3'], 'the second failing endpoint stays in');
    assert.equal(three.ejections.length, 1);
    const one = setup([1]);
    one.fail(1, 50);
    assert.deepEqual(one.picked(), ['1']);
    assert.deepEqual(one.ejections, []);
  });

  it('an endpoint removed while ejected leaves no timer behind; closing the service clears every one', () => {
    const h = setup([1, 2, 3, 4]);
    h.fail(1, 3);
    h.fail(2, 3);
    assert.equal(h.timers.activeCount, 2);
    h.balancer.apply({ type: 'remove', key: KEY, address: '10.0.0.1:50051' });
    assert.equal(h.timers.activeCount, 1);
    h.balancer.close();
    assert.equal(h.timers.activeCount, 0);
  });

  it('the default policy: five in a row, 5 s first, never past 5 min, half of the endpoints at most', () => {
    assert.deepEqual(
      { ...DEFAULT_OUTLIER_POLICY },
      { consecutiveFailures: 5, baseEjectionMs: 5_000, maxEjectionMs: 300_000, forgetAfterMs: 600_000, maxEjectedFraction: 0.5 },
    );
  });
});
