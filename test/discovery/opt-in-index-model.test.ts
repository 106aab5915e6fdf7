// The opt-in index against a from-scratch recomputation, over seeded random Pod and Namespace events.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { InjectSetting, NamespaceRecord, PodRecord } from '../../agent/discovery/kube-objects.ts';
import { type OptInChange, OptInIndex } from '../../agent/discovery/opt-in-index.ts';
import { NODE, ns, pod } from '../support/opt-in-records.ts';
import { seededRandom } from '../support/seeded-random.ts';

/**
 * The index against a from-scratch model: the model keeps every current record and, per (pod, IP), the step at which
 * the pod started listing the IP; after each event it recomputes the whole enrollment. The index must equal it, and
 * the changes it emitted in that step must be exactly the IPs whose enrollment differs, in a consistent order.
 */
describe('OptInIndex: seeded random events against a from-scratch recomputation', () => {
  const NAMESPACES = ['red', 'blue', 'green'];
  const NAMES = ['a', 'b', 'c'];
  const IPS = ['10.0.0.1', '10.0.0.2', '10.0.0.3', 'fd00::1', 'fd00::2'];
  const PHASES = ['Pending', 'Running', 'Running', 'Running', 'Succeeded', 'Failed'];
  const SETTINGS: Array<InjectSetting | null> = [null, 'enabled', 'disabled'];

  class Model {
    readonly pods = new Map<string, PodRecord>();
    readonly namespaces = new Map<string, NamespaceRecord>();
    private readonly since = new Map<string, number>();
    private step = 0;

    event(kind: 'applyPod' | 'deletePod', record: PodRecord): void;
    event(kind: 'applyNamespace' | 'deleteNamespace', record: NamespaceRecord): void;
    event(kind: string, record: PodRecord | NamespaceRecord): void {
      this.step++;
      const key = `${record.metadata.namespace}/${record.metadata.name}`;
      if (kind === 'applyPod') this.pods.set(key, record as PodRecord);
      if (kind === 'deletePod') this.pods.delete(key);
      if (kind === 'applyNamespace') this.namespaces.set(record.metadata.name, record as NamespaceRecord);
      if (kind === 'deleteNamespace') this.namespaces.delete(record.metadata.name);
      const held = new Set<string>();
      for (const [podKey, p] of this.pods) {
        const holds = p.invalid === null && p.nodeName === NODE && !p.hostNetwork && p.phase !== 'Succeeded' && p.phase !== 'Failed';
        if (holds) for (const ip of p.ips) held.add(`${podKey} ${ip}`);
      }
      for (const claim of this.since.keys()) if (!held.has(claim)) this.since.delete(claim);
      for (const claim of held) if (!this.since.has(claim)) this.since.set(claim, this.step);
    }

    enrollment(): Map<string, string> {
      const owner = new Map<string, { podKey: string; since: number }>();
      for (const [claim, since] of this.since) {
        const [podKey, ip] = claim.split(' ');
        const current = owner.get(ip);
        if (current === undefined || since > current.since) owner.set(ip, { podKey, since });
      }
      const result = new Map<string, string>();
      for (const [ip, { podKey }] of owner) {
        const p = this.pods.get(podKey)!;
        const namespace = this.namespaces.get(p.metadata.namespace);
        const fromNamespace = namespace === undefined || namespace.invalid !== null ? null : namespace.inject;
        if ((p.inject ?? fromNamespace) === 'enabled') result.set(ip, podKey);
      }
      return result;
    }
  }

  /** What the runs went through, so that a generator that stopped producing the interesting cases is noticed. */
  const exercised = { changes: 0, moves: 0 };

  function run(seed: number, steps: number): void {
    const random = seededRandom(seed);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
    const chance = (p: number): boolean => random() < p;
    const index = new OptInIndex(NODE);
    const model = new Model();
    const mirror = new Map<string, string>();
    let emitted: OptInChange[] = [];
    index.subscribe((change) => emitted.push(change));

    for (let step = 0; step < steps; step++) {
      const before = model.enrollment();
      const roll = random();
      let what: string;
      if (roll < 0.6) {
        const ips = IPS.filter(() => chance(0.25)).slice(0, 2);
        const record = pod(pick(NAMES), {
          namespace: pick(NAMESPACES),
          ips,
          inject: pick(SETTINGS),
          nodeName: chance(0.85) ? NODE : 'node-2',
          hostNetwork: chance(0.08),
          phase: pick(PHASES),
          invalid: chance(0.08) ? 'broken' : null,
        });
        index.applyPod(record);
        model.event('applyPod', record);
        what = `applyPod ${JSON.stringify(record)}`;
      } else if (roll < 0.8) {
        const record = pod(pick(NAMES), { namespace: pick(NAMESPACES), ips: [pick(IPS)], inject: pick(SETTINGS) });
        index.deletePod(record);
        model.event('deletePod', record);
        what = `deletePod ${record.metadata.namespace}/${record.metadata.name}`;
      } else if (roll < 0.95) {
        const record = ns(pick(NAMESPACES), pick(SETTINGS), chance(0.1) ? 'broken' : null);
        index.applyNamespace(record);
        model.event('applyNamespace', record);
        what = `applyNamespace ${JSON.stringify(record)}`;
      } else {
        const record = ns(pick(NAMESPACES), null);
        index.deleteNamespace(record);
        model.event('deleteNamespace', record);
        what = `deleteNamespace ${record.metadata.name}`;
      }
      const context = `seed ${seed}, step ${step}: ${what}`;
      const after = model.enrollment();

      const touched: string[] = [];
      for (const change of emitted) {
        const podKey = `${change.pod.namespace}/${change.pod.name}`;
        if (change.type === 'unenroll') {
          assert.equal(mirror.get(change.ip), podKey, `${context}: unenroll of what was not enrolled`);
          mirror.delete(change.ip);
        } else {
          assert.equal(mirror.has(change.ip), false, `${context}: enroll over an enrolled IP`);
          mirror.set(change.ip, podKey);
        }
        if (!touched.includes(change.ip)) touched.push(change.ip);
      }
      exercised.changes += emitted.length;
      if (touched.length < emitted.length) exercised.moves++;
      emitted = [];
      const differing = new Set([...before.keys(), ...after.keys()].filter((ip) => before.get(ip) !== after.get(ip)));
      assert.deepEqual(new Set(touched), differing, `${context}: changes for exactly the IPs that changed`);
      const indexed = new Map([...index.enrolled].map(([ip, p]) => [ip, `${p.namespace}/${p.name}`]));
      assert.deepEqual(indexed, after, `${context}: index equals the recomputation`);
      assert.deepEqual(mirror, after, `${context}: the changes replayed equal the recomputation`);
    }
  }

  it('holds for 20 seeds of 400 events each', () => {
    for (let seed = 1; seed <= 20; seed++) run(seed, 400);
    assert.ok(exercised.changes > 1000, `only ${exercised.changes} changes`);
    assert.ok(exercised.moves > 50, `only ${exercised.moves} steps moved an IP from one pod to another`);
  });
});
