// The balancer set's own choices: its defaults, the randomness and clock it is given (and nothing else), one new
// picker per run of one service's updates in a batch, and what it does with a batch that breaks the registry's rules.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BalancerSet } from '../../agent/balancer/balancer-set.ts';
import type { EndpointLoad } from '../../agent/balancer/endpoint-load.ts';
import { EndpointRegistry } from '../../agent/registry/endpoint-registry.ts';
import type { EndpointSpec, RegistryUpdate, ServiceSpec } from '../../agent/registry/endpoint.ts';
import type { BalancerName } from '../../agent/vocabulary/balancer-names.ts';
import { FakeClock } from '../support/balancer-simulation.ts';

const MS = 1e6;

function ep(ip: string, ready = true): EndpointSpec {
  return { address: `${ip}:8080`, host: ip, port: 8080, ready, serving: true, terminating: !ready };
}

function svc(name: string, endpoints: EndpointSpec[], balancer: BalancerName | null = null): ServiceSpec {
  return { key: `default/${name}:50051`, namespace: 'default', name, port: 50051, clusterIPs: [], balancer, endpoints };
}

test('with only a default policy: a real clock and its own randomness', () => {
  const registry = new EndpointRegistry();
  const set = new BalancerSet(registry, { defaultBalancer: 'round-robin' });
  registry.upsert(svc('a', [ep('10.0.0.1'), ep('10.0.0.2')]));
  const picker = set.get('default/a:50051')?.picker;
  const picks = Array.from({ length: 4 }, () => picker?.pick()?.address);
  assert.deepEqual([...new Set(picks)].sort(), ['10.0.0.1:8080', '10.0.0.2:8080']);
  assert.notEqual(picks[0], picks[1], 'round-robin alternates');
  const load = set.get('default/a:50051')?.loadOf('10.0.0.1:8080') as EndpointLoad;
  assert.ok(Math.abs(load.stampNs - performance.now() * 1e6) < 60_000 * MS, 'stamped by the monotonic clock');
  set.close();
});

test("the set's randomness is the one given, drawn once per new picker: one per run of a service's updates", () => {
  const registry = new EndpointRegistry();
  let draws = 0;
  const set = new BalancerSet(registry, {
    defaultBalancer: 'round-robin',
    randomInt: () => {
      draws++;
      return 0;
    },
    load: { now: new FakeClock().now },
  });
  registry.upsert(svc('a', [ep('10.0.0.1'), ep('10.0.0.2')]));
  assert.equal(draws, 1);
  // One change to a: pod 2 starts terminating and pod 3 is new, two updates of one key in one batch.
  registry.upsert(svc('a', [ep('10.0.0.1'), ep('10.0.0.2', false), ep('10.0.0.3')]));
  assert.equal(draws, 2, 'one picker for the drain and the add together');
  const picker = set.get('default/a:50051')?.picker;
  assert.deepEqual(
    Array.from({ length: 4 }, () => picker?.pick()?.address),
    ['10.0.0.1:8080', '10.0.0.3:8080', '10.0.0.1:8080', '10.0.0.3:8080'],
    'draw 0: the picker starts at the first endpoint',
  );
  // Two services changed in one batch: one picker each.
  registry.replaceAll([svc('a', [ep('10.0.0.1')]), svc('b', [ep('10.0.1.1'), ep('10.0.1.2')])]);
  assert.equal(draws, 4);
});

test("the pickers' now is the given clock's, never the real one", () => {
  // A decay of 1 ms: read at the real clock's time (at least many ms after this clock's 0), both estimates
  // would have faded to nothing and tied, and the tie would go to the first drawn, the slow one.
  const clock = new FakeClock();
  const registry = new EndpointRegistry();
  const draws: number[] = [];
  const set = new BalancerSet(registry, {
    defaultBalancer: 'p2c-ewma',
    randomInt: () => draws.shift() ?? 0,
    load: { now: clock.now, decayNs: 1 * MS },
  });
  registry.upsert(svc('a', [ep('10.0.0.1'), ep('10.0.0.2')]));
  const balancer = set.get('default/a:50051');
  const slow = balancer?.loadOf('10.0.0.1:8080') as EndpointLoad;
  const fast = balancer?.loadOf('10.0.0.2:8080') as EndpointLoad;
  slow.onStart();
  slow.onFinish(100 * MS);
  fast.onStart();
  fast.onFinish(1 * MS);
  draws.push(0, 0); // the slow endpoint first, then the fast one
  assert.equal(balancer?.picker.pick(), fast);
});

test('close is idempotent', () => {
  const registry = new EndpointRegistry();
  const set = new BalancerSet(registry, { defaultBalancer: 'round-robin' });
  set.close();
  set.close();
  registry.upsert(svc('a', [ep('10.0.0.1')]));
  assert.equal(set.size, 0);
});

/** A registry that delivers whatever batches a test hands it. */
function scriptedRegistry(): { registry: EndpointRegistry; deliver: (updates: RegistryUpdate[]) => void } {
  let listener: ((updates: readonly RegistryUpdate[]) => void) | null = null;
  const fake = {
    subscribeBatches(l: (updates: readonly RegistryUpdate[]) => void) {
      listener = l;
      return () => {
        listener = null;
      };
    },
    keyAtAddress: () => undefined,
  };
  return {
    registry: fake as unknown as EndpointRegistry,
    deliver: (updates) => listener?.(updates),
  };
}

test('an update for a service the set never saw reset is refused, naming both', () => {
  const { registry, deliver } = scriptedRegistry();
  const set = new BalancerSet(registry, { defaultBalancer: 'round-robin' });
  assert.throws(
    () => deliver([{ type: 'add', key: 'default/x:50051', endpoint: ep('10.0.0.1') }]),
    /^Error: registry sent add for unknown service default\/x:50051$/,
  );
  assert.equal(set.size, 0);
});

test('a delete ends the run of its service: a reset of the same key after it in one batch makes a new balancer', () => {
  const { registry, deliver } = scriptedRegistry();
  const set = new BalancerSet(registry, { defaultBalancer: 'round-robin', randomInt: () => 0 });
  const a = svc('a', [ep('10.0.0.1')]);
  deliver([{ type: 'reset', key: a.key, service: a }]);
  const old = set.get(a.key);
  const again = svc('a', [ep('10.0.0.2')]);
  deliver([
    { type: 'delete', key: a.key },
    { type: 'reset', key: a.key, service: again },
  ]);
  assert.equal(old?.closed, true);
  const fresh = set.get(a.key);
  assert.notEqual(fresh, old);
  assert.equal(fresh?.closed, false);
  assert.equal(fresh?.picker.pick()?.address, '10.0.0.2:8080');
});
