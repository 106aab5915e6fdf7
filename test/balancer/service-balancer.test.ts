// One service's balancer: picker snapshots per update, load objects that survive, hooks for the upstream pool.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EndpointLoad, LoadOptions } from '../../agent/balancer/endpoint-load.ts';
import { EMPTY_PICKER, type Picker } from '../../agent/balancer/picker.ts';
import { policyByName } from '../../agent/balancer/policies.ts';
import { ServiceBalancer } from '../../agent/balancer/service-balancer.ts';
import type { EndpointSpec, RegistryUpdate, ServiceSpec } from '../../agent/registry/endpoint.ts';
import { FakeClock, simulate } from '../support/balancer-simulation.ts';
import { seededRandomInt } from '../support/seeded-random.ts';
import type { BalancerName } from '../../agent/vocabulary/balancer-names.ts';

const KEY = 'default/greeter:50051';
const MS = 1e6;

type State = 'ready' | 'terminating' | 'gone-dark';

function ep(n: number, state: State = 'ready'): EndpointSpec {
  return {
    address: `10.0.0.${n}:50051`,
    host: `10.0.0.${n}`,
    port: 50051,
    ready: state === 'ready',
    serving: state !== 'gone-dark',
    terminating: state !== 'ready',
  };
}

function service(endpoints: EndpointSpec[], balancer: BalancerName | null = null): ServiceSpec {
  return { key: KEY, namespace: 'default', name: 'greeter', port: 50051, clusterIPs: [], balancer, endpoints };
}

function setup(defaultBalancer: BalancerName = 'round-robin') {
  const clock = new FakeClock();
  const load: LoadOptions = { now: clock.now, latestSample: null, decayNs: 10_000 * MS, defaultRttNs: 1 * MS, failurePenaltyNs: 1000 * MS };
  const deps = { randomInt: seededRandomInt(7), time: clock.cell };
  const events: string[] = [];
  const balancer = new ServiceBalancer(
    KEY,
    { policyFor: (name) => policyByName(name ?? defaultBalancer, deps), load },
    {
      onEndpointActive: (l, key) => events.push(`active ${l.address} ${key}`),
      onEndpointDraining: (l) => events.push(`draining ${l.address}`),
      onEndpointRemoved: (l) => events.push(`removed ${l.address}`),
    },
  );
  return { clock, balancer, events };
}

/** The addresses a picker can return (round-robin visits each once in n picks). */
function members(picker: Picker, n = 6): string[] {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const load = picker.pick();
    if (load !== null) seen.add(load.address);
  }
  return [...seen].sort();
}

test('a reset publishes a picker of the eligible endpoints and marks each active', () => {
  const { balancer, events } = setup();
  assert.equal(balancer.picker, EMPTY_PICKER);
  balancer.apply({ type: 'reset', key: KEY, service: service([ep(1), ep(2), ep(3, 'terminating')]) });
  assert.deepEqual(members(balancer.picker), ['10.0.0.1:50051', '10.0.0.2:50051']);
  assert.deepEqual(events, [`active 10.0.0.1:50051 ${KEY}`, `active 10.0.0.2:50051 ${KEY}`]);
  assert.equal(balancer.balancer, 'round-robin');
});

test('an update replaces the picker; the old snapshot keeps working; load objects survive', () => {
  const { balancer } = setup();
  balancer.apply({ type: 'reset', key: KEY, service: service([ep(1), ep(2)]) });
  const before = balancer.picker;
  const one = balancer.loadOf('10.0.0.1:50051') as EndpointLoad;
  one.onStart();
  one.onFinish(5 * MS);
  one.onStart();
  balancer.apply({ type: 'add', key: KEY, endpoint: ep(3) });
  assert.notEqual(balancer.picker, before);
  assert.deepEqual(members(balancer.picker), ['10.0.0.1:50051', '10.0.0.2:50051', '10.0.0.3:50051']);
  assert.deepEqual(members(before), ['10.0.0.1:50051', '10.0.0.2:50051'], 'requests on the old snapshot are undisturbed');
  assert.equal(balancer.loadOf('10.0.0.1:50051'), one);
  assert.equal(one.inFlight, 1);
  assert.equal(one.ewmaNs, 5 * MS);
  // The same object is in both snapshots: a request that started on the old one finishes on shared state.
  let fromNew: EndpointLoad | null = null;
  for (let i = 0; i < 3 && fromNew?.address !== one.address; i++) fromNew = balancer.picker.pick();
  assert.equal(fromNew, one);
});

