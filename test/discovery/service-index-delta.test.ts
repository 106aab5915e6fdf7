// The index's slice deltas: a change updates exactly what changed, and always ends where a rebuild from scratch would.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EndpointSliceRecord, SliceEndpoint } from '../../agent/discovery/kube-objects.ts';
import { ServiceIndex } from '../../agent/discovery/service-index.ts';
import { EndpointRegistry } from '../../agent/registry/endpoint-registry.ts';
import type { EndpointSpec, ServiceSpec } from '../../agent/registry/endpoint.ts';
import { seededRandom } from '../support/seeded-random.ts';
import {
  add,
  drain,
  endpointSpec,
  indexUnderTest,
  invalidSliceRecord,
  remove,
  serviceRecord,
  sliceEndpoint,
  sliceRecord,
} from '../support/service-records.ts';

const KEY = 'default/greeter:50051';

function ip(n: number): string {
  return `10.1.${n >> 8}.${n & 255}`;
}

/** `slices` slices of `perSlice` active endpoints each, numbered from 0 across the slices. */
function bigService(slices: number, perSlice: number): EndpointSliceRecord[] {
  return Array.from({ length: slices }, (_, s) =>
    sliceRecord(`greeter-${s}`, 'greeter', Array.from({ length: perSlice }, (_, i) => ip(s * perSlice + i))),
  );
}

test('one endpoint of 1,000 flips: exactly one drain, then exactly one add; nothing else moves', () => {
  const { registry, index, updates } = indexUnderTest();
  index.applyService(serviceRecord('greeter'));
  const slices = bigService(10, 100);
  for (const slice of slices) index.applySlice(slice);
  const before = registry.get(KEY) as ServiceSpec;
  assert.equal(before.endpoints.length, 1000);
  updates.length = 0;

  const endpoints: Array<string | SliceEndpoint> = slices[4].endpoints.map((e) => e.addresses[0]);
  endpoints[37] = sliceEndpoint(ip(437), 'not-ready');
  assert.deepEqual(index.applySlice(sliceRecord('greeter-4', 'greeter', endpoints, { resourceVersion: '2' })), [KEY]);
  assert.deepEqual(updates, [drain(KEY, endpointSpec(ip(437), 50051, 'not-ready'))]);
  const after = registry.get(KEY) as ServiceSpec;
  assert.equal(after.endpoints.length, 1000);
  // Every other endpoint is the very object held before: nothing was rebuilt.
  const changed = after.endpoints.filter((e, i) => e !== before.endpoints[i]).map((e) => e.address);
  assert.deepEqual(changed, [`${ip(437)}:50051`]);

  updates.length = 0;
  assert.deepEqual(index.applySlice({ ...slices[4], metadata: { ...slices[4].metadata, resourceVersion: '3' } }), [KEY]);
  assert.deepEqual(updates, [add(KEY, endpointSpec(ip(437)))]);
  assert.deepEqual(registry.get(KEY), before, 'back to the first state, in the first order');
});

test('an endpoint added to and one removed from a slice: one add, one remove', () => {
  const { index, updates } = indexUnderTest();
  index.applyService(serviceRecord('greeter'));
  for (const slice of bigService(3, 50)) index.applySlice(slice);
  updates.length = 0;
  const listed = Array.from({ length: 50 }, (_, i) => ip(50 + i)).filter((a) => a !== ip(60));
  listed.push('10.2.0.1');
  assert.deepEqual(index.applySlice(sliceRecord('greeter-1', 'greeter', listed, { resourceVersion: '2' })), [KEY]);
  assert.deepEqual(updates, [remove(KEY, endpointSpec(ip(60))), add(KEY, endpointSpec('10.2.0.1'))]);
});

