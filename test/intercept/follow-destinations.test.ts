// The registry's address claims, through the desired sets' deltas and the manager's sets passes, into the (fake)
// kernel: after any sequence of service changes the destinations set holds exactly every ClusterIP:port and endpoint
// ip:port of every service, and each pass's script adds and deletes exactly what changed.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { followDestinations } from '../../agent/intercept/follow-destinations.ts';
import { destinationMember } from '../../agent/intercept/set-members.ts';
import type { EndpointSpec, ServiceSpec } from '../../agent/registry/endpoint.ts';
import { EndpointRegistry } from '../../agent/registry/endpoint-registry.ts';
import { seededRandom } from '../support/seeded-random.ts';
import { endpointSpec } from '../support/service-records.ts';
import { createHarness, settle, started } from './manager-harness.ts';

const STATES = ['active', 'terminating', 'dark', 'not-ready'] as const;
const NAMES = ['alpha', 'beta', 'gamma'];
const CLUSTER_IPS = ['10.96.0.10', '10.96.0.11', '10.96.0.12'];
// Pod addresses the services share; an IPv6 one (no node IP of that family) and an IPv4-mapped spelling among them.
const HOSTS = [...Array.from({ length: 24 }, (_, n) => `10.1.0.${n + 1}`), 'fd00::9', '::ffff:10.1.0.3'];

/** The destinations set as it must be: computed from the registry's specs, whole (IPv4 only: no IPv6 node IP). */
function expectedMembers(registry: EndpointRegistry): string[] {
  const members = new Set<string>();
  const add = (ip: string, port: number): void => {
    const member = destinationMember(ip, port);
    if (member?.family === 4) members.add(member.member);
  };
  for (const key of registry.keys()) {
    const spec = registry.get(key);
    if (spec === undefined) continue;
    for (const ip of spec.clusterIPs) add(ip, spec.port);
    for (const endpoint of spec.endpoints) add(endpoint.host, endpoint.port);
  }
  return [...members].sort();
}

test('destinations follow any sequence of service changes by delta, and each pass changes exactly what changed', async () => {
  const random = seededRandom(11);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const { kernel, manager, timers } = await started(createHarness());
  const registry = new EndpointRegistry();
  const deferred: Array<() => void> = [];
  followDestinations(registry, manager, (handOver) => deferred.push(handOver));
  const endpoint = (port: number): EndpointSpec => endpointSpec(pick(HOSTS), port, pick(STATES));
  const service = (name: string, port: number): ServiceSpec => ({
    key: `default/${name}:${port}`,
    namespace: 'default',
    name,
    port,
    clusterIPs: random() < 0.2 ? [] : [pick(CLUSTER_IPS)],
    balancer: null,
    endpoints: Array.from({ length: Math.floor(random() * 8) }, () => endpoint(port)),
  });
  let before: string[] = [];
  let passes = 0;
  for (let step = 0; step < 300; step++) {
    // One to three changes in a turn, as one informer event or a few may bring.
    for (let change = 1 + Math.floor(random() * 3); change > 0; change--) {
      const name = pick(NAMES);
      const port = pick([50051, 8080]);
      const key = `default/${name}:${port}`;
      const held = registry.get(key);
      const draw = random();
      if (held === undefined || draw < 0.25) registry.upsert(service(name, port));
      else if (draw < 0.85) {
        const listed = Array.from({ length: Math.floor(random() * 3) }, () => endpoint(port));
        const unlisted = held.endpoints.filter(() => random() < 0.3).map((e) => e.address).filter((address) => !listed.some((e) => e.address === address));
        registry.patch(key, { listed, unlisted });
      } else registry.remove(key);
    }
    for (const handOver of deferred.splice(0)) handOver();
    timers.advance(5);
    await settle();
    await manager.whenApplied();
    const expected = expectedMembers(registry);
    assert.deepEqual([...(kernel.members('meshlite-dsts-v4') ?? [])].sort(), expected, `step ${step}`);
    const scripts = kernel.take().filter((call) => call.command === 'ipset restore');
    const lines = scripts.flatMap((call) => (call.input ?? '').split('\n').filter((line) => line !== ''));
    const added = expected.filter((member) => !before.includes(member)).map((member) => `add meshlite-dsts-v4 ${member} -exist`);
    const removed = before.filter((member) => !expected.includes(member)).map((member) => `del meshlite-dsts-v4 ${member} -exist`);
    assert.deepEqual(lines.sort(), [...added, ...removed].sort(), `step ${step}: the pass's script`);
    passes += scripts.length;
    before = expected;
  }
  assert.ok(passes > 100, `${passes} sets passes`);
});
