// The service index over object lifecycles: ports changing, gRPC on and off, deletions, invalid versions, versions.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  add,
  CLUSTER_IP,
  deleted,
  drain,
  endpointSpec,
  grpcPort,
  indexUnderTest,
  invalidServiceRecord,
  invalidSliceRecord,
  remove,
  reset,
  serviceRecord,
  serviceSpec,
  sliceEndpoint,
  sliceRecord,
} from '../support/service-records.ts';

const KEY = 'default/greeter:50051';

test('gRPC ports added, removed, renumbered: keys follow; unchanged versions are silent', () => {
  const { registry, index, updates } = indexUnderTest();
  const ports = [
    { name: 'grpc', port: 50051 },
    { name: 'grpc-admin', port: 9091 },
  ];
  index.applyService(serviceRecord('greeter'));
  index.applySlice(sliceRecord('greeter-a', 'greeter', ['10.0.0.1'], { ports }));
  updates.length = 0;

  const admin = grpcPort(9090, 'grpc-admin');
  assert.deepEqual(index.applyService(serviceRecord('greeter', { ports: [grpcPort(), admin], resourceVersion: '2' })), ['default/greeter:9090']);
  assert.deepEqual(index.applyService(serviceRecord('greeter', { ports: [admin], resourceVersion: '3' })), [KEY]);
  const renumbered = grpcPort(9095, 'grpc-admin');
  assert.deepEqual(index.applyService(serviceRecord('greeter', { ports: [renumbered], resourceVersion: '4' })), [
    'default/greeter:9090',
    'default/greeter:9095',
  ]);
  assert.deepEqual(index.applyService(serviceRecord('greeter', { ports: [renumbered], resourceVersion: '5' })), []);
  const endpoint = endpointSpec('10.0.0.1', 9091);
  assert.deepEqual(updates, [
    reset(serviceSpec('greeter', [endpoint], { port: 9090 })),
    deleted(KEY),
    deleted('default/greeter:9090'),
    reset(serviceSpec('greeter', [endpoint], { port: 9095 })),
  ]);
  assert.deepEqual(registry.keys(), ['default/greeter:9095']);
  assert.equal(registry.lookupByAddress(CLUSTER_IP, 9090), undefined);
  assert.equal(registry.lookupByAddress(CLUSTER_IP, 9095)?.key, 'default/greeter:9095');
  assert.equal(registry.lookupByAddress('10.0.0.1', 9091)?.key, 'default/greeter:9095');
});

test('a balancer or ClusterIP change is a reset of every port of the Service', () => {
  const { index, updates } = indexUnderTest();
  const ports = [grpcPort(), grpcPort(9090, 'grpc-admin')];
  index.applyService(serviceRecord('greeter', { ports }));
  updates.length = 0;
  index.applyService(serviceRecord('greeter', { ports, balancer: 'round-robin', resourceVersion: '2' }));
  index.applyService(serviceRecord('greeter', { ports, balancer: 'round-robin', clusterIPs: ['10.96.0.11'], resourceVersion: '3' }));
  assert.deepEqual(updates, [
    reset(serviceSpec('greeter', [], { balancer: 'round-robin' })),
    reset(serviceSpec('greeter', [], { balancer: 'round-robin', port: 9090 })),
    reset(serviceSpec('greeter', [], { balancer: 'round-robin', clusterIPs: ['10.96.0.11'] })),
    reset(serviceSpec('greeter', [], { balancer: 'round-robin', clusterIPs: ['10.96.0.11'], port: 9090 })),
  ]);
});

test('a Service that stops being gRPC loses its keys; its slices are kept and come back with it', () => {
  const { index, updates } = indexUnderTest();
  index.applyService(serviceRecord('greeter', { ports: [grpcPort(), grpcPort(9090, 'grpc-admin')] }));
  index.applySlice(sliceRecord('greeter-a', 'greeter', ['10.0.0.1']));
  updates.length = 0;
  assert.deepEqual(index.applyService(serviceRecord('greeter', { ports: [], resourceVersion: '2' })), [KEY, 'default/greeter:9090']);
  assert.deepEqual(updates, [deleted(KEY), deleted('default/greeter:9090')]);
  // While it is not gRPC its slices change and cost nothing but being held.
  assert.deepEqual(index.applySlice(sliceRecord('greeter-a', 'greeter', ['10.0.0.1', '10.0.0.2'], { resourceVersion: '2' })), []);
  assert.deepEqual(index.applySlice(sliceRecord('greeter-b', 'greeter', ['10.0.0.3'])), []);
  assert.deepEqual(updates, [deleted(KEY), deleted('default/greeter:9090')]);
  assert.deepEqual(index.describe(), {
    services: 1,
    grpcServices: 0,
    grpcServicePorts: 0,
    slices: 2,
    slicesWaiting: 0,
    invalidServices: 0,
    servicesOnLastGood: 0,
    invalidSlices: 0,
    slicesOnLastGood: 0,
  });
  updates.length = 0;
  // The protocol annotation is added: every endpoint is there at once.
  assert.deepEqual(index.applyService(serviceRecord('greeter', { resourceVersion: '3' })), [KEY]);
  assert.deepEqual(updates, [reset(serviceSpec('greeter', ['10.0.0.1', '10.0.0.2', '10.0.0.3'].map((ip) => endpointSpec(ip))))]);
});

