// A service balancer applies endpoint updates as deltas: exactly the changed endpoints move, pickers keep listing order.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EndpointLoad, LoadOptions } from '../../agent/balancer/endpoint-load.ts';
import { EMPTY_PICKER, type Picker } from '../../agent/balancer/picker.ts';
import { policyByName } from '../../agent/balancer/policies.ts';
import { ServiceBalancer } from '../../agent/balancer/service-balancer.ts';
import { type EndpointSpec, eligibleEndpoints, type RegistryUpdate } from '../../agent/registry/endpoint.ts';
import { FakeClock } from '../support/balancer-simulation.ts';
import { seededRandom } from '../support/seeded-random.ts';

const KEY = 'default/big:50051';
const MS = 1e6;

type State = 'ready' | 'terminating' | 'dark' | 'not-ready';

function ep(n: number, state: State = 'ready'): EndpointSpec {
  const host = `10.2.${n >> 8}.${n & 255}`;
  return {
    address: `${host}:50051`,
    host,
    port: 50051,
    ready: state === 'ready',
    serving: state === 'ready' || state === 'terminating',
    terminating: state === 'terminating' || state === 'dark',
  };
}

/** Round-robin starting at 0 (randomInt always 0): n picks are the picker's endpoints in its own order. */
function setup() {
  const clock = new FakeClock();
  const load: LoadOptions = { now: clock.now, latestSample: null, decayNs: 10_000 * MS, defaultRttNs: 1 * MS, failurePenaltyNs: 1000 * MS };
  const events: string[] = [];
  const balancer = new ServiceBalancer(
    KEY,
    { policyFor: () => policyByName('round-robin', { randomInt: () => 0, time: clock.cell }), load },
    {
      onEndpointActive: (l) => events.push(`active ${l.address}`),
      onEndpointDraining: (l) => events.push(`draining ${l.address}`),
      onEndpointRemoved: (l) => events.push(`removed ${l.address}`),
    },
  );
  return { balancer, events };
}

function order(picker: Picker, n: number): string[] {
  const picked: string[] = [];
  for (let i = 0; i < n; i++) picked.push(picker.pick()?.address ?? 'none');
  return picked;
}

test('one of 1,000 endpoints drains and comes back: one hook each, the rest untouched, listing order kept', () => {
  const { balancer, events } = setup();
  const endpoints = Array.from({ length: 1000 }, (_, i) => ep(i));
  balancer.apply({ type: 'reset', key: KEY, service: { key: KEY, namespace: 'default', name: 'big', port: 50051, clusterIPs: [], balancer: null, endpoints } });
  const loads = endpoints.map((e) => balancer.loadOf(e.address) as EndpointLoad);
  events.length = 0;

  balancer.apply({ type: 'drain', key: KEY, address: ep(500).address, endpoint: ep(500, 'terminating') });
  assert.deepEqual(events, [`draining ${ep(500).address}`]);
  assert.deepEqual(order(balancer.picker, 999), endpoints.filter((_, i) => i !== 500).map((e) => e.address));
  assert.equal(balancer.describe().endpoints.filter((e) => e.eligible).length, 999);

  events.length = 0;
  balancer.apply({ type: 'add', key: KEY, endpoint: ep(500) });
  assert.deepEqual(events, [`active ${ep(500).address}`]);
  assert.deepEqual(order(balancer.picker, 1000), endpoints.map((e) => e.address), 'back in its place, not at the end');
  assert.ok(endpoints.every((e, i) => balancer.loadOf(e.address) === loads[i]), 'every load object kept');

  // A drain that leaves the membership as it was (still not eligible) publishes nothing new.
  balancer.apply({ type: 'drain', key: KEY, address: ep(7).address, endpoint: ep(7, 'dark') });
  const picker = balancer.picker;
  events.length = 0;
  balancer.apply({ type: 'drain', key: KEY, address: ep(7).address, endpoint: ep(7, 'not-ready') });
  assert.equal(balancer.picker, picker);
  assert.deepEqual(events, []);
});

