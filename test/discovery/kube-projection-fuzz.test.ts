// Seeded fuzz of the projections: randomly damaged API objects and hostile inputs never throw, and give well-formed records.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KubeRecord } from '../../agent/discovery/kube-objects.ts';
import { projectEndpointSlice, projectNamespace, projectPod, projectService } from '../../agent/discovery/kube-projection.ts';
import { seededRandom } from '../support/seeded-random.ts';
import {
  CLIENT_POD,
  CONTROLLER_SLICE,
  copy,
  DUAL_STACK_SERVICE,
  EXTERNAL_NAME_SERVICE,
  HEADLESS_SERVICE,
  HOST_NETWORK_POD,
  NAMESPACE,
  PENDING_POD,
  SPARSE_IPV6_SLICE,
} from './kube-fixtures.ts';

const ITERATIONS = 1500;

const KINDS: Array<{ kind: KubeRecord['kind']; project: (raw: unknown) => KubeRecord; seeds: object[] }> = [
  { kind: 'Service', project: projectService, seeds: [DUAL_STACK_SERVICE, HEADLESS_SERVICE, EXTERNAL_NAME_SERVICE] },
  { kind: 'EndpointSlice', project: projectEndpointSlice, seeds: [CONTROLLER_SLICE, SPARSE_IPV6_SLICE] },
  { kind: 'Pod', project: projectPod, seeds: [CLIENT_POD, HOST_NETWORK_POD, PENDING_POD] },
  { kind: 'Namespace', project: projectNamespace, seeds: [NAMESPACE] },
];

const HUGE = 'x'.repeat(100_000);

/** Values an API object should never hold where they land, plus plausible ones in the wrong place. */
const GARBAGE: Array<() => unknown> = [
  () => null,
  () => undefined,
  () => true,
  () => false,
  () => 0,
  () => -1,
  () => 1.5,
  () => 65536,
  () => Number.NaN,
  () => Number.POSITIVE_INFINITY,
  () => 2n ** 70n,
  () => Symbol('s'),
  () => '',
  () => 'None',
  () => 'TCP',
  () => 'grpc',
  () => '10.0.0.1',
  () => 'fd00::1',
  () => '::ffff:1.2.3.4',
  () => '2024-05-01T10:02:03Z',
  () => HUGE,
  () => [],
  () => ({}),
  () => [null],
  () => ['10.0.0.1'],
  () => ({ ready: 'yes', serving: 0 }),
  () => Object.create(null),
  () => Array.from({ length: 5000 }, (_, i) => ({ addresses: [`10.${i >> 8}.${i & 255}.1`] })),
  () => new Date(0),
  () => () => 'function',
];

interface Slot {
  parent: Record<string | number, unknown>;
  key: string | number;
}

/** Every place a value sits in `root`, the root's own fields included. */
function slots(root: unknown): Slot[] {
  const found: Slot[] = [];
  const visit = (value: unknown): void => {
    if (typeof value !== 'object' || value === null) return;
    const parent = value as Record<string | number, unknown>;
    for (const key of Array.isArray(value) ? value.keys() : Object.keys(value)) {
      found.push({ parent, key });
      visit(parent[key]);
    }
  };
  visit(root);
  return found;
}

function mutate(seed: object, random: () => number): unknown {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)];
  if (random() < 0.03) return pick(GARBAGE)();
  const object = copy(seed);
  const changes = 1 + Math.floor(random() * 3);
  for (let i = 0; i < changes; i++) {
    const all = slots(object);
    if (all.length === 0) break;
    const { parent, key } = pick(all);
    const action = random();
    if (action < 0.2) delete parent[key];
    else if (action < 0.3 && Array.isArray(parent[key])) (parent[key] as unknown[]).push(...(parent[key] as unknown[]));
    else parent[key] = pick(GARBAGE)();
  }
  return object;
}

/** The objects (not strings) reachable from `value`. */
function objectsOf(value: unknown, into = new Set<object>()): Set<object> {
  if (typeof value !== 'object' || value === null || into.has(value)) return into;
  into.add(value);
  for (const child of Object.values(value)) objectsOf(child, into);
  return into;
}