test('a deleted Service loses its keys; its slices wait and serve it again if it is created again', () => {
  const { registry, index, updates } = indexUnderTest();
  const service = serviceRecord('greeter');
  index.applyService(service);
  const slice = sliceRecord('greeter-a', 'greeter', ['10.0.0.1']);
  index.applySlice(slice);
  updates.length = 0;
  assert.deepEqual(index.deleteService(service), [KEY]);
  assert.deepEqual(updates, [deleted(KEY)]);
  assert.equal(registry.lookupByAddress(CLUSTER_IP, 50051), undefined);
  assert.equal(registry.lookupByAddress('10.0.0.1', 50051), undefined);
  assert.equal(index.describe().slicesWaiting, 1);
  assert.deepEqual(index.applySlice(sliceRecord('greeter-a', 'greeter', ['10.0.0.2'], { resourceVersion: '2' })), []);
  assert.deepEqual(index.applyService(serviceRecord('greeter', { resourceVersion: '7' })), [KEY]);
  assert.deepEqual(index.deleteSlice(slice), [KEY]);
  assert.deepEqual(updates, [deleted(KEY), reset(serviceSpec('greeter', [endpointSpec('10.0.0.2')])), remove(KEY, endpointSpec('10.0.0.2'))]);
  assert.equal(index.describe().slices, 0);
});

test('an invalid version of a Service keeps its last valid version in use; slices still apply; deletion applies', () => {
  const { registry, index, updates } = indexUnderTest();
  index.applyService(serviceRecord('greeter'));
  index.applySlice(sliceRecord('greeter-a', 'greeter', ['10.0.0.1']));
  updates.length = 0;
  assert.deepEqual(index.applyService(invalidServiceRecord('greeter', '2')), []);
  assert.deepEqual(updates, []);
  assert.deepEqual(registry.get(KEY), serviceSpec('greeter', [endpointSpec('10.0.0.1')]));
  assert.equal(index.describe().invalidServices, 1);
  assert.equal(index.describe().servicesOnLastGood, 1);
  assert.deepEqual(index.applySlice(sliceRecord('greeter-a', 'greeter', ['10.0.0.1', '10.0.0.2'], { resourceVersion: '2' })), [KEY]);
  // A readable version again: applied, and the object no longer counts as invalid.
  assert.deepEqual(index.applyService(serviceRecord('greeter', { balancer: 'least-request', resourceVersion: '3' })), [KEY]);
  assert.equal(index.describe().invalidServices, 0);
  // Invalid again, then deleted: the deletion takes the Service away whatever its last record was.
  index.applyService(invalidServiceRecord('greeter', '4'));
  assert.deepEqual(index.deleteService(invalidServiceRecord('greeter', '4')), [KEY]);
  assert.deepEqual(updates, [
    add(KEY, endpointSpec('10.0.0.2')),
    reset(serviceSpec('greeter', [endpointSpec('10.0.0.1'), endpointSpec('10.0.0.2')], { balancer: 'least-request' })),
    deleted(KEY),
  ]);
  assert.equal(index.describe().invalidServices, 0);
});

test('a Service never seen valid contributes nothing: its slices wait for a readable version', () => {
  const { index, updates } = indexUnderTest();
  index.applySlice(sliceRecord('greeter-a', 'greeter', ['10.0.0.1']));
  assert.deepEqual(index.applyService(invalidServiceRecord('greeter', '1')), []);
  assert.deepEqual(updates, []);
  assert.equal(index.describe().invalidServices, 1);
  assert.equal(index.describe().servicesOnLastGood, 0);
  assert.equal(index.describe().slicesWaiting, 1);
  assert.deepEqual(index.applyService(serviceRecord('greeter', { resourceVersion: '2' })), [KEY]);
  assert.deepEqual(updates, [reset(serviceSpec('greeter', [endpointSpec('10.0.0.1')]))]);
});

