// The worker's registry mirror holds what the main registry holds, batch by batch, through structured clones.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EndpointRegistry } from '../../agent/registry/endpoint-registry.ts';
import type { EndpointSpec, RegistryUpdate, ServiceSpec } from '../../agent/registry/endpoint.ts';
import { applyRegistryBatch } from '../../agent/workers/registry-mirror.ts';

function endpoint(ip: string, state: Partial<EndpointSpec> = {}): EndpointSpec {
  return { address: `${ip}:50051`, host: ip, port: 50051, ready: true, serving: true, terminating: false, ...state };
}

function service(name: string, endpoints: EndpointSpec[], clusterIPs = ['10.96.0.1']): ServiceSpec {
  return { key: `default/${name}:50051`, namespace: 'default', name, port: 50051, clusterIPs, balancer: null, endpoints };
}

/** A main registry whose batches reach a mirror as a worker's MessagePort delivers them: cloned. */
function mirrored(): { main: EndpointRegistry; mirror: EndpointRegistry; mirrorBatches: RegistryUpdate[][] } {
  const main = new EndpointRegistry();
  const mirror = new EndpointRegistry();
  const mirrorBatches: RegistryUpdate[][] = [];
  mirror.subscribeBatches((batch) => mirrorBatches.push([...batch]));
  main.subscribeBatches((batch) => applyRegistryBatch(mirror, structuredClone(batch)));
  return { main, mirror, mirrorBatches };
}

function snapshot(registry: EndpointRegistry): unknown {
  return registry.keys().sort().map((key) => registry.get(key));
}

describe('applyRegistryBatch', () => {
  it('follows snapshots, patches, drains, removes and deletes, one mirror batch per service changed', () => {
    const { main, mirror, mirrorBatches } = mirrored();
    main.replaceAll([service('a', [endpoint('10.0.0.1'), endpoint('10.0.0.2')]), service('b', [endpoint('10.0.1.1')])]);
    assert.deepEqual(snapshot(mirror), snapshot(main));
    main.patch('default/a:50051', { listed: [endpoint('10.0.0.3'), endpoint('10.0.0.2', { ready: false, terminating: true })], unlisted: ['10.0.0.1:50051'] });
    assert.deepEqual(snapshot(mirror), snapshot(main));
    main.upsert(service('b', [endpoint('10.0.1.1')], ['10.96.0.9']));
    main.replaceAll([service('b', [endpoint('10.0.1.2')], ['10.96.0.9'])]);
    assert.deepEqual(snapshot(mirror), snapshot(main));
    assert.deepEqual(
      mirrorBatches.map((batch) => batch.map((update) => update.type)),
      [['reset'], ['reset'], ['remove', 'drain', 'add'], ['reset'], ['delete'], ['remove', 'add']],
    );
    assert.equal(mirror.keyAtAddress('10.96.0.9', 50051), 'default/b:50051');
    assert.equal(mirror.keyAtAddress('10.0.0.3', 50051), undefined);
  });

  it('refuses an endpoint change of a service it never got', () => {
    const mirror = new EndpointRegistry();
    assert.throws(() => applyRegistryBatch(mirror, [{ type: 'add', key: 'default/x:1', endpoint: endpoint('10.0.0.1') }]), /unknown service default\/x:1/);
  });
});