test('the picker is not rebuilt when the eligible set does not change', () => {
  const { balancer, events } = setup();
  balancer.apply({ type: 'reset', key: KEY, service: service([ep(1)]) });
  const picker = balancer.picker;
  balancer.apply({ type: 'add', key: KEY, endpoint: ep(2, 'terminating') });
  balancer.apply({ type: 'reset', key: KEY, service: service([ep(1), ep(2, 'terminating')]) });
  assert.equal(balancer.picker, picker);
  assert.deepEqual(events, ['active 10.0.0.1:50051 default/greeter:50051']);
});

/** Picks per address over `n` picks, sorted by address. */
function counts(picker: Picker, n: number): Array<[string, number]> {
  const seen = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const address = picker.pick()?.address ?? 'none';
    seen.set(address, (seen.get(address) ?? 0) + 1);
  }
  return [...seen].sort((a, b) => a[0].localeCompare(b[0]));
}

test('a rolling update that swaps one endpoint for another in one step (same count) rebuilds the picker', () => {
  // A slice update in which pod 2 starts terminating and pod 3 becomes ready: two eligible before and after.
  const swaps: Array<{ name: string; updates: RegistryUpdate[]; events: string[] }> = [
    {
      name: 'one reset',
      updates: [{ type: 'reset', key: KEY, service: service([ep(1), ep(2, 'terminating'), ep(3)]) }],
      events: ['draining 10.0.0.2:50051', `active 10.0.0.3:50051 ${KEY}`],
    },
    {
      name: 'drain and add in one batch',
      updates: [
        { type: 'drain', key: KEY, address: '10.0.0.2:50051', endpoint: ep(2, 'terminating') },
        { type: 'add', key: KEY, endpoint: ep(3) },
      ],
      events: ['draining 10.0.0.2:50051', `active 10.0.0.3:50051 ${KEY}`],
    },
    {
      name: 'remove and add in one batch',
      updates: [
        { type: 'remove', key: KEY, address: '10.0.0.2:50051' },
        { type: 'add', key: KEY, endpoint: ep(3) },
      ],
      events: ['removed 10.0.0.2:50051', `active 10.0.0.3:50051 ${KEY}`],
    },
  ];
  for (const swap of swaps) {
    const { balancer, events } = setup();
    balancer.apply({ type: 'reset', key: KEY, service: service([ep(1), ep(2)]) });
    const before = balancer.picker;
    events.length = 0;
    balancer.applyAll(swap.updates);
    assert.notEqual(balancer.picker, before, `${swap.name}: a new picker`);
    // Round-robin over the new pair: every new pick goes to 1 or 3, exactly half each; none to the leaving pod.
    assert.deepEqual(
      counts(balancer.picker, 20),
      [
        ['10.0.0.1:50051', 10],
        ['10.0.0.3:50051', 10],
      ],
      swap.name,
    );
    assert.deepEqual(events, swap.events, swap.name);
    assert.equal(balancer.describe().endpoints.find((e) => e.address === '10.0.0.2:50051')?.eligible ?? false, false, swap.name);
  }
});

test('two endpoints swapped for two others keep the count and still rebuild', () => {
  const { balancer } = setup();
  balancer.apply({ type: 'reset', key: KEY, service: service([ep(1), ep(2), ep(3)]) });
  balancer.apply({ type: 'reset', key: KEY, service: service([ep(1), ep(2, 'terminating'), ep(3, 'terminating'), ep(4), ep(5)]) });
  assert.deepEqual(counts(balancer.picker, 30), [
    ['10.0.0.1:50051', 10],
    ['10.0.0.4:50051', 10],
    ['10.0.0.5:50051', 10],
  ]);
});

test('remove hands the load object back once; drain reports draining; both leave the picker', () => {
  const { balancer, events } = setup();
  const removed: EndpointLoad[] = [];
  balancer.apply({ type: 'reset', key: KEY, service: service([ep(1), ep(2), ep(3)]) });
  const two = balancer.loadOf('10.0.0.2:50051');
  balancer.onEndpointRemoved = (load) => removed.push(load);
  events.length = 0;
  balancer.apply({ type: 'remove', key: KEY, address: '10.0.0.2:50051' });
  assert.deepEqual(removed, [two]);
  assert.equal(balancer.loadOf('10.0.0.2:50051'), undefined);
  balancer.apply({ type: 'drain', key: KEY, address: '10.0.0.3:50051', endpoint: ep(3, 'terminating') });
  assert.deepEqual(events, ['draining 10.0.0.3:50051']);
  assert.deepEqual(members(balancer.picker), ['10.0.0.1:50051']);
  assert.ok(balancer.loadOf('10.0.0.3:50051') !== undefined, 'a draining endpoint keeps its load object');
});

