// The service index's registry updates: ports, dual stack, several slices, moves, arrival order, the address index.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  add,
  CLUSTER_IP,
  drain,
  endpointSpec,
  grpcPort,
  indexUnderTest,
  remove,
  reset,
  serviceRecord,
  serviceSpec,
  sliceEndpoint,
  sliceRecord,
} from '../support/service-records.ts';

const KEY = 'default/greeter:50051';

test('a Service without slices is a spec with no endpoints, found by its ClusterIP:port', () => {
  const { registry, index, updates } = indexUnderTest();
  assert.deepEqual(index.applyService(serviceRecord('greeter')), [KEY]);
  assert.deepEqual(updates, [reset(serviceSpec('greeter', []))]);
  assert.equal(registry.lookupByAddress(CLUSTER_IP, 50051)?.key, KEY);
  assert.equal(registry.lookupByAddress(CLUSTER_IP, 50052), undefined);
});

test('slices after their Service: one add per endpoint in listed order; state changes are drains; no-ops are silent', () => {
  const { registry, index, updates } = indexUnderTest();
  index.applyService(serviceRecord('greeter'));
  updates.length = 0;
  assert.deepEqual(index.applySlice(sliceRecord('greeter-a', 'greeter', ['10.0.0.1', '10.0.0.2'])), [KEY]);
  assert.deepEqual(updates, [add(KEY, endpointSpec('10.0.0.1')), add(KEY, endpointSpec('10.0.0.2'))]);
  assert.equal(registry.lookupByAddress('10.0.0.2', 50051)?.key, KEY);

  updates.length = 0;
  const terminating = sliceEndpoint('10.0.0.2', 'terminating');
  const changed = index.applySlice(sliceRecord('greeter-a', 'greeter', ['10.0.0.1', terminating], { resourceVersion: '2' }));
  assert.deepEqual(changed, [KEY]);
  assert.deepEqual(updates, [drain(KEY, endpointSpec('10.0.0.2', 50051, 'terminating'))]);

  updates.length = 0;
  assert.deepEqual(index.applySlice(sliceRecord('greeter-a', 'greeter', ['10.0.0.1', terminating], { resourceVersion: '3' })), []);
  assert.deepEqual(updates, []);
});

test('a slice that comes before its Service is held and used when the Service arrives', () => {
  const { index, updates } = indexUnderTest();
  assert.deepEqual(index.applySlice(sliceRecord('greeter-a', 'greeter', ['10.0.0.1'])), []);
  assert.deepEqual(updates, []);
  assert.equal(index.describe().slicesWaiting, 1);
  assert.deepEqual(index.applyService(serviceRecord('greeter')), [KEY]);
  assert.deepEqual(updates, [reset(serviceSpec('greeter', [endpointSpec('10.0.0.1')]))]);
  assert.equal(index.describe().slicesWaiting, 0);
});

test('port ≠ targetPort: the slice port named like the Service port gives the number to dial', () => {
  const { registry, index, updates } = indexUnderTest();
  index.applyService(serviceRecord('greeter', { ports: [grpcPort(80)] }));
  const slice = sliceRecord('greeter-a', 'greeter', ['10.0.0.1'], {
    ports: [
      { name: 'metrics', port: 9090 },
      { name: 'grpc', port: 8443 },
    ],
  });
  assert.deepEqual(index.applySlice(slice), ['default/greeter:80']);
  assert.deepEqual(updates, [
    reset(serviceSpec('greeter', [], { port: 80 })),
    add('default/greeter:80', endpointSpec('10.0.0.1', 8443)),
  ]);
  assert.equal(registry.lookupByAddress(CLUSTER_IP, 80)?.key, 'default/greeter:80');
  assert.equal(registry.lookupByAddress('10.0.0.1', 8443)?.key, 'default/greeter:80');
  assert.equal(registry.lookupByAddress('10.0.0.1', 80), undefined);
  assert.equal(registry.lookupByAddress('10.0.0.1', 9090), undefined);
});

