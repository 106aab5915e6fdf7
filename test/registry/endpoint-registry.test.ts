// The registry's diffs: exact update sequences per kind of change, and the address index of transparent mode.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EndpointRegistry } from '../../agent/registry/endpoint-registry.ts';
import type { EndpointSpec, RegistryUpdate, ServiceSpec } from '../../agent/registry/endpoint.ts';
import type { BalancerName } from '../../agent/vocabulary/balancer-names.ts';
import { normalizeIp } from '../../agent/vocabulary/ip-address.ts';

type State = 'ready' | 'terminating' | 'gone-dark' | 'not-ready';

function ep(host: string, state: State = 'ready', port = 50051): EndpointSpec {
  const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return {
    address,
    host,
    port,
    ready: state === 'ready',
    serving: state === 'ready' || state === 'terminating',
    terminating: state === 'terminating' || state === 'gone-dark',
  };
}

function svc(
  name: string,
  endpoints: EndpointSpec[],
  { clusterIPs = [] as string[], balancer = null as BalancerName | null, port = 50051 } = {},
): ServiceSpec {
  return { key: `default/${name}:${port}`, namespace: 'default', name, port, clusterIPs, balancer, endpoints };
}

function recorded(registry: EndpointRegistry): RegistryUpdate[] {
  const updates: RegistryUpdate[] = [];
  registry.subscribe((update) => updates.push(update));
  return updates;
}

const KEY = 'default/greeter:50051';

test('a new service is one reset carrying the whole service', () => {
  const registry = new EndpointRegistry();
  const updates = recorded(registry);
  const service = svc('greeter', [ep('10.0.0.1'), ep('10.0.0.2')], { clusterIPs: ['10.96.0.10'] });
  registry.upsert(service);
  assert.deepEqual(updates, [{ type: 'reset', key: KEY, service }]);
  assert.deepEqual(registry.get(KEY), service);
  assert.deepEqual(registry.keys(), [KEY]);
});

function startedWith(services: ServiceSpec[]): { registry: EndpointRegistry; updates: RegistryUpdate[] } {
  const registry = new EndpointRegistry();
  registry.replaceAll(services);
  const updates: RegistryUpdate[] = [];
  registry.subscribe((update) => updates.push(update));
  updates.length = 0; // drop the replayed resets; each test asserts only what its change emits
  return { registry, updates };
}

test('an endpoint added is one add', () => {
  const { registry, updates } = startedWith([svc('greeter', [ep('10.0.0.1')])]);
  registry.upsert(svc('greeter', [ep('10.0.0.1'), ep('10.0.0.2')]));
  assert.deepEqual(updates, [{ type: 'add', key: KEY, endpoint: ep('10.0.0.2') }]);
});

test('an endpoint removed is one remove', () => {
  const { registry, updates } = startedWith([svc('greeter', [ep('10.0.0.1'), ep('10.0.0.2')])]);
  registry.upsert(svc('greeter', [ep('10.0.0.2')]));
  assert.deepEqual(updates, [{ type: 'remove', key: KEY, address: '10.0.0.1:50051' }]);
});

test('an endpoint that becomes terminating is one drain with its new state', () => {
  const { registry, updates } = startedWith([svc('greeter', [ep('10.0.0.1'), ep('10.0.0.2')])]);
  registry.upsert(svc('greeter', [ep('10.0.0.1', 'terminating'), ep('10.0.0.2')]));
  assert.deepEqual(updates, [
    { type: 'drain', key: KEY, address: '10.0.0.1:50051', endpoint: ep('10.0.0.1', 'terminating') },
  ]);
});

test('all endpoints terminating but serving: a drain each, in listed order', () => {
  const { registry, updates } = startedWith([svc('greeter', [ep('10.0.0.1'), ep('10.0.0.2')])]);
  registry.upsert(svc('greeter', [ep('10.0.0.2', 'terminating'), ep('10.0.0.1', 'terminating')]));
  assert.deepEqual(updates, [
    { type: 'drain', key: KEY, address: '10.0.0.2:50051', endpoint: ep('10.0.0.2', 'terminating') },
    { type: 'drain', key: KEY, address: '10.0.0.1:50051', endpoint: ep('10.0.0.1', 'terminating') },
  ]);
});