test('terminating endpoints are excluded unless all are terminating; never one that stopped serving', () => {
  const { balancer, events } = setup();
  balancer.apply({ type: 'reset', key: KEY, service: service([ep(1), ep(2, 'terminating'), ep(3, 'gone-dark')]) });
  assert.deepEqual(members(balancer.picker), ['10.0.0.1:50051']);
  events.length = 0;
  balancer.apply({ type: 'drain', key: KEY, address: '10.0.0.1:50051', endpoint: ep(1, 'terminating') });
  // Now all are terminating: the serving ones take requests (1 stays in, 2 comes in), 3 never.
  assert.deepEqual(members(balancer.picker), ['10.0.0.1:50051', '10.0.0.2:50051']);
  assert.deepEqual(events, ['active 10.0.0.2:50051 default/greeter:50051']);
  events.length = 0;
  balancer.apply({ type: 'add', key: KEY, endpoint: ep(4) });
  assert.deepEqual(members(balancer.picker), ['10.0.0.4:50051']);
  assert.deepEqual(events, ['draining 10.0.0.1:50051', 'draining 10.0.0.2:50051', 'active 10.0.0.4:50051 default/greeter:50051']);
  events.length = 0;
  balancer.apply({ type: 'drain', key: KEY, address: '10.0.0.4:50051', endpoint: ep(4, 'gone-dark') });
  balancer.apply({ type: 'drain', key: KEY, address: '10.0.0.1:50051', endpoint: ep(1, 'gone-dark') });
  balancer.apply({ type: 'drain', key: KEY, address: '10.0.0.2:50051', endpoint: ep(2, 'gone-dark') });
  assert.equal(balancer.picker, EMPTY_PICKER);
});

test('a reset reconciles: kept endpoints keep their load objects; hooks in order removed, draining, active', () => {
  const { balancer, events } = setup();
  balancer.apply({ type: 'reset', key: KEY, service: service([ep(1), ep(2), ep(3)]) });
  const one = balancer.loadOf('10.0.0.1:50051');
  events.length = 0;
  balancer.apply({ type: 'reset', key: KEY, service: service([ep(4), ep(1), ep(3, 'terminating')], 'least-request') });
  assert.equal(balancer.loadOf('10.0.0.1:50051'), one);
  assert.equal(balancer.balancer, 'least-request');
  assert.deepEqual(events, ['removed 10.0.0.2:50051', 'draining 10.0.0.3:50051', 'active 10.0.0.4:50051 default/greeter:50051']);
  assert.deepEqual(members(balancer.picker, 20), ['10.0.0.1:50051', '10.0.0.4:50051']);
});

test('a changed policy alone rebuilds the picker with the same load objects', () => {
  const { balancer } = setup('p2c-ewma');
  balancer.apply({ type: 'reset', key: KEY, service: service([ep(1), ep(2)]) });
  const picker = balancer.picker;
  balancer.apply({ type: 'reset', key: KEY, service: service([ep(1), ep(2)], 'round-robin') });
  assert.notEqual(balancer.picker, picker);
  assert.equal(balancer.balancer, 'round-robin');
  const a = balancer.picker.pick();
  const b = balancer.picker.pick();
  assert.notEqual(a, b, 'round-robin alternates');
  assert.deepEqual([a, b].map((l) => l?.address).sort(), ['10.0.0.1:50051', '10.0.0.2:50051']);
});

test('delete: every endpoint handed back, empty picker, closed for good', () => {
  const { balancer, events } = setup();
  balancer.apply({ type: 'reset', key: KEY, service: service([ep(1), ep(2, 'terminating')]) });
  events.length = 0;
  balancer.apply({ type: 'delete', key: KEY });
  assert.deepEqual(events, ['removed 10.0.0.1:50051', 'removed 10.0.0.2:50051']);
  assert.equal(balancer.picker, EMPTY_PICKER);
  assert.equal(balancer.closed, true);
  assert.throws(() => balancer.apply({ type: 'add', key: KEY, endpoint: ep(3) }), /closed/);
});

test('an update for another key is refused', () => {
  const { balancer } = setup();
  assert.throws(() => balancer.apply({ type: 'delete', key: 'default/other:50051' }), /other/);
});