test('the single unnamed Service port matches the unnamed slice port', () => {
  const { index, updates } = indexUnderTest();
  index.applySlice(sliceRecord('greeter-a', 'greeter', ['10.0.0.1'], { ports: [{ name: '', port: 9000 }] }));
  index.applyService(serviceRecord('greeter', { ports: [grpcPort(50051, '')] }));
  assert.deepEqual(updates, [reset(serviceSpec('greeter', [endpointSpec('10.0.0.1', 9000)]))]);
});

test('a slice without the port a gRPC Service port names contributes nothing to that port', () => {
  const { index, updates } = indexUnderTest();
  index.applyService(serviceRecord('greeter'));
  updates.length = 0;
  assert.deepEqual(index.applySlice(sliceRecord('greeter-a', 'greeter', ['10.0.0.1'], { ports: [{ name: 'http', port: 8080 }] })), []);
  assert.deepEqual(updates, []);
});

test('multi-port: each gRPC port is its own key with endpoints on its own slice port', () => {
  const { registry, index, updates } = indexUnderTest();
  const admin = 'default/greeter:9090';
  assert.deepEqual(index.applyService(serviceRecord('greeter', { ports: [grpcPort(50051), grpcPort(9090, 'grpc-admin')] })), [KEY, admin]);
  const ports = [
    { name: 'http', port: 8080 },
    { name: 'grpc-admin', port: 9091 },
    { name: 'grpc', port: 50052 },
  ];
  assert.deepEqual(index.applySlice(sliceRecord('greeter-a', 'greeter', ['10.0.0.1'], { ports })), [KEY, admin]);
  assert.deepEqual(updates, [
    reset(serviceSpec('greeter', [])),
    reset(serviceSpec('greeter', [], { port: 9090 })),
    add(KEY, endpointSpec('10.0.0.1', 50052)),
    add(admin, endpointSpec('10.0.0.1', 9091)),
  ]);
  assert.equal(registry.lookupByAddress('10.0.0.1', 9091)?.key, admin);
  assert.equal(registry.lookupByAddress('10.0.0.1', 50052)?.key, KEY);
  assert.equal(registry.lookupByAddress('10.0.0.1', 8080), undefined);
  assert.equal(registry.lookupByAddress(CLUSTER_IP, 9090)?.key, admin);

  // The admin port disappears from the slice (a pod template change): only that key changes.
  updates.length = 0;
  const onlyGrpc = sliceRecord('greeter-a', 'greeter', ['10.0.0.1'], { ports: [{ name: 'grpc', port: 50052 }], resourceVersion: '2' });
  assert.deepEqual(index.applySlice(onlyGrpc), [admin]);
  assert.deepEqual(updates, [remove(admin, endpointSpec('10.0.0.1', 9091))]);
});

test('dual stack: the IPv4 and the IPv6 slice merge into one spec per port', () => {
  const { registry, index, updates } = indexUnderTest();
  const clusterIPs = [CLUSTER_IP, 'fd00::10'];
  index.applyService(serviceRecord('greeter', { clusterIPs }));
  assert.deepEqual(index.applySlice(sliceRecord('greeter-v4', 'greeter', ['10.0.0.1'])), [KEY]);
  assert.deepEqual(index.applySlice(sliceRecord('greeter-v6', 'greeter', ['fd00::1'], { addressType: 'IPv6' })), [KEY]);
  const v6 = endpointSpec('fd00::1');
  assert.equal(v6.address, '[fd00::1]:50051');
  assert.deepEqual(updates, [reset(serviceSpec('greeter', [], { clusterIPs })), add(KEY, endpointSpec('10.0.0.1')), add(KEY, v6)]);
  assert.deepEqual(registry.get(KEY), serviceSpec('greeter', [endpointSpec('10.0.0.1'), v6], { clusterIPs }));
  for (const [ip, port] of [
    ['fd00::10', 50051],
    [CLUSTER_IP, 50051],
    ['fd00::1', 50051],
    ['FD00::1', 50051],
    ['[fd00::1]', 50051],
    ['10.0.0.1', 50051],
  ] as const) {
    assert.equal(registry.lookupByAddress(ip, port)?.key, KEY, `${ip} ${port}`);
  }
});