test('serving=false: a terminating endpoint that stops serving drains again, a not-ready one drains', () => {
  const { registry, updates } = startedWith([
    svc('greeter', [ep('10.0.0.1', 'terminating'), ep('10.0.0.2'), ep('10.0.0.3')]),
  ]);
  registry.upsert(svc('greeter', [ep('10.0.0.1', 'gone-dark'), ep('10.0.0.2', 'not-ready'), ep('10.0.0.3')]));
  assert.deepEqual(updates, [
    { type: 'drain', key: KEY, address: '10.0.0.1:50051', endpoint: ep('10.0.0.1', 'gone-dark') },
    { type: 'drain', key: KEY, address: '10.0.0.2:50051', endpoint: ep('10.0.0.2', 'not-ready') },
  ]);
  for (const update of updates) if (update.type === 'drain') assert.equal(update.endpoint.serving, false);
});

test('an endpoint ready again is an add with its new state', () => {
  const { registry, updates } = startedWith([svc('greeter', [ep('10.0.0.1', 'not-ready')])]);
  registry.upsert(svc('greeter', [ep('10.0.0.1')]));
  assert.deepEqual(updates, [{ type: 'add', key: KEY, endpoint: ep('10.0.0.1') }]);
});

test('several changes at once: removes, then drains, then adds', () => {
  const { registry, updates } = startedWith([svc('greeter', [ep('10.0.0.1'), ep('10.0.0.2'), ep('10.0.0.3')])]);
  registry.upsert(svc('greeter', [ep('10.0.0.4'), ep('10.0.0.3', 'terminating'), ep('10.0.0.2')]));
  assert.deepEqual(updates, [
    { type: 'remove', key: KEY, address: '10.0.0.1:50051' },
    { type: 'drain', key: KEY, address: '10.0.0.3:50051', endpoint: ep('10.0.0.3', 'terminating') },
    { type: 'add', key: KEY, endpoint: ep('10.0.0.4') },
  ]);
});

test('a changed balancer override is a reset (and no per-endpoint updates with it)', () => {
  const { registry, updates } = startedWith([svc('greeter', [ep('10.0.0.1')])]);
  const next = svc('greeter', [ep('10.0.0.1'), ep('10.0.0.2')], { balancer: 'round-robin' });
  registry.upsert(next);
  assert.deepEqual(updates, [{ type: 'reset', key: KEY, service: next }]);
});

test('changed clusterIPs are a reset; reordered ones are no change', () => {
  const { registry, updates } = startedWith([svc('greeter', [ep('10.0.0.1')], { clusterIPs: ['10.96.0.10', 'fd00::a'] })]);
  registry.upsert(svc('greeter', [ep('10.0.0.1')], { clusterIPs: ['fd00::a', '10.96.0.10'] }));
  assert.deepEqual(updates, []);
  const next = svc('greeter', [ep('10.0.0.1')], { clusterIPs: ['10.96.0.11'] });
  registry.upsert(next);
  assert.deepEqual(updates, [{ type: 'reset', key: KEY, service: next }]);
});

test('a service gone from a snapshot is a delete; remove(key) too, once', () => {
  const { registry, updates } = startedWith([svc('greeter', [ep('10.0.0.1')]), svc('other', [ep('10.0.1.1')])]);
  registry.replaceAll([svc('other', [ep('10.0.1.1')])]);
  assert.deepEqual(updates, [{ type: 'delete', key: KEY }]);
  assert.equal(registry.get(KEY), undefined);
  assert.equal(registry.remove('default/other:50051'), true);
  assert.equal(registry.remove('default/other:50051'), false);
  assert.deepEqual(updates, [
    { type: 'delete', key: KEY },
    { type: 'delete', key: 'default/other:50051' },
  ]);
  assert.equal(registry.size, 0);
});

test('a snapshot: deletes first, then the given services in order', () => {
  const { registry, updates } = startedWith([svc('a', [ep('10.0.0.1')]), svc('b', [ep('10.0.0.2')])]);
  const c = svc('c', [ep('10.0.0.3')]);
  registry.replaceAll([c, svc('b', [ep('10.0.0.2'), ep('10.0.0.4')])]);
  assert.deepEqual(updates, [
    { type: 'delete', key: 'default/a:50051' },
    { type: 'reset', key: 'default/c:50051', service: c },
    { type: 'add', key: 'default/b:50051', endpoint: ep('10.0.0.4') },
  ]);
});