test('an endpoint in two slices is listed once; the more usable state wins, the first slice on a tie', () => {
  const { registry, index, updates } = indexUnderTest();
  index.applyService(serviceRecord('greeter'));
  const shared = '10.0.0.9';
  index.applySlice(sliceRecord('a', 'greeter', ['10.0.0.1', sliceEndpoint(shared, 'not-ready')]));
  index.applySlice(sliceRecord('b', 'greeter', [shared]));
  const address = `${shared}:50051`;
  assert.deepEqual(registry.get(KEY)?.endpoints.filter((e) => e.address === address), [endpointSpec(shared)]);

  // The active listing leaves: the other slice's state takes over.
  updates.length = 0;
  index.applySlice(sliceRecord('b', 'greeter', [], { resourceVersion: '2' }));
  assert.deepEqual(updates, [drain(KEY, endpointSpec(shared, 50051, 'not-ready'))]);

  // Two listings of equal rank (terminating and serving vs serving, not ready): the first slice's wins, and a change
  // of the second one's changes nothing.
  const servingNotReady: SliceEndpoint = { addresses: [shared], ready: false, serving: true, terminating: false };
  index.applySlice(sliceRecord('a', 'greeter', ['10.0.0.1', sliceEndpoint(shared, 'terminating')], { resourceVersion: '2' }));
  updates.length = 0;
  index.applySlice(sliceRecord('b', 'greeter', [servingNotReady], { resourceVersion: '3' }));
  assert.deepEqual(updates, []);
  assert.deepEqual(registry.get(KEY)?.endpoints.find((e) => e.address === address), endpointSpec(shared, 50051, 'terminating'));

  // The first slice lets go: the second's listing is now the one.
  index.applySlice(sliceRecord('a', 'greeter', ['10.0.0.1'], { resourceVersion: '3' }));
  assert.deepEqual(registry.get(KEY)?.endpoints.find((e) => e.address === address), { ...endpointSpec(shared), ready: false });

  // Gone from both: one remove.
  updates.length = 0;
  index.deleteSlice(sliceRecord('b', 'greeter', []));
  assert.deepEqual(updates, [remove(KEY, endpointSpec(shared))]);
});

test('a slice that moves to another Service: removes from the first, adds to the second, both keys returned', () => {
  const { registry, index, updates } = indexUnderTest();
  index.applyService(serviceRecord('one'));
  index.applyService(serviceRecord('two', { clusterIPs: ['10.96.0.11'] }));
  index.applySlice(sliceRecord('s', 'one', ['10.0.0.1', '10.0.0.2']));
  index.applySlice(sliceRecord('t', 'one', ['10.0.0.2']));
  updates.length = 0;
  assert.deepEqual(index.applySlice(sliceRecord('s', 'two', ['10.0.0.1', '10.0.0.2'], { resourceVersion: '2' })), [
    'default/one:50051',
    'default/two:50051',
  ]);
  // 10.0.0.2 stays in one (slice t lists it); 10.0.0.1 leaves.
  assert.deepEqual(updates, [
    remove('default/one:50051', endpointSpec('10.0.0.1')),
    add('default/two:50051', endpointSpec('10.0.0.1')),
    add('default/two:50051', endpointSpec('10.0.0.2')),
  ]);
  assert.deepEqual(registry.get('default/one:50051')?.endpoints, [endpointSpec('10.0.0.2')]);
  // The address index follows: 10.0.0.1 is two's now; 10.0.0.2 stays with one, which listed it first.
  assert.equal(registry.lookupByAddress('10.0.0.1', 50051)?.key, 'default/two:50051');
  assert.equal(registry.lookupByAddress('10.0.0.2', 50051)?.key, 'default/one:50051');
});

test('an invalid version keeps the last good one; the next valid version is diffed against it; deletion applies', () => {
  const { index, updates } = indexUnderTest();
  index.applyService(serviceRecord('greeter'));
  index.applySlice(sliceRecord('a', 'greeter', ['10.0.0.1', '10.0.0.2']));
  updates.length = 0;
  assert.deepEqual(index.applySlice(invalidSliceRecord('a', '2')), []);
  assert.deepEqual(updates, []);
  assert.equal(index.describe().slicesOnLastGood, 1);
  assert.deepEqual(index.applySlice(sliceRecord('a', 'greeter', ['10.0.0.2', '10.0.0.3'], { resourceVersion: '3' })), [KEY]);
  assert.deepEqual(updates, [remove(KEY, endpointSpec('10.0.0.1')), add(KEY, endpointSpec('10.0.0.3'))]);
  index.applySlice(invalidSliceRecord('a', '4'));
  updates.length = 0;
  assert.deepEqual(index.deleteSlice(invalidSliceRecord('a', '4')), [KEY]);
  assert.deepEqual(updates, [remove(KEY, endpointSpec('10.0.0.2')), remove(KEY, endpointSpec('10.0.0.3'))]);
});