test('several slices: each adds its own endpoints, deleting one removes only its own', () => {
  const { registry, index, updates } = indexUnderTest();
  index.applyService(serviceRecord('greeter'));
  index.applySlice(sliceRecord('greeter-a', 'greeter', ['10.0.0.1', '10.0.0.2']));
  index.applySlice(sliceRecord('greeter-b', 'greeter', ['10.0.0.3']));
  index.applySlice(sliceRecord('greeter-c', 'greeter', ['10.0.0.4']));
  assert.deepEqual(
    registry.get(KEY)?.endpoints.map((e) => e.address),
    ['10.0.0.1:50051', '10.0.0.2:50051', '10.0.0.3:50051', '10.0.0.4:50051'],
  );
  updates.length = 0;
  assert.deepEqual(index.deleteSlice(sliceRecord('greeter-a', 'greeter', ['10.0.0.1', '10.0.0.2'])), [KEY]);
  assert.deepEqual(updates, [remove(KEY, endpointSpec('10.0.0.1')), remove(KEY, endpointSpec('10.0.0.2'))]);
  assert.equal(registry.lookupByAddress('10.0.0.1', 50051), undefined);
  assert.equal(registry.lookupByAddress('10.0.0.3', 50051)?.key, KEY);
  assert.deepEqual(index.describe().slices, 2);
});

test('an endpoint moving between slices is one endpoint all along: the move emits nothing', () => {
  const { registry, index, updates } = indexUnderTest();
  index.applyService(serviceRecord('greeter'));
  index.applySlice(sliceRecord('greeter-a', 'greeter', ['10.0.0.1', '10.0.0.2']));
  index.applySlice(sliceRecord('greeter-b', 'greeter', ['10.0.0.3']));
  updates.length = 0;
  // The controller lists it in the new slice first, then drops it from the old one.
  assert.deepEqual(index.applySlice(sliceRecord('greeter-b', 'greeter', ['10.0.0.3', '10.0.0.2'], { resourceVersion: '2' })), []);
  assert.equal(registry.get(KEY)?.endpoints.length, 3);
  assert.deepEqual(index.applySlice(sliceRecord('greeter-a', 'greeter', ['10.0.0.1'], { resourceVersion: '2' })), []);
  assert.deepEqual(updates, []);
  assert.equal(registry.lookupByAddress('10.0.0.2', 50051)?.key, KEY);
});

test('an address listed by two slices takes the better state: active > serving-terminating > not serving', () => {
  const { index, updates } = indexUnderTest();
  index.applyService(serviceRecord('greeter'));
  updates.length = 0;
  const ip = '10.0.0.1';
  const a = (state: 'active' | 'terminating' | 'not-ready', rv: string) => sliceRecord('a', 'greeter', [sliceEndpoint(ip, state)], { resourceVersion: rv });
  const b = (state: 'active' | 'terminating' | 'not-ready', rv: string) => sliceRecord('b', 'greeter', [sliceEndpoint(ip, state)], { resourceVersion: rv });
  assert.deepEqual(index.applySlice(a('not-ready', '1')), [KEY]);
  assert.deepEqual(index.applySlice(b('terminating', '1')), [KEY]); // serving-terminating beats not serving
  assert.deepEqual(index.applySlice(b('active', '2')), [KEY]); // active beats both
  assert.deepEqual(index.applySlice(a('terminating', '2')), []); // the other slice is still active
  assert.deepEqual(index.applySlice(a('active', '3')), []); // a tie changes nothing
  assert.deepEqual(index.applySlice(b('not-ready', '3')), []); // the other slice is active
  assert.deepEqual(index.deleteSlice(a('active', '3')), [KEY]);
  assert.deepEqual(updates, [
    add(KEY, endpointSpec(ip, 50051, 'not-ready')),
    drain(KEY, endpointSpec(ip, 50051, 'terminating')),
    add(KEY, endpointSpec(ip, 50051, 'active')),
    drain(KEY, endpointSpec(ip, 50051, 'not-ready')),
  ]);
});

