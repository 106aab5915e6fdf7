// Eligibility rules (kube-proxy's; see docs/architecture.md, Balancing): ready first, then terminating-but-serving,
// never not-serving.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type EndpointSpec, eligibleEndpoints, isActive } from '../../agent/registry/endpoint.ts';

type State = 'ready' | 'terminating' | 'terminating-not-serving' | 'not-ready' | 'ready-not-serving';

function endpoint(n: number, state: State): EndpointSpec {
  const flags: Record<State, [ready: boolean, serving: boolean, terminating: boolean]> = {
    ready: [true, true, false],
    terminating: [false, true, true],
    'terminating-not-serving': [false, false, true],
    'not-ready': [false, false, false],
    // Inconsistent (ready implies serving in Kubernetes), but "never serving === false" must hold anyway.
    'ready-not-serving': [true, false, false],
  };
  const [ready, serving, terminating] = flags[state];
  return { address: `10.0.0.${n}:50051`, host: `10.0.0.${n}`, port: 50051, ready, serving, terminating };
}

const table: { name: string; states: State[]; eligible: number[] }[] = [
  { name: 'all ready', states: ['ready', 'ready', 'ready'], eligible: [1, 2, 3] },
  { name: 'ready ones win over terminating', states: ['terminating', 'ready', 'terminating'], eligible: [2] },
  { name: 'not-ready excluded', states: ['ready', 'not-ready'], eligible: [1] },
  { name: 'all terminating but serving: all of them', states: ['terminating', 'terminating'], eligible: [1, 2] },
  {
    name: 'fallback skips terminating ones that stopped serving',
    states: ['terminating-not-serving', 'terminating', 'not-ready'],
    eligible: [2],
  },
  { name: 'nothing serving: none', states: ['terminating-not-serving', 'not-ready'], eligible: [] },
  { name: 'ready but not serving: never', states: ['ready-not-serving', 'terminating'], eligible: [2] },
  { name: 'empty', states: [], eligible: [] },
  { name: 'order kept', states: ['ready', 'terminating', 'ready', 'ready'], eligible: [1, 3, 4] },
];

for (const row of table) {
  test(`eligibleEndpoints: ${row.name}`, () => {
    const endpoints = row.states.map((state, i) => endpoint(i + 1, state));
    const result = eligibleEndpoints(endpoints);
    assert.deepEqual(
      result.map((e) => e.address),
      row.eligible.map((n) => `10.0.0.${n}:50051`),
    );
    assert.notEqual(result, endpoints);
    for (const e of result) assert.ok(e.serving, 'an endpoint that is not serving is never eligible');
  });
}

test('isActive: only ready, serving and not terminating', () => {
  assert.equal(isActive(endpoint(1, 'ready')), true);
  for (const state of ['terminating', 'terminating-not-serving', 'not-ready', 'ready-not-serving'] as const) {
    assert.equal(isActive(endpoint(1, state)), false, state);
  }
  assert.equal(isActive({ ...endpoint(1, 'ready'), terminating: true }), false);
});