test('an invalid version of a slice keeps its last valid endpoints until the slice is deleted', () => {
  const { index, updates } = indexUnderTest();
  index.applyService(serviceRecord('greeter'));
  index.applySlice(sliceRecord('greeter-a', 'greeter', ['10.0.0.1', '10.0.0.2']));
  index.applySlice(sliceRecord('greeter-b', 'greeter', ['10.0.0.3']));
  updates.length = 0;
  assert.deepEqual(index.applySlice(invalidSliceRecord('greeter-a', '2')), []);
  assert.deepEqual(updates, []);
  assert.equal(index.describe().invalidSlices, 1);
  assert.equal(index.describe().slicesOnLastGood, 1);
  // Everything else keeps working.
  assert.deepEqual(index.applySlice(sliceRecord('greeter-b', 'greeter', [sliceEndpoint('10.0.0.3', 'terminating')], { resourceVersion: '2' })), [KEY]);
  assert.deepEqual(index.deleteSlice(invalidSliceRecord('greeter-a', '2')), [KEY]);
  assert.deepEqual(updates, [
    drain(KEY, endpointSpec('10.0.0.3', 50051, 'terminating')),
    remove(KEY, endpointSpec('10.0.0.1')),
    remove(KEY, endpointSpec('10.0.0.2')),
  ]);
  assert.equal(index.describe().invalidSlices, 0);
  assert.equal(index.describe().slices, 1);
});

test('a slice never seen valid contributes nothing until a readable version arrives', () => {
  const { index, updates } = indexUnderTest();
  index.applyService(serviceRecord('greeter'));
  updates.length = 0;
  assert.deepEqual(index.applySlice(invalidSliceRecord('greeter-a', '1')), []);
  assert.deepEqual(index.describe().invalidSlices, 1);
  assert.deepEqual(index.describe().slicesOnLastGood, 0);
  assert.deepEqual(index.applySlice(sliceRecord('greeter-a', 'greeter', ['10.0.0.1'], { resourceVersion: '2' })), [KEY]);
  assert.deepEqual(updates, [add(KEY, endpointSpec('10.0.0.1'))]);
  assert.deepEqual(index.describe().invalidSlices, 0);
});

test('deletions of objects never seen do nothing and do not throw', () => {
  const { index, updates } = indexUnderTest();
  index.applyService(serviceRecord('greeter'));
  index.applySlice(sliceRecord('greeter-a', 'greeter', ['10.0.0.1']));
  updates.length = 0;
  assert.deepEqual(index.deleteService(serviceRecord('other')), []);
  assert.deepEqual(index.deleteService(serviceRecord('greeter', { namespace: 'elsewhere' })), []);
  assert.deepEqual(index.deleteService(invalidServiceRecord('never', '1')), []);
  assert.deepEqual(index.deleteSlice(sliceRecord('other-a', 'greeter', ['10.0.0.1'])), []);
  assert.deepEqual(index.deleteSlice(sliceRecord('greeter-a', 'greeter', ['10.0.0.1'], { namespace: 'elsewhere' })), []);
  assert.deepEqual(index.deleteSlice(invalidSliceRecord('never', '1')), []);
  assert.deepEqual(index.deleteSlice(sliceRecord('orphan', null, [])), []);
  assert.deepEqual(updates, []);
  assert.equal(index.describe().slices, 1);
});

test('resourceVersions are not ordered: a redelivered version is silent, a lower-looking one is applied', () => {
  const { index, updates } = indexUnderTest();
  index.applyService(serviceRecord('greeter', { resourceVersion: '100' }));
  index.applySlice(sliceRecord('greeter-a', 'greeter', ['10.0.0.1'], { resourceVersion: '100' }));
  updates.length = 0;
  assert.deepEqual(index.applySlice(sliceRecord('greeter-a', 'greeter', ['10.0.0.1'], { resourceVersion: '100' })), []);
  assert.deepEqual(index.applyService(serviceRecord('greeter', { resourceVersion: '100' })), []);
  // After an etcd restore versions can go back; the newer event is what the watch delivered last.
  assert.deepEqual(index.applySlice(sliceRecord('greeter-a', 'greeter', ['10.0.0.1', '10.0.0.2'], { resourceVersion: '99' })), [KEY]);
  assert.deepEqual(updates, [add(KEY, endpointSpec('10.0.0.2'))]);
});