test('the last active endpoint leaves: the picker falls back to the terminating ones, and back', () => {
  const { balancer, events } = setup();
  const service = { key: KEY, namespace: 'default', name: 'big', port: 50051, clusterIPs: [], balancer: null };
  balancer.apply({ type: 'reset', key: KEY, service: { ...service, endpoints: [ep(1, 'terminating'), ep(2), ep(3, 'terminating')] } });
  events.length = 0;
  balancer.apply({ type: 'remove', key: KEY, address: ep(2).address });
  assert.deepEqual(events, [`removed ${ep(2).address}`, `active ${ep(1).address}`, `active ${ep(3).address}`]);
  assert.deepEqual(order(balancer.picker, 2), [ep(1).address, ep(3).address]);
  events.length = 0;
  balancer.apply({ type: 'add', key: KEY, endpoint: ep(4) });
  assert.deepEqual(events, [`draining ${ep(1).address}`, `draining ${ep(3).address}`, `active ${ep(4).address}`]);
  events.length = 0;
  balancer.applyAll([
    { type: 'remove', key: KEY, address: ep(1).address },
    { type: 'drain', key: KEY, address: ep(4).address, endpoint: ep(4, 'dark') },
  ]);
  assert.deepEqual(events, [`removed ${ep(1).address}`, `draining ${ep(4).address}`, `active ${ep(3).address}`]);
  events.length = 0;
  balancer.apply({ type: 'remove', key: KEY, address: ep(3).address });
  assert.equal(balancer.picker, EMPTY_PICKER);
});

test('model: after random batches the picker holds exactly the eligible endpoints in listing order, hooks as expected', () => {
  const random = seededRandom(99);
  const states: State[] = ['ready', 'ready', 'terminating', 'dark', 'not-ready'];
  const { balancer, events } = setup();
  /** The listed endpoints in listing order (a Map keeps first insertion order, as the balancer's listing does). */
  const listed = new Map<string, EndpointSpec>();
  balancer.apply({ type: 'reset', key: KEY, service: { key: KEY, namespace: 'default', name: 'big', port: 50051, clusterIPs: [], balancer: null, endpoints: [] } });
  let eligible: string[] = [];
  for (let step = 0; step < 3000; step++) {
    const updates: RegistryUpdate[] = [];
    const removed: string[] = [];
    for (let n = 1 + Math.floor(random() * 3); n > 0; n--) {
      const endpoint = ep(Math.floor(random() * 20), states[Math.floor(random() * states.length)]);
      if (updates.some((u) => (u.type === 'remove' ? u.address : u.type === 'add' || u.type === 'drain' ? u.endpoint.address : '') === endpoint.address)) continue;
      if (listed.has(endpoint.address) && random() < 0.3) {
        updates.push({ type: 'remove', key: KEY, address: endpoint.address });
        listed.delete(endpoint.address);
        removed.push(endpoint.address);
      } else {
        const known = listed.has(endpoint.address);
        updates.push(known && !(endpoint.ready && endpoint.serving && !endpoint.terminating) ? { type: 'drain', key: KEY, address: endpoint.address, endpoint } : { type: 'add', key: KEY, endpoint });
        listed.set(endpoint.address, endpoint);
      }
    }
    events.length = 0;
    balancer.applyAll(updates);
    const next = eligibleEndpoints([...listed.values()]).map((e) => e.address);
    assert.deepEqual(order(balancer.picker, next.length), next.length === 0 ? [] : next, `step ${step}`);
    const expected = [
      ...removed.map((a) => `removed ${a}`),
      ...eligible.filter((a) => !next.includes(a) && listed.has(a)).map((a) => `draining ${a}`),
      ...next.filter((a) => !eligible.includes(a)).map((a) => `active ${a}`),
    ];
    // Hooks: removed in update order, then draining and active each in listing order.
    const rank = new Map([...listed.keys()].map((a, i) => [a, i]));
    const drainingExpected = expected.filter((e) => e.startsWith('draining')).sort((a, b) => (rank.get(a.slice(9)) as number) - (rank.get(b.slice(9)) as number));
    assert.deepEqual(
      events,
      [...expected.filter((e) => e.startsWith('removed')), ...drainingExpected, ...expected.filter((e) => e.startsWith('active'))],
      `step ${step}`,
    );
    eligible = next;
  }
});