test('a snapshot that changes nothing emits nothing (new objects, endpoints in another order)', () => {
  const { registry, updates } = startedWith([svc('greeter', [ep('10.0.0.1'), ep('10.0.0.2', 'terminating')])]);
  registry.replaceAll([svc('greeter', [ep('10.0.0.2', 'terminating'), ep('10.0.0.1')])]);
  registry.upsert(svc('greeter', [ep('10.0.0.1'), ep('10.0.0.2', 'terminating')]));
  assert.deepEqual(updates, []);
});

test('subscribe replays a reset per known service; unsubscribe stops delivery', () => {
  const registry = new EndpointRegistry();
  const a = svc('a', [ep('10.0.0.1')]);
  const b = svc('b', [ep('10.0.0.2')]);
  registry.replaceAll([a, b]);
  const updates: RegistryUpdate[] = [];
  const unsubscribe = registry.subscribe((update) => updates.push(update));
  assert.deepEqual(updates, [
    { type: 'reset', key: 'default/a:50051', service: a },
    { type: 'reset', key: 'default/b:50051', service: b },
  ]);
  unsubscribe();
  registry.remove('default/a:50051');
  assert.equal(updates.length, 2);
});

test('a throwing listener does not stop the others; the error reaches the caller after delivery', () => {
  const registry = new EndpointRegistry();
  const seen: string[] = [];
  registry.subscribe(() => {
    throw new Error('listener bug');
  });
  registry.subscribe((update) => seen.push(update.type));
  assert.throws(() => registry.replaceAll([svc('a', [ep('10.0.0.1')]), svc('b', [ep('10.0.0.2')])]), /listener bug/);
  assert.deepEqual(seen, ['reset', 'reset']);
  assert.deepEqual(registry.keys(), ['default/a:50051', 'default/b:50051']);
});

test('malformed input throws and changes nothing', () => {
  const { registry, updates } = startedWith([svc('a', [ep('10.0.0.1')])]);
  assert.throws(() => registry.replaceAll([svc('b', []), svc('b', [])]), /duplicate service default\/b:50051/);
  assert.throws(() => registry.upsert({ ...svc('b', []), key: 'default/c:50051' }), /does not match/);
  assert.deepEqual(registry.keys(), ['default/a:50051']);
  assert.deepEqual(updates, []);
});

test('stored specs are frozen copies; an endpoint listed twice keeps its most usable state', () => {
  const registry = new EndpointRegistry();
  const input = svc('greeter', [ep('10.0.0.1', 'terminating'), ep('10.0.0.1'), ep('10.0.0.1', 'not-ready')]);
  registry.upsert(input);
  input.endpoints.push(ep('10.0.0.9'));
  const stored = registry.get(KEY) as ServiceSpec;
  assert.deepEqual(stored.endpoints, [ep('10.0.0.1')]);
  assert.ok(Object.isFrozen(stored) && Object.isFrozen(stored.endpoints) && Object.isFrozen(stored.endpoints[0]));
});

test('address index: every ClusterIP:port and endpoint ip:port, and nothing else', () => {
  const registry = new EndpointRegistry();
  registry.upsert(svc('greeter', [ep('10.0.0.1', 'ready', 8080), ep('10.0.0.2', 'terminating', 8080)], { clusterIPs: ['10.96.0.10', 'fd00::10'] }));
  for (const [ip, port] of [
    ['10.96.0.10', 50051],
    ['fd00::10', 50051],
    ['10.0.0.1', 8080],
    ['10.0.0.2', 8080],
  ] as const) {
    assert.equal(registry.lookupByAddress(ip, port)?.key, KEY, `${ip} ${port}`);
  }
  assert.equal(registry.lookupByAddress('10.96.0.10', 8080), undefined, 'a ClusterIP on the target port');
  assert.equal(registry.lookupByAddress('10.0.0.1', 50051), undefined, 'an endpoint IP on the service port');
  assert.equal(registry.lookupByAddress('10.0.0.3', 8080), undefined);
});

