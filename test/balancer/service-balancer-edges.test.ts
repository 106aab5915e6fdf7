// One service's balancer at its edges: no hooks installed, updates naming unknown endpoints, the median of an even
// number of estimates, a batch that removes every estimate to take a median of, overrides naming the policy already
// in use, and the policy contract that createPicker never gets an empty list.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EndpointLoad, LoadOptions } from '../../agent/balancer/endpoint-load.ts';
import { type BalancingPolicy, EMPTY_PICKER } from '../../agent/balancer/picker.ts';
import { policyByName } from '../../agent/balancer/policies.ts';
import { type EndpointHooks, ServiceBalancer } from '../../agent/balancer/service-balancer.ts';
import type { EndpointSpec, ServiceSpec } from '../../agent/registry/endpoint.ts';
import type { BalancerName } from '../../agent/vocabulary/balancer-names.ts';
import { FakeClock } from '../support/balancer-simulation.ts';

const KEY = 'default/greeter:50051';
const MS = 1e6;

function ep(n: number, ready = true): EndpointSpec {
  return { address: `10.0.0.${n}:50051`, host: `10.0.0.${n}`, port: 50051, ready, serving: true, terminating: !ready };
}

function service(endpoints: EndpointSpec[], balancer: BalancerName | null = null): ServiceSpec {
  return { key: KEY, namespace: 'default', name: 'greeter', port: 50051, clusterIPs: [], balancer, endpoints };
}

interface SetupOptions {
  defaultBalancer?: BalancerName;
  hooks?: EndpointHooks;
  policyFor?: (name: BalancerName | null) => BalancingPolicy;
}

function setup(options: SetupOptions = {}) {
  const clock = new FakeClock();
  const load: LoadOptions = {
    now: clock.now,
    latestSample: null,
    decayNs: 10_000 * MS,
    defaultRttNs: 1 * MS,
    failurePenaltyNs: 1000 * MS,
  };
  const deps = { randomInt: () => 0, time: clock.cell };
  const byName = (name: BalancerName | null) => policyByName(name ?? options.defaultBalancer ?? 'round-robin', deps);
  const balancer = new ServiceBalancer(KEY, { policyFor: options.policyFor ?? byName, load }, options.hooks);
  return { clock, balancer };
}

test('a new balancer is open; delete closes it', () => {
  const { balancer } = setup();
  assert.equal(balancer.closed, false);
  balancer.apply({ type: 'reset', key: KEY, service: service([ep(1)]) });
  assert.equal(balancer.closed, false);
  balancer.apply({ type: 'delete', key: KEY });
  assert.equal(balancer.closed, true);
});

test('without hooks, every kind of update still applies', () => {
  const { balancer } = setup();
  balancer.apply({ type: 'reset', key: KEY, service: service([ep(1), ep(2)]) });
  balancer.apply({ type: 'add', key: KEY, endpoint: ep(3) });
  balancer.apply({ type: 'drain', key: KEY, address: '10.0.0.1:50051', endpoint: ep(1, false) });
  balancer.apply({ type: 'remove', key: KEY, address: '10.0.0.2:50051' });
  assert.equal(balancer.picker.pick()?.address, '10.0.0.3:50051');
  balancer.apply({ type: 'delete', key: KEY });
  assert.equal(balancer.picker, EMPTY_PICKER);
});

test('removing an address that is not listed hands nothing back', () => {
  const removed: unknown[] = [];
  const { balancer } = setup({ hooks: { onEndpointRemoved: (load) => removed.push(load) } });
  balancer.apply({ type: 'reset', key: KEY, service: service([ep(1)]) });
  const picker = balancer.picker;
  balancer.apply({ type: 'remove', key: KEY, address: '10.0.0.9:50051' });
  assert.deepEqual(removed, []);
  assert.equal(balancer.picker, picker);
});

/** Gives each listed endpoint one sample of the given latency (ms) at the clock's time. */
function sample(balancer: ServiceBalancer, latencyMs: Record<number, number>): void {
  for (const [n, ms] of Object.entries(latencyMs)) {
    const load = balancer.loadOf(`10.0.0.${n}:50051`) as EndpointLoad;
    load.onStart();
    load.onFinish(ms * MS);
  }
}

test('a new endpoint starts from the mean of the two middle estimates when the picker holds an even number', () => {
  const { clock, balancer } = setup();
  balancer.apply({ type: 'reset', key: KEY, service: service([ep(1), ep(2), ep(3), ep(4)]) });
  clock.ns = 60_000 * MS;
  sample(balancer, { 1: 2, 2: 8, 3: 4, 4: 6 });
  balancer.apply({ type: 'add', key: KEY, endpoint: ep(5) });
  assert.equal((balancer.loadOf('10.0.0.5:50051') as EndpointLoad).ewmaNs, 5 * MS, '(4 + 6) / 2');
});

test('a new endpoint whose batch removed every endpoint of the picker starts from the default estimate', () => {
  const { clock, balancer } = setup();
  balancer.apply({ type: 'reset', key: KEY, service: service([ep(1)]) });
  clock.ns = 60_000 * MS;
  sample(balancer, { 1: 7 });
  balancer.applyAll([
    { type: 'remove', key: KEY, address: '10.0.0.1:50051' },
    { type: 'add', key: KEY, endpoint: ep(2) },
  ]);
  assert.equal((balancer.loadOf('10.0.0.2:50051') as EndpointLoad).ewmaNs, 1 * MS);
  assert.equal(balancer.picker.pick()?.address, '10.0.0.2:50051');
});

test('an override naming the policy already in use keeps the picker', () => {
  const { balancer } = setup({ defaultBalancer: 'round-robin' });
  balancer.apply({ type: 'reset', key: KEY, service: service([ep(1), ep(2)]) });
  const picker = balancer.picker;
  balancer.apply({ type: 'reset', key: KEY, service: service([ep(1), ep(2)], 'round-robin') });
  assert.equal(balancer.balancer, 'round-robin');
  assert.equal(balancer.picker, picker, 'same endpoints, same policy: not rebuilt');
  balancer.apply({ type: 'reset', key: KEY, service: service([ep(1), ep(2)], 'least-request') });
  assert.notEqual(balancer.picker, picker);
});

test('createPicker is never asked for a picker of no endpoints: the balancer publishes the empty picker itself', () => {
  const lists: number[] = [];
  const roundRobin = policyByName('round-robin', { randomInt: () => 0, time: new Float64Array(1) });
  const strict: BalancingPolicy = {
    name: 'round-robin',
    createPicker(endpoints: readonly EndpointLoad[]) {
      lists.push(endpoints.length);
      if (endpoints.length === 0) throw new Error('createPicker([]) breaks the BalancingPolicy contract');
      return roundRobin.createPicker(endpoints);
    },
  };
  const { balancer } = setup({ policyFor: () => strict });
  balancer.apply({ type: 'reset', key: KEY, service: service([ep(1), ep(2)]) });
  balancer.apply({ type: 'remove', key: KEY, address: '10.0.0.1:50051' });
  balancer.apply({ type: 'remove', key: KEY, address: '10.0.0.2:50051' });
  assert.equal(balancer.picker, EMPTY_PICKER);
  balancer.apply({ type: 'add', key: KEY, endpoint: ep(3) });
  balancer.apply({ type: 'delete', key: KEY });
  assert.equal(balancer.picker, EMPTY_PICKER);
  assert.deepEqual(lists, [2, 1, 1]);
});