function assertWellFormed(record: KubeRecord, kind: string, raw: unknown): void {
  assert.equal(record.kind, kind);
  assert.deepEqual(Object.keys(record.metadata), ['name', 'namespace', 'resourceVersion']);
  for (const value of Object.values(record.metadata)) assert.equal(typeof value, 'string');
  assert.ok(record.invalid === null || (typeof record.invalid === 'string' && record.invalid.length < 400), String(record.invalid));
  assert.ok(Array.isArray(record.warnings) && record.warnings.length <= 6);
  for (const warning of record.warnings ?? []) assert.ok(typeof warning === 'string' && warning.length < 400, warning);
  // Plain data: serialisable, and no object of the raw input kept alive by the record.
  JSON.stringify(record);
  const rawObjects = objectsOf(raw);
  for (const object of objectsOf(record)) assert.ok(!rawObjects.has(object), 'the record shares an object with the raw input');
  if (record.invalid !== null) return;
  const isPort = (port: unknown) => Number.isInteger(port) && (port as number) >= 1 && (port as number) <= 65535;
  if (record.kind === 'Service') {
    for (const port of record.ports) assert.ok(typeof port.name === 'string' && isPort(port.port));
    for (const ip of record.clusterIPs) assert.equal(typeof ip, 'string');
  } else if (record.kind === 'EndpointSlice') {
    for (const port of record.ports) assert.ok(typeof port.name === 'string' && isPort(port.port));
    for (const endpoint of record.endpoints) {
      assert.ok(endpoint.addresses.length >= 1 && endpoint.addresses.every((address) => typeof address === 'string'));
      for (const condition of [endpoint.ready, endpoint.serving, endpoint.terminating]) assert.equal(typeof condition, 'boolean');
    }
  } else if (record.kind === 'Pod') {
    assert.ok(typeof record.nodeName === 'string' && typeof record.phase === 'string' && typeof record.hostNetwork === 'boolean');
    for (const ip of record.ips) assert.equal(typeof ip, 'string');
  }
}

describe('projections under fuzzing', () => {
  for (const { kind, project, seeds } of KINDS) {
    it(`${kind}: ${ITERATIONS} damaged objects give well-formed records`, () => {
      const random = seededRandom(0x6d657368 ^ kind.length);
      let invalid = 0;
      for (let i = 0; i < ITERATIONS; i++) {
        const raw = mutate(seeds[i % seeds.length], random);
        let record: KubeRecord;
        try {
          record = project(raw);
        } catch (error) {
          assert.fail(`iteration ${i} threw ${String(error)}`);
        }
        assertWellFormed(record, kind, raw);
        if (record.invalid !== null) invalid += 1;
      }
      // The fuzz must exercise both paths, or it proves little.
      assert.ok(invalid > 0 && invalid < ITERATIONS, `${invalid} of ${ITERATIONS} invalid`);
    });
  }

  it('turns hostile inputs (throwing getters, revoked proxies) into invalid records', () => {
    // Every kind reads annotations, after its identity.
    const metadata = Object.defineProperty({ name: 'x', namespace: 'y' }, 'annotations', {
      enumerable: true,
      get() {
        throw new Error('boom');
      },
    });
    const throwing = { metadata, spec: {}, status: {}, addressType: 'IPv4' };
    const revoked = Proxy.revocable({}, {});
    revoked.revoke();
    const trap = new Proxy(
      {},
      {
        get: () => {
          throw 'not an Error';
        },
      },
    );
    for (const { kind, project } of KINDS) {
      for (const raw of [throwing, revoked.proxy, trap]) {
        const record = project(raw);
        assert.equal(record.kind, kind);
        assert.equal(typeof record.invalid, 'string');
      }
    }
    assert.equal(projectService(throwing).invalid, 'unreadable object (boom)');
    assert.deepEqual(projectService(throwing).metadata, { name: 'x', namespace: 'y', resourceVersion: '' });
    assert.equal(projectPod(trap).invalid, 'unreadable object ("not an Error")');
  });
});