test('a slice relabelled to another Service leaves the first and joins the second; unlabelled, it leaves', () => {
  const { index, updates } = indexUnderTest();
  index.applyService(serviceRecord('greeter'));
  index.applyService(serviceRecord('other', { clusterIPs: ['10.96.0.11'] }));
  index.applySlice(sliceRecord('s', 'greeter', ['10.0.0.1']));
  updates.length = 0;
  const otherKey = 'default/other:50051';
  assert.deepEqual(index.applySlice(sliceRecord('s', 'other', ['10.0.0.1'], { resourceVersion: '2' })), [KEY, otherKey]);
  assert.deepEqual(index.applySlice(sliceRecord('s', null, [], { resourceVersion: '3' })), [otherKey]);
  assert.deepEqual(index.applySlice(sliceRecord('orphan', null, ['10.0.0.9'])), []);
  assert.deepEqual(updates, [remove(KEY, endpointSpec('10.0.0.1')), add(otherKey, endpointSpec('10.0.0.1')), remove(otherKey, endpointSpec('10.0.0.1'))]);
  assert.equal(index.describe().slices, 0);
});

test('Services and slices of the same names in different namespaces are apart', () => {
  const { index, updates } = indexUnderTest();
  index.applyService(serviceRecord('greeter', { namespace: 'a' }));
  index.applyService(serviceRecord('greeter', { namespace: 'b', clusterIPs: ['10.96.0.11'] }));
  updates.length = 0;
  assert.deepEqual(index.applySlice(sliceRecord('greeter-x', 'greeter', ['10.0.0.1'], { namespace: 'a' })), ['a/greeter:50051']);
  assert.deepEqual(index.applySlice(sliceRecord('greeter-x', 'greeter', ['10.0.0.2'], { namespace: 'b' })), ['b/greeter:50051']);
  assert.deepEqual(index.deleteService(serviceRecord('greeter', { namespace: 'a' })), ['a/greeter:50051']);
  assert.deepEqual(updates, [
    add('a/greeter:50051', endpointSpec('10.0.0.1')),
    add('b/greeter:50051', endpointSpec('10.0.0.2')),
    deleted('a/greeter:50051'),
  ]);
});

test('describe counts Services, gRPC ports, slices and slices waiting for their Service', () => {
  const { index } = indexUnderTest();
  index.applyService(serviceRecord('greeter', { ports: [grpcPort(), grpcPort(9090, 'grpc-admin')] }));
  index.applyService(serviceRecord('web', { ports: [] }));
  index.applySlice(sliceRecord('greeter-a', 'greeter', ['10.0.0.1']));
  index.applySlice(sliceRecord('web-a', 'web', ['10.0.0.2']));
  index.applySlice(sliceRecord('later-a', 'later', ['10.0.0.3']));
  index.applySlice(sliceRecord('later-b', 'later', ['10.0.0.4']));
  index.applySlice(invalidSliceRecord('broken', '1'));
  assert.deepEqual(index.describe(), {
    services: 2,
    grpcServices: 1,
    grpcServicePorts: 2,
    slices: 4,
    slicesWaiting: 2,
    invalidServices: 0,
    servicesOnLastGood: 0,
    invalidSlices: 1,
    slicesOnLastGood: 0,
  });
});

test('a registry listener that throws does not stop the other keys of an event; the error reaches the caller', () => {
  const { registry, index } = indexUnderTest();
  index.applyService(serviceRecord('greeter', { ports: [grpcPort(), grpcPort(9090, 'grpc-admin')] }));
  const failure = new Error('listener failed');
  const unsubscribe = registry.subscribe((update) => {
    if (update.type === 'add' && update.key === KEY) throw failure;
  });
  const ports = [
    { name: 'grpc', port: 50051 },
    { name: 'grpc-admin', port: 9091 },
  ];
  assert.throws(() => index.applySlice(sliceRecord('greeter-a', 'greeter', ['10.0.0.1'], { ports })), failure);
  unsubscribe();
  assert.deepEqual(registry.get('default/greeter:9090')?.endpoints, [endpointSpec('10.0.0.1', 9091)]);
  assert.deepEqual(registry.get(KEY)?.endpoints, [endpointSpec('10.0.0.1')]);
});
