// The balancer set follows the registry: one balancer per service, default and per-service policies, lookups.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BalancerSet } from '../../agent/balancer/balancer-set.ts';
import { EMPTY_PICKER } from '../../agent/balancer/picker.ts';
import { EndpointRegistry } from '../../agent/registry/endpoint-registry.ts';
import type { EndpointSpec, ServiceSpec } from '../../agent/registry/endpoint.ts';
import { FakeClock } from '../support/balancer-simulation.ts';
import type { BalancerName } from '../../agent/vocabulary/balancer-names.ts';

function ep(ip: string, terminating = false): EndpointSpec {
  return { address: `${ip}:8080`, host: ip, port: 8080, ready: !terminating, serving: true, terminating };
}

function svc(name: string, endpoints: EndpointSpec[], balancer: BalancerName | null = null, clusterIPs: string[] = []): ServiceSpec {
  return { key: `default/${name}:50051`, namespace: 'default', name, port: 50051, clusterIPs, balancer, endpoints };
}

function setup(defaultBalancer: BalancerName = 'p2c-ewma') {
  const registry = new EndpointRegistry();
  const events: string[] = [];
  const clock = new FakeClock();
  const create = () =>
    new BalancerSet(registry, {
      defaultBalancer,
      randomInt: () => 0,
      load: { now: clock.now },
      hooks: {
        onEndpointActive: (load, key) => events.push(`active ${key} ${load.address}`),
        onEndpointDraining: (load, key) => events.push(`draining ${key} ${load.address}`),
        onEndpointRemoved: (load, key) => events.push(`removed ${key} ${load.address}`),
      },
    });
  return { registry, events, create };
}

test('services known before the set exists get balancers at construction, hooks included', () => {
  const { registry, events, create } = setup();
  registry.replaceAll([svc('a', [ep('10.0.0.1')])]);
  const set = create();
  assert.deepEqual(set.keys(), ['default/a:50051']);
  assert.equal(set.get('default/a:50051')?.picker.pick()?.address, '10.0.0.1:8080');
  assert.deepEqual(events, ['active default/a:50051 10.0.0.1:8080']);
});

test('default policy, per-service override, and a change of override', () => {
  const { registry, create } = setup('least-request');
  const set = create();
  registry.replaceAll([svc('a', [ep('10.0.0.1')]), svc('b', [ep('10.0.0.2')], 'round-robin')]);
  assert.equal(set.get('default/a:50051')?.balancer, 'least-request');
  assert.equal(set.get('default/b:50051')?.balancer, 'round-robin');
  const b = set.get('default/b:50051');
  registry.upsert(svc('b', [ep('10.0.0.2')], null));
  assert.equal(set.get('default/b:50051'), b, 'the same balancer, reconfigured');
  assert.equal(b?.balancer, 'least-request');
});

test('endpoint updates reach the balancer of their service only', () => {
  const { registry, events, create } = setup();
  const set = create();
  registry.replaceAll([svc('a', [ep('10.0.0.1'), ep('10.0.0.2')]), svc('b', [ep('10.0.1.1')])]);
  events.length = 0;
  registry.replaceAll([svc('a', [ep('10.0.0.1', true), ep('10.0.0.3')]), svc('b', [ep('10.0.1.1')])]);
  assert.deepEqual(events, [
    'removed default/a:50051 10.0.0.2:8080',
    'draining default/a:50051 10.0.0.1:8080',
    'active default/a:50051 10.0.0.3:8080',
  ]);
  assert.equal(set.get('default/a:50051')?.picker.pick()?.address, '10.0.0.3:8080');
});

test('a rolling update in one slice update (pod 2 terminating, pod 3 ready: same count) sends no new request to pod 2', () => {
  const { registry, events, create } = setup('round-robin');
  const set = create();
  registry.upsert(svc('a', [ep('10.0.0.1'), ep('10.0.0.2')]));
  const balancer = set.get('default/a:50051');
  const before = balancer?.picker;
  events.length = 0;
  registry.upsert(svc('a', [ep('10.0.0.1'), ep('10.0.0.2', true), ep('10.0.0.3')]));
  assert.equal(set.get('default/a:50051'), balancer, 'the same balancer');
  assert.notEqual(balancer?.picker, before);
  const picks = new Map<string, number>();
  for (let i = 0; i < 40; i++) {
    const address = balancer?.picker.pick()?.address ?? 'none';
    picks.set(address, (picks.get(address) ?? 0) + 1);
  }
  assert.deepEqual(
    [...picks].sort(),
    [
      ['10.0.0.1:8080', 20],
      ['10.0.0.3:8080', 20],
    ],
  );
  assert.deepEqual(events, ['draining default/a:50051 10.0.0.2:8080', 'active default/a:50051 10.0.0.3:8080']);
});

test('a deleted service: endpoints handed back, balancer closed and forgotten; a new one if it returns', () => {
  const { registry, events, create } = setup();
  const set = create();
  registry.upsert(svc('a', [ep('10.0.0.1')]));
  const old = set.get('default/a:50051');
  events.length = 0;
  registry.remove('default/a:50051');
  assert.deepEqual(events, ['removed default/a:50051 10.0.0.1:8080']);
  assert.equal(set.get('default/a:50051'), undefined);
  assert.equal(old?.closed, true);
  assert.equal(old?.picker, EMPTY_PICKER);
  registry.upsert(svc('a', [ep('10.0.0.1')]));
  assert.notEqual(set.get('default/a:50051'), old);
  assert.equal(set.size, 1);
});

test('forAddress finds the balancer by ClusterIP:port or endpoint ip:port', () => {
  const { registry, create } = setup();
  const set = create();
  registry.upsert(svc('a', [ep('10.0.0.1')], null, ['10.96.0.10']));
  assert.equal(set.forAddress('10.96.0.10', 50051), set.get('default/a:50051'));
  assert.equal(set.forAddress('10.0.0.1', 8080), set.get('default/a:50051'));
  assert.equal(set.forAddress('10.0.0.1', 50051), undefined);
});

test('close stops following the registry but keeps the last pickers', () => {
  const { registry, create } = setup();
  const set = create();
  registry.upsert(svc('a', [ep('10.0.0.1')]));
  set.close();
  registry.upsert(svc('b', [ep('10.0.0.2')]));
  registry.remove('default/a:50051');
  assert.deepEqual(set.keys(), ['default/a:50051']);
  assert.equal(set.get('default/a:50051')?.picker.pick()?.address, '10.0.0.1:8080');
});

test('describe lists every service', () => {
  const { registry, create } = setup();
  const set = create();
  registry.replaceAll([svc('a', [ep('10.0.0.1')]), svc('b', [])]);
  assert.deepEqual(
    set.describe().map((view) => [view.key, view.balancer, view.endpoints.length]),
    [
      ['default/a:50051', 'p2c-ewma', 1],
      ['default/b:50051', 'p2c-ewma', 0],
    ],
  );
});