test('a new endpoint starts at the median estimate of the others and gets its share at once, even unloaded', () => {
  const { clock, balancer } = setup('p2c-ewma');
  balancer.apply({ type: 'reset', key: KEY, service: service([ep(1), ep(2), ep(3)]) });
  clock.ns += 60_000 * MS;
  for (const [n, latency] of [
    [1, 0.2],
    [2, 0.3],
    [3, 0.25],
  ] as const) {
    const load = balancer.loadOf(`10.0.0.${n}:50051`) as EndpointLoad;
    load.onStart();
    load.onFinish(latency * MS);
  }
  const estimates = [1, 2, 3].map((n) => (balancer.loadOf(`10.0.0.${n}:50051`) as EndpointLoad).latencyAt(clock.ns));
  balancer.apply({ type: 'add', key: KEY, endpoint: ep(4) });
  const fresh = balancer.loadOf('10.0.0.4:50051') as EndpointLoad;
  assert.equal(fresh.ewmaNs, estimates[2], 'the median (endpoint 3 sits between 1 and 2)');
  assert.ok(estimates[0] < estimates[2] && estimates[2] < estimates[1]);
  // One request at a time, all as fast as they were: with a fixed 1 ms default the newcomer would get nothing.
  const counts = simulate({
    clock,
    picker: () => balancer.picker,
    concurrency: 1,
    requests: 4000,
    latencyNs: (e) => (e.address === '10.0.0.2:50051' ? 0.3 : e.address === '10.0.0.3:50051' ? 0.25 : 0.2) * MS,
  });
  assert.ok((counts.get('10.0.0.4:50051') as number) > 400, `newcomer got ${counts.get('10.0.0.4:50051')} of 4000`);
});

test('describe lists every listed endpoint with its state and load', () => {
  const { balancer } = setup();
  balancer.apply({ type: 'reset', key: KEY, service: service([ep(1), ep(2, 'terminating')]) });
  (balancer.loadOf('10.0.0.1:50051') as EndpointLoad).onStart();
  assert.deepEqual(balancer.describe(), {
    key: KEY,
    balancer: 'round-robin',
    endpoints: [
      { address: '10.0.0.1:50051', ready: true, serving: true, terminating: false, eligible: true, ejected: false, inFlight: 1, started: 1, latencyMs: 1 },
      { address: '10.0.0.2:50051', ready: false, serving: true, terminating: true, eligible: false, ejected: false, inFlight: 0, started: 0, latencyMs: 1 },
    ],
  });
});

test('a batch of updates builds one picker, and every endpoint new in it starts from one median estimate', () => {
  const { clock } = setup();
  const load: LoadOptions = { now: clock.now, latestSample: null, decayNs: 10_000 * MS, defaultRttNs: 1 * MS, failurePenaltyNs: 1000 * MS };
  const roundRobin = policyByName('round-robin', { randomInt: seededRandomInt(7), time: clock.cell });
  let pickersBuilt = 0;
  const counting = {
    ...roundRobin,
    createPicker: (loads: readonly EndpointLoad[]) => {
      pickersBuilt++;
      return roundRobin.createPicker(loads);
    },
  };
  const events: string[] = [];
  const balancer = new ServiceBalancer(KEY, { policyFor: () => counting, load }, { onEndpointActive: (l, key) => events.push(`active ${l.address} ${key}`) });
  balancer.apply({ type: 'reset', key: KEY, service: service([ep(1), ep(2)]) });
  const before = balancer.picker;
  events.length = 0;
  pickersBuilt = 0;
  balancer.applyAll([3, 4, 5].map((n) => ({ type: 'add', key: KEY, endpoint: ep(n) })));
  assert.equal(pickersBuilt, 1, 'one picker for the three new endpoints');
  assert.notEqual(balancer.picker, before);
  assert.deepEqual(members(balancer.picker, 10), [1, 2, 3, 4, 5].map((n) => `10.0.0.${n}:50051`));
  // One publish: the hooks of the three fire once each, after the new picker.
  assert.deepEqual(events, [3, 4, 5].map((n) => `active 10.0.0.${n}:50051 ${KEY}`));
  const estimates = [3, 4, 5].map((n) => balancer.loadOf(`10.0.0.${n}:50051`)?.latencyAt(0));
  assert.equal(new Set(estimates).size, 1);
});

test('a batch that ends in delete publishes what came before, then closes', () => {
  const { balancer, events } = setup();
  balancer.apply({ type: 'reset', key: KEY, service: service([ep(1)]) });
  events.length = 0;
  balancer.applyAll([
    { type: 'add', key: KEY, endpoint: ep(2) },
    { type: 'delete', key: KEY },
  ]);
  assert.equal(balancer.closed, true);
  assert.equal(balancer.picker, EMPTY_PICKER);
  assert.deepEqual(events, [`active 10.0.0.2:50051 ${KEY}`, 'removed 10.0.0.1:50051', 'removed 10.0.0.2:50051']);
});
