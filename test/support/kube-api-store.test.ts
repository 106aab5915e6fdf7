// The test API server's store: resourceVersion stamping, no-op writes, history, exact snapshots, compaction.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KubeApiStore, type StoreEvent } from './kube-api-store.ts';

const NOW = new Date('2025-03-04T05:06:07.890Z');

function summary(event: StoreEvent): string {
  return `${event.type} ${event.object.key} ${event.resourceVersion} ${event.object.body.metadata.resourceVersion}`;
}

describe('KubeApiStore', () => {
  it('stamps resourceVersion, uid and creationTimestamp, and keeps uid and creationTimestamp on update', () => {
    const store = new KubeApiStore({ now: () => NOW });
    const created = store.apply('services', { kind: 'Service', metadata: { name: 'web' }, spec: { clusterIP: '10.0.0.1' } });
    assert.equal(created.namespace, 'default');
    assert.equal(created.resourceVersion, 1001);
    assert.deepEqual(created.body, {
      metadata: { name: 'web', namespace: 'default', uid: created.body.metadata.uid, resourceVersion: '1001', creationTimestamp: '2025-03-04T05:06:07Z' },
      spec: { clusterIP: '10.0.0.1' },
    });
    assert.match(created.body.metadata.uid, /^[0-9a-f-]{36}$/);
    assert.equal(created.json, `{"kind":"Service","apiVersion":"v1",${created.itemJson.slice(1)}`);
    const updated = store.apply('services', { metadata: { name: 'web', namespace: 'default', uid: 'ignored' }, spec: { clusterIP: '10.0.0.2' } });
    assert.equal(updated.body.metadata.uid, created.body.metadata.uid);
    assert.equal(updated.body.metadata.resourceVersion, '1002');
  });

  it('treats a write that changes nothing as a no-op: same resourceVersion, no event', () => {
    const store = new KubeApiStore();
    const events: string[] = [];
    store.subscribe('pods', (event) => events.push(summary(event)));
    const first = store.apply('pods', { metadata: { name: 'p', namespace: 'a' }, spec: { nodeName: 'n1' } });
    const again = store.apply('pods', { metadata: { name: 'p', namespace: 'a', resourceVersion: '5' }, spec: { nodeName: 'n1' } });
    assert.equal(again, first);
    assert.equal(store.resourceVersion, 1001);
    assert.deepEqual(events, ['ADDED a/p 1001 1001']);
  });

  it('records ADDED, MODIFIED and DELETED with one global resourceVersion across resources', () => {
    const store = new KubeApiStore();
    store.apply('services', { metadata: { name: 's' } });
    store.apply('pods', { metadata: { name: 'p' } });
    store.apply('services', { metadata: { name: 's', labels: { a: 'b' } } });
    const tombstone = store.remove('services', 'default', 's');
    assert.equal(tombstone?.body.metadata.labels?.a, 'b', 'DELETED carries the last state');
    assert.equal(store.remove('services', 'default', 's'), undefined);
    assert.deepEqual(store.eventsAfter('services', 1000)?.map(summary), [
      'ADDED default/s 1001 1001',
      'MODIFIED default/s 1003 1003',
      'DELETED default/s 1004 1004',
    ]);
    assert.deepEqual(store.eventsAfter('services', 1003)?.map(summary), ['DELETED default/s 1004 1004']);
    assert.deepEqual(store.eventsAfter('pods', 1001)?.map(summary), ['ADDED default/p 1002 1002']);
  });

  it('lists in key order and reconstructs the exact state at an earlier resourceVersion', () => {
    const store = new KubeApiStore();
    store.apply('services', { metadata: { name: 'b', namespace: 'x' } });
    store.apply('services', { metadata: { name: 'a', namespace: 'y' } });
    store.apply('services', { metadata: { name: 'a', namespace: 'x' } });
    const at1003 = store.current('services').map((object) => `${object.key}@${object.resourceVersion}`);
    assert.deepEqual(at1003, ['x/a@1003', 'x/b@1001', 'y/a@1002']);
    store.remove('services', 'x', 'b');
    store.apply('services', { metadata: { name: 'a', namespace: 'y', labels: { v: '2' } } });
    store.apply('services', { metadata: { name: 'c', namespace: 'x' } });
    assert.deepEqual(store.current('services').map((object) => `${object.key}@${object.resourceVersion}`), ['x/a@1003', 'x/c@1006', 'y/a@1005']);
    assert.deepEqual(store.at('services', 1003)?.map((object) => `${object.key}@${object.resourceVersion}`), at1003);
    assert.deepEqual(store.at('services', 1001)?.map((object) => object.key), ['x/b']);
  });

  it('compacts to now, and trims to the history limit', () => {
    const store = new KubeApiStore({ historyLimit: 2 });
    assert.equal(store.eventsAfter('services', 999), undefined, 'below the initial resourceVersion is compacted');
    for (const name of ['a', 'b', 'c']) store.apply('services', { metadata: { name } });
    assert.equal(store.compactedResourceVersion('services'), 1001);
    assert.equal(store.eventsAfter('services', 1000), undefined);
    assert.deepEqual(store.eventsAfter('services', 1001)?.map((event) => event.resourceVersion), [1002, 1003]);
    assert.equal(store.at('services', 1000), undefined);
    store.compact();
    assert.equal(store.compactedResourceVersion('pods'), 1003);
    assert.equal(store.eventsAfter('services', 1002), undefined);
    assert.deepEqual(store.eventsAfter('services', 1003), []);
  });

  it('adds what the API server adds to a new Namespace', () => {
    const store = new KubeApiStore();
    const namespace = store.apply('namespaces', { metadata: { name: 'shop', namespace: 'ignored' } });
    assert.equal(namespace.key, 'shop');
    assert.equal(namespace.body.metadata.namespace, undefined);
    assert.deepEqual(namespace.body.metadata.labels, { 'kubernetes.io/metadata.name': 'shop' });
    assert.deepEqual(namespace.body.spec, { finalizers: ['kubernetes'] });
    assert.deepEqual(namespace.body.status, { phase: 'Active' });
  });

  it('wakes a reader waiting for a future resourceVersion, or times it out', async () => {
    const store = new KubeApiStore();
    const reached = store.waitForResourceVersion(1001, 5_000);
    store.apply('pods', { metadata: { name: 'p' } });
    assert.equal(await reached, true);
    assert.equal(await store.waitForResourceVersion(1010, 20), false);
  });
});