test('address index follows changes and is empty once the service is gone', () => {
  const registry = new EndpointRegistry();
  registry.upsert(svc('greeter', [ep('10.0.0.1'), ep('10.0.0.2')], { clusterIPs: ['10.96.0.10'] }));
  registry.upsert(svc('greeter', [ep('10.0.0.2'), ep('10.0.0.3')], { clusterIPs: ['10.96.0.10'] }));
  assert.equal(registry.lookupByAddress('10.0.0.1', 50051), undefined);
  assert.equal(registry.lookupByAddress('10.0.0.3', 50051)?.key, KEY);
  registry.upsert(svc('greeter', [ep('10.0.0.2'), ep('10.0.0.3')], { clusterIPs: ['10.96.0.11'] }));
  assert.equal(registry.lookupByAddress('10.96.0.10', 50051), undefined);
  assert.equal(registry.lookupByAddress('10.96.0.11', 50051)?.key, KEY);
  // The lookup returns the current spec, not the one stored when the address was first claimed.
  assert.equal(registry.lookupByAddress('10.0.0.2', 50051), registry.get(KEY));
  registry.replaceAll([]);
  for (const ip of ['10.96.0.10', '10.96.0.11', '10.0.0.1', '10.0.0.2', '10.0.0.3']) {
    assert.equal(registry.lookupByAddress(ip, 50051), undefined, ip);
  }
  assert.equal((registry as unknown as { byAddress: Map<string, unknown> }).byAddress.size, 0, 'no entry left behind');
});

test('an address two services claim: ClusterIP first, then first come, and the next takes over', () => {
  const registry = new EndpointRegistry();
  registry.upsert(svc('first', [ep('10.0.0.1')]));
  registry.upsert(svc('second', [ep('10.0.0.1')]));
  assert.equal(registry.lookupByAddress('10.0.0.1', 50051)?.name, 'first');
  registry.upsert(svc('first', [ep('10.0.0.1'), ep('10.0.0.5')]));
  assert.equal(registry.lookupByAddress('10.0.0.1', 50051)?.name, 'first', 'an unrelated change does not move it');
  registry.remove('default/first:50051');
  assert.equal(registry.lookupByAddress('10.0.0.1', 50051)?.name, 'second');
  registry.upsert(svc('vip', [], { clusterIPs: ['10.0.0.1'] }));
  assert.equal(registry.lookupByAddress('10.0.0.1', 50051)?.name, 'vip');
  registry.remove('default/vip:50051');
  assert.equal(registry.lookupByAddress('10.0.0.1', 50051)?.name, 'second');
});

test('address lookups accept other spellings of the same IP', () => {
  const registry = new EndpointRegistry();
  registry.upsert(svc('greeter', [ep('fd00::1')], { clusterIPs: ['10.96.0.10', 'FD00::A'] }));
  assert.equal(registry.lookupByAddress('::ffff:10.96.0.10', 50051)?.key, KEY);
  assert.equal(registry.lookupByAddress('[fd00::a]', 50051)?.key, KEY);
  assert.equal(registry.lookupByAddress('FD00::1', 50051)?.key, KEY);
  assert.equal(normalizeIp('::FFFF:1.2.3.4'), '1.2.3.4');
  assert.equal(normalizeIp('[::1]'), '::1');
  assert.equal(normalizeIp('10.0.0.1'), '10.0.0.1');
});

test('a batch listener gets each change at once, current services as one batch of resets, before per-update listeners', () => {
  const registry = new EndpointRegistry();
  registry.upsert(svc('greeter', [ep('10.0.0.1')]));
  const order: string[] = [];
  const batches: RegistryUpdate[][] = [];
  registry.subscribe((update) => order.push(`one ${update.type}`));
  const stop = registry.subscribeBatches((updates) => {
    batches.push([...updates]);
    order.push(`batch ${updates.length}`);
  });
  assert.deepEqual(batches.map((b) => b.map((u) => u.type)), [['reset']]);
  order.length = 0;
  registry.upsert(svc('greeter', [ep('10.0.0.1'), ep('10.0.0.2'), ep('10.0.0.3')]));
  assert.deepEqual(batches[1].map((u) => u.type), ['add', 'add']);
  assert.deepEqual(order, ['batch 2', 'one add', 'one add']);
  stop();
  registry.remove(KEY);
  assert.equal(batches.length, 2);
});
