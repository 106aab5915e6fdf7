// What every policy's picker keeps and decides at its edges: its own frozen copy of the endpoints, least-request's
// switch from a full scan to two choices exactly above the limit, and the tie rule of two choices.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createTimeCell, EndpointLoad } from '../../agent/balancer/endpoint-load.ts';
import { FULL_SCAN_LIMIT, LeastRequestPolicy } from '../../agent/balancer/least-request.ts';
import { PeakEwmaPolicy } from '../../agent/balancer/p2c-peak-ewma.ts';
import type { BalancingPolicy } from '../../agent/balancer/picker.ts';
import { RoundRobinPolicy } from '../../agent/balancer/round-robin.ts';

function loads(inFlight: number[]): EndpointLoad[] {
  return inFlight.map((n, i) => {
    const load = new EndpointLoad(`e${i}`);
    load.inFlight = n;
    return load;
  });
}

/** A randomInt that hands out `values` in turn and counts its calls. */
function scripted(values: number[]): { randomInt: () => number; calls: () => number } {
  let calls = 0;
  return {
    randomInt: () => values[calls++ % values.length],
    calls: () => calls,
  };
}

test("every policy's picker keeps its own copy: the caller's array stays its own, unfrozen", () => {
  const policies: BalancingPolicy[] = [
    new RoundRobinPolicy({ randomInt: () => 0 }),
    new LeastRequestPolicy({ randomInt: () => 0 }),
    new PeakEwmaPolicy({ randomInt: () => 0, time: createTimeCell() }),
  ];
  for (const policy of policies) {
    const endpoints = loads([0, 0]);
    const [a, b] = endpoints;
    const picker = policy.createPicker(endpoints);
    assert.equal(Object.isFrozen(endpoints), false, policy.name);
    endpoints.length = 0;
    endpoints.push(new EndpointLoad('z'));
    for (let i = 0; i < 4; i++) {
      const picked = picker.pick();
      assert.ok(picked === a || picked === b, `${policy.name} picked ${picked?.address}`);
    }
  }
});

test('least-request scans all endpoints up to the limit, drawing only for ties', () => {
  // Exactly FULL_SCAN_LIMIT endpoints, one least loaded and no tie: a scan finds it with no draw at all.
  const inFlight = Array.from({ length: FULL_SCAN_LIMIT }, () => 5);
  inFlight[1] = 0;
  const random = scripted([FULL_SCAN_LIMIT - 1, 0]);
  const picker = new LeastRequestPolicy({ randomInt: random.randomInt }).createPicker(loads(inFlight));
  for (let i = 0; i < 10; i++) assert.equal(picker.pick()?.address, 'e1');
  assert.equal(random.calls(), 0);
  // The same with a limit of 3 and three endpoints: e1 every time (two choices from draws 2, 0 would say e2).
  const small = scripted([2, 0]);
  const scan = new LeastRequestPolicy({ randomInt: small.randomInt }, 3).createPicker(loads([5, 0, 5]));
  assert.equal(scan.pick()?.address, 'e1');
  assert.equal(small.calls(), 0);
});

test('least-request above the limit: two draws per pick, and a tie goes to the first drawn', () => {
  const random = scripted([0, 0, 3, 1]);
  const endpoints = loads(Array.from({ length: FULL_SCAN_LIMIT + 1 }, () => 2));
  const picker = new LeastRequestPolicy({ randomInt: random.randomInt }).createPicker(endpoints);
  // Draws 0, 0: e0 then e1 (the second draw skips the first); all equal, so e0.
  assert.equal(picker.pick()?.address, 'e0');
  // Draws 3, 1: e3 then e1; equal, so e3.
  assert.equal(picker.pick()?.address, 'e3');
  assert.equal(random.calls(), 4);
});

test('least-request with its default randomness breaks ties', () => {
  const picker = new LeastRequestPolicy().createPicker(loads([1, 1, 1]));
  const seen = new Set<string>();
  for (let i = 0; i < 60; i++) seen.add(picker.pick()?.address as string);
  assert.deepEqual([...seen].sort(), ['e0', 'e1', 'e2']);
});
