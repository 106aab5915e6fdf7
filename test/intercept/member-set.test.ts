// MemberSet: versions behave as plain sets, and two versions of one base differ exactly where their members do.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemberSet, membersMissing } from '../../agent/intercept/member-set.ts';
import { setDefinitions } from '../../agent/intercept/names.ts';
import { planSets } from '../../agent/intercept/set-plan.ts';
import { seededRandom } from '../support/seeded-random.ts';

function naiveMissing(set: ReadonlySet<string>, from: ReadonlySet<string>): string[] {
  return [...from].filter((member) => !set.has(member)).sort();
}

describe('MemberSet', () => {
  it('every version holds what a Set given the same changes holds, and versions diff as Sets do', () => {
    const random = seededRandom(7);
    const universe = Array.from({ length: 3000 }, (_, n) => `10.1.${n >> 8}.${n & 255},tcp:50051`);
    const versions: Array<{ version: MemberSet; expected: Set<string> }> = [];
    let version = MemberSet.of(universe.slice(0, 2000));
    let expected = new Set(universe.slice(0, 2000));
    let flattened = 0;
    for (let step = 0; step < 400; step++) {
      const adds: string[] = [];
      const removes: string[] = [];
      for (let k = Math.floor(random() * 12); k > 0; k--) {
        const member = universe[Math.floor(random() * universe.length)];
        if (expected.has(member) && !adds.includes(member)) removes.push(member);
        else if (!removes.includes(member)) adds.push(member);
      }
      const next = version.with(adds, removes);
      expected = new Set(expected);
      for (const member of removes) expected.delete(member);
      for (const member of adds) expected.add(member);
      if (MemberSet.missingFromVersion(next, version) === null) flattened++;
      version = next;
      versions.push({ version, expected });
      assert.equal(version.size, expected.size, `step ${step}`);
      assert.deepEqual(new Set(version), expected, `step ${step}`);
      assert.equal([...version].length, expected.size, `step ${step}: no member twice`);
    }
    assert.ok(flattened >= 2, `the overlay was flattened ${flattened} times over 400 steps`);
    for (let pick = 0; pick < 300; pick++) {
      const a = versions[Math.floor(random() * versions.length)];
      const b = versions[Math.floor(random() * versions.length)];
      assert.deepEqual(membersMissing(a.version, b.version).sort(), naiveMissing(a.expected, b.expected));
      assert.deepEqual(membersMissing(a.expected, b.version).sort(), naiveMissing(a.expected, b.expected), 'against a plain Set');
      for (const member of universe.slice(1990, 2010)) assert.equal(a.version.has(member), a.expected.has(member));
    }
  });

  it('a sets pass planned against the version it applied last adds and removes only what changed since', () => {
    const [, destinations] = setDefinitions(4);
    const applied = MemberSet.of(Array.from({ length: 10_000 }, (_, n) => `10.2.${n >> 8}.${n & 255},tcp:80`));
    const next = applied.with(['10.3.0.1,tcp:80'], ['10.2.0.7,tcp:80']);
    const current = new Map([[destinations.name, { name: destinations.name, type: destinations.type, family: destinations.family, timeoutS: null, members: applied, expiring: new Set<string>() }]]);
    const plan = planSets([destinations], new Map([[destinations.name, next]]), current, 'open');
    assert.deepEqual(plan.changes, [{ name: destinations.name, created: false, added: ['10.3.0.1,tcp:80'], removed: ['10.2.0.7,tcp:80'] }]);
    assert.equal(plan.script, `del ${destinations.name} 10.2.0.7,tcp:80 -exist\nadd ${destinations.name} 10.3.0.1,tcp:80 -exist\n`);
  });
});