test('a Service update that changes none of its ports, clusterIPs or balancer changes nothing', () => {
  const { index, updates } = indexUnderTest();
  index.applyService(serviceRecord('greeter'));
  index.applySlice(sliceRecord('a', 'greeter', ['10.0.0.1']));
  updates.length = 0;
  assert.deepEqual(index.applyService(serviceRecord('greeter', { resourceVersion: '2' })), []);
  assert.deepEqual(updates, []);
  // A port renamed is a change: the slice port of the new name carries it (none here: no endpoints).
  assert.deepEqual(index.applyService(serviceRecord('greeter', { resourceVersion: '3', ports: [{ name: 'h2c', port: 50051 }] })), [KEY]);
  assert.deepEqual(updates, [remove(KEY, endpointSpec('10.0.0.1'))]);
});

/** Endpoints by address, for comparing two specs whatever their order. */
function byAddress(spec: ServiceSpec | undefined): Map<string, EndpointSpec> {
  return new Map((spec?.endpoints ?? []).map((e) => [e.address, e]));
}

test('model: after any sequence of slice events the registry holds what a fresh index of the same slices builds', () => {
  const random = seededRandom(2024);
  const states = ['active', 'terminating', 'dark', 'not-ready'] as const;
  const owners = ['greeter', 'other', null] as const;
  /** Slice id → its latest valid record; `filed` keeps each Service's slices in the order they were filed under it. */
  const current = new Map<string, EndpointSliceRecord>();
  const filed = new Map<string, string[]>();
  const { registry, index } = indexUnderTest();
  index.applyService(serviceRecord('greeter'));
  index.applyService(serviceRecord('other', { clusterIPs: ['10.96.0.11'], ports: [{ name: 'grpc', port: 50051 }, { name: 'alt', port: 9000 }] }));
  const unfile = (id: string): void => {
    for (const ids of filed.values()) if (ids.includes(id)) ids.splice(ids.indexOf(id), 1);
  };
  for (let step = 0; step < 1500; step++) {
    const id = `s${Math.floor(random() * 8)}`;
    const draw = random();
    if (draw < 0.1) {
      index.deleteSlice(sliceRecord(id, null, []));
      current.delete(id);
      unfile(id);
    } else if (draw < 0.15) {
      // An unreadable version: the last good one stays, filed where it was.
      index.applySlice(invalidSliceRecord(id, String(step)));
    } else {
      // Few addresses, so that slices overlap; ports vary so that one address is on several slice ports.
      const endpoints = Array.from({ length: Math.floor(random() * 6) }, () =>
        sliceEndpoint(`10.0.0.${Math.floor(random() * 10)}`, states[Math.floor(random() * states.length)]),
      );
      const owner = random() < 0.85 ? owners[Math.floor(random() * 2)] : owners[2];
      const ports = random() < 0.5 ? [{ name: 'grpc', port: 50051 }] : [{ name: 'grpc', port: 50051 }, { name: 'alt', port: 9000 + Math.floor(random() * 2) }];
      const record = sliceRecord(id, owner, endpoints, { resourceVersion: String(step), ports });
      const previousOwner = current.get(id)?.serviceName ?? null;
      if (previousOwner !== owner) {
        unfile(id);
        if (owner !== null) filed.set(owner, [...(filed.get(owner) ?? []), id]);
      }
      if (owner === null) current.delete(id);
      else current.set(id, record);
      index.applySlice(record);
    }
    // The reference: a fresh index fed the Services, then the current slices in their filing order.
    const reference = new EndpointRegistry();
    const fresh = new ServiceIndex(reference);
    for (const owner of ['greeter', 'other']) for (const sliceId of filed.get(owner) ?? []) fresh.applySlice(current.get(sliceId) as EndpointSliceRecord);
    fresh.applyService(serviceRecord('greeter'));
    fresh.applyService(serviceRecord('other', { clusterIPs: ['10.96.0.11'], ports: [{ name: 'grpc', port: 50051 }, { name: 'alt', port: 9000 }] }));
    for (const key of ['default/greeter:50051', 'default/other:50051', 'default/other:9000']) {
      assert.deepEqual(byAddress(registry.get(key)), byAddress(reference.get(key)), `step ${step}, ${key}`);
    }
  }
});