test('selector change, old slice deleted before the new one arrives: removes, then adds', () => {
  const { registry, index, updates } = indexUnderTest();
  index.applyService(serviceRecord('greeter'));
  const old = sliceRecord('greeter-old', 'greeter', ['10.0.0.1', '10.0.0.2']);
  index.applySlice(old);
  updates.length = 0;
  // The selector is not in the record: the new Service version changes nothing by itself.
  assert.deepEqual(index.applyService(serviceRecord('greeter', { resourceVersion: '2' })), []);
  assert.deepEqual(index.deleteSlice(old), [KEY]);
  assert.deepEqual(index.applySlice(sliceRecord('greeter-new', 'greeter', ['10.0.1.1'])), [KEY]);
  assert.deepEqual(updates, [
    remove(KEY, endpointSpec('10.0.0.1')),
    remove(KEY, endpointSpec('10.0.0.2')),
    add(KEY, endpointSpec('10.0.1.1')),
  ]);
  assert.deepEqual(registry.get(KEY), serviceSpec('greeter', [endpointSpec('10.0.1.1')]));
});

test('selector change, new slice applied before the old one is deleted: adds, then removes', () => {
  const { registry, index, updates } = indexUnderTest();
  index.applyService(serviceRecord('greeter'));
  const old = sliceRecord('greeter-old', 'greeter', ['10.0.0.1', '10.0.0.2']);
  index.applySlice(old);
  updates.length = 0;
  assert.deepEqual(index.applySlice(sliceRecord('greeter-new', 'greeter', ['10.0.1.1'])), [KEY]);
  assert.deepEqual(index.deleteSlice(old), [KEY]);
  assert.deepEqual(updates, [
    add(KEY, endpointSpec('10.0.1.1')),
    remove(KEY, endpointSpec('10.0.0.1')),
    remove(KEY, endpointSpec('10.0.0.2')),
  ]);
  assert.deepEqual(registry.get(KEY), serviceSpec('greeter', [endpointSpec('10.0.1.1')]));
});

test('a 1000-endpoint slice: one add each, then one drain for one state change, found by each address', () => {
  const { registry, index, updates } = indexUnderTest();
  index.applyService(serviceRecord('big'));
  updates.length = 0;
  const ips = Array.from({ length: 1000 }, (_, i) => `10.1.${i >> 8}.${i & 255}`);
  const key = 'default/big:50051';
  assert.deepEqual(index.applySlice(sliceRecord('big-a', 'big', ips)), [key]);
  assert.deepEqual(updates, ips.map((ip) => add(key, endpointSpec(ip))));
  for (const ip of ips) assert.equal(registry.lookupByAddress(ip, 50051)?.key, key);

  updates.length = 0;
  const changed = ips.map((ip, i) => (i === 500 ? sliceEndpoint(ip, 'terminating') : ip));
  assert.deepEqual(index.applySlice(sliceRecord('big-a', 'big', changed, { resourceVersion: '2' })), [key]);
  assert.deepEqual(updates, [drain(key, endpointSpec(ips[500], 50051, 'terminating'))]);

  updates.length = 0;
  assert.deepEqual(index.deleteSlice(sliceRecord('big-a', 'big', changed, { resourceVersion: '2' })), [key]);
  assert.deepEqual(updates, ips.map((ip) => remove(key, endpointSpec(ip))));
  assert.deepEqual(registry.get(key), serviceSpec('big', []));
});

test('a 1000-endpoint slice that comes before its Service: one reset carrying every endpoint', () => {
  const { index, updates } = indexUnderTest();
  const ips = Array.from({ length: 1000 }, (_, i) => `10.1.${i >> 8}.${i & 255}`);
  index.applySlice(sliceRecord('big-a', 'big', ips));
  index.applyService(serviceRecord('big'));
  assert.deepEqual(updates, [reset(serviceSpec('big', ips.map((ip) => endpointSpec(ip))))]);
});
