// The registry's patch: the updates and state an upsert of the whole changed spec would give, at the cost of the change.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countEndpoints } from '../../agent/registry/endpoint-counts.ts';
import { EndpointRegistry } from '../../agent/registry/endpoint-registry.ts';
import type { EndpointSpec, RegistryUpdate, ServiceSpec } from '../../agent/registry/endpoint.ts';
import { seededRandom } from '../support/seeded-random.ts';

const KEY = 'default/greeter:50051';

function ep(host: string, state: 'ready' | 'terminating' | 'dark' | 'not-ready' = 'ready', port = 50051): EndpointSpec {
  return {
    address: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`,
    host,
    port,
    ready: state === 'ready',
    serving: state === 'ready' || state === 'terminating',
    terminating: state === 'terminating' || state === 'dark',
  };
}

function svc(endpoints: EndpointSpec[]): ServiceSpec {
  return { key: KEY, namespace: 'default', name: 'greeter', port: 50051, clusterIPs: ['10.96.0.10'], balancer: null, endpoints };
}

function recorded(registry: EndpointRegistry): RegistryUpdate[] {
  const updates: RegistryUpdate[] = [];
  registry.subscribe((update) => updates.push(update));
  updates.length = 0;
  return updates;
}

test('a patch: removes, then drains, then adds, each in the order given; an unchanged or unknown endpoint is silent', () => {
  const registry = new EndpointRegistry();
  registry.upsert(svc([ep('10.0.0.1'), ep('10.0.0.2'), ep('10.0.0.3')]));
  const updates = recorded(registry);
  assert.equal(
    registry.patch(KEY, { listed: [ep('10.0.0.4'), ep('10.0.0.2', 'terminating'), ep('10.0.0.3')], unlisted: ['10.0.0.1:50051', '10.0.0.9:50051'] }),
    true,
  );
  assert.deepEqual(updates, [
    { type: 'remove', key: KEY, address: '10.0.0.1:50051' },
    { type: 'drain', key: KEY, address: '10.0.0.2:50051', endpoint: ep('10.0.0.2', 'terminating') },
    { type: 'add', key: KEY, endpoint: ep('10.0.0.4') },
  ]);
  assert.deepEqual(registry.get(KEY)?.endpoints, [ep('10.0.0.2', 'terminating'), ep('10.0.0.3'), ep('10.0.0.4')]);
  assert.equal(registry.lookupByAddress('10.0.0.1', 50051), undefined);
  assert.equal(registry.lookupByAddress('10.0.0.4', 50051)?.key, KEY);
  assert.equal(registry.keyAtAddress('10.0.0.4', 50051), KEY);

  updates.length = 0;
  assert.equal(registry.patch(KEY, { listed: [ep('10.0.0.3')], unlisted: ['10.0.0.1:50051'] }), true);
  assert.deepEqual(updates, []);
});

test('a patch of a service not held changes nothing and says so', () => {
  const registry = new EndpointRegistry();
  const updates = recorded(registry);
  assert.equal(registry.patch(KEY, { listed: [ep('10.0.0.1')], unlisted: [] }), false);
  assert.deepEqual(updates, []);
  assert.equal(registry.get(KEY), undefined);
  assert.equal(registry.keyAtAddress('10.0.0.1', 50051), undefined);
});

test('the spec handed out is frozen, kept until the next change, and never changed by one', () => {
  const registry = new EndpointRegistry();
  registry.upsert(svc([ep('10.0.0.1')]));
  const first = registry.get(KEY) as ServiceSpec;
  assert.equal(registry.get(KEY), first);
  registry.patch(KEY, { listed: [ep('10.0.0.1')], unlisted: [] });
  assert.equal(registry.get(KEY), first, 'no change, same object');
  registry.patch(KEY, { listed: [ep('10.0.0.2')], unlisted: [] });
  const second = registry.get(KEY) as ServiceSpec;
  assert.notEqual(second, first);
  assert.deepEqual(first.endpoints, [ep('10.0.0.1')]);
  assert.deepEqual(second.endpoints, [ep('10.0.0.1'), ep('10.0.0.2')]);
  assert.ok(Object.isFrozen(second) && Object.isFrozen(second.endpoints) && Object.isFrozen(second.endpoints[1]));
  assert.equal(registry.lookupByAddress('10.0.0.2', 50051), second);
});

test('an address listed twice in one patch keeps its most usable state; hosts are normalised', () => {
  const registry = new EndpointRegistry();
  registry.upsert(svc([]));
  const updates = recorded(registry);
  registry.patch(KEY, { listed: [ep('fd00::1', 'not-ready'), ep('fd00::1'), { ...ep('fd00::2'), host: 'FD00::2' }], unlisted: [] });
  assert.deepEqual(updates, [
    { type: 'add', key: KEY, endpoint: ep('fd00::1') },
    { type: 'add', key: KEY, endpoint: ep('fd00::2') },
  ]);
  assert.equal(registry.keyAtAddress('fd00::2', 50051), KEY);
});

test('model: random patches give the updates, state and address index of upserting the whole changed spec', () => {
  const random = seededRandom(77);
  const states = ['ready', 'terminating', 'dark', 'not-ready'] as const;
  const patched = new EndpointRegistry();
  const whole = new EndpointRegistry();
  patched.upsert(svc([ep('10.0.0.0')]));
  whole.upsert(svc([ep('10.0.0.0')]));
  const patchedUpdates = recorded(patched);
  const wholeUpdates = recorded(whole);
  for (let step = 0; step < 2000; step++) {
    const held = new Map((whole.get(KEY) as ServiceSpec).endpoints.map((e) => [e.address, e]));
    const listed: EndpointSpec[] = [];
    const unlisted: string[] = [];
    const touched = new Set<string>();
    for (let n = Math.floor(random() * 4); n > 0; n--) {
      const endpoint = ep(`10.0.0.${Math.floor(random() * 12)}`, states[Math.floor(random() * states.length)]);
      if (touched.has(endpoint.address)) continue;
      touched.add(endpoint.address);
      if (random() < 0.3) unlisted.push(endpoint.address);
      else listed.push(endpoint);
    }
    for (const address of unlisted) held.delete(address);
    for (const endpoint of listed) held.set(endpoint.address, endpoint);
    patchedUpdates.length = 0;
    wholeUpdates.length = 0;
    patched.patch(KEY, { listed, unlisted });
    whole.upsert(svc([...held.values()]));
    // The same updates in the same order of kinds (removes, drains, adds); within a kind, a patch keeps its own order.
    assert.deepEqual(patchedUpdates.map((u) => u.type), wholeUpdates.map((u) => u.type), `step ${step}`);
    const inOrder = (updates: RegistryUpdate[]) => updates.map((u) => JSON.stringify(u)).sort();
    assert.deepEqual(inOrder(patchedUpdates), inOrder(wholeUpdates), `step ${step}`);
    const sorted = (spec: ServiceSpec | undefined) => [...(spec?.endpoints ?? [])].sort((a, b) => a.address.localeCompare(b.address));
    assert.deepEqual(sorted(patched.get(KEY)), sorted(whole.get(KEY)), `step ${step}`);
    assert.deepEqual(patched.endpointCounts(KEY), countEndpoints(whole.get(KEY)?.endpoints ?? []), `step ${step}: counts kept through patches`);
    for (let i = 0; i < 12; i++) assert.equal(patched.keyAtAddress(`10.0.0.${i}`, 50051), whole.keyAtAddress(`10.0.0.${i}`, 50051));
  }
});

test('address subscribers hear what is claimed, then each address as it comes or goes, not an endpoint changing state', () => {
  const registry = new EndpointRegistry();
  registry.upsert(svc([ep('10.0.0.1'), ep('10.0.0.2')]));
  const heard: string[] = [];
  registry.subscribeAddresses((ip, port, claimed) => heard.push(`${claimed ? '+' : '-'}${ip}:${port}`));
  assert.deepEqual(heard.sort(), ['+10.0.0.1:50051', '+10.0.0.2:50051', '+10.96.0.10:50051']);
  heard.length = 0;
  registry.patch(KEY, { listed: [ep('10.0.0.1', 'terminating')], unlisted: [] });
  registry.upsert(svc([ep('10.0.0.1', 'not-ready'), ep('10.0.0.2', 'dark')]));
  assert.deepEqual(heard, []);
  registry.patch(KEY, { listed: [ep('10.0.0.3')], unlisted: [] });
  registry.patch(KEY, { listed: [], unlisted: ['10.0.0.3:50051'] });
  assert.deepEqual(heard, ['+10.0.0.3:50051', '-10.0.0.3:50051']);
  heard.length = 0;
  registry.upsert({ ...svc([ep('10.0.0.1'), ep('10.0.0.2')]), clusterIPs: ['10.96.0.11'] });
  assert.deepEqual(heard, ['-10.96.0.10:50051', '+10.96.0.11:50051'], 'a new ClusterIP');
  heard.length = 0;
  // A second service listing the same pod address claims nothing new; the address goes with the last of them.
  const other: ServiceSpec = { ...svc([ep('10.0.0.1')]), key: 'default/other:50051', name: 'other', clusterIPs: [] };
  registry.upsert(other);
  assert.deepEqual(heard, []);
  registry.remove(KEY);
  assert.deepEqual(heard.sort(), ['-10.0.0.2:50051', '-10.96.0.11:50051']);
  heard.length = 0;
  registry.remove(other.key);
  assert.deepEqual(heard, ['-10.0.0.1:50051']);
});
