// Least-request: the fewest in flight wins; ties are spread evenly; above the scan limit, two random choices.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EndpointLoad } from '../../agent/balancer/endpoint-load.ts';
import { FULL_SCAN_LIMIT, LeastRequestPolicy } from '../../agent/balancer/least-request.ts';
import { EMPTY_PICKER } from '../../agent/balancer/picker.ts';
import { seededRandomInt } from '../support/seeded-random.ts';

function loads(n: number, inFlight: number[] = []): EndpointLoad[] {
  return Array.from({ length: n }, (_, i) => {
    const load = new EndpointLoad(`e${i}`);
    load.inFlight = inFlight[i] ?? 0;
    return load;
  });
}

function count(picker: { pick(): EndpointLoad | null }, n: number, start = false): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const load = picker.pick() as EndpointLoad;
    if (start) load.onStart();
    counts.set(load.address, (counts.get(load.address) ?? 0) + 1);
  }
  return counts;
}

test('small sets: always the endpoint with the fewest requests in flight', () => {
  const endpoints = loads(5, [4, 2, 7, 1, 3]);
  const picker = new LeastRequestPolicy({ randomInt: seededRandomInt(1) }).createPicker(endpoints);
  assert.deepEqual([...count(picker, 50)], [['e3', 50]]);
});

test('requests that stay in flight are spread exactly evenly', () => {
  const endpoints = loads(3);
  const picker = new LeastRequestPolicy({ randomInt: seededRandomInt(2) }).createPicker(endpoints);
  const counts = count(picker, 300, true);
  assert.deepEqual([...counts.values()], [100, 100, 100]);
  assert.deepEqual(
    endpoints.map((e) => e.inFlight),
    [100, 100, 100],
  );
});

test('ties go to each tied endpoint equally often, not to the first scanned', () => {
  const endpoints = loads(4, [0, 5, 0, 0]);
  const picker = new LeastRequestPolicy({ randomInt: seededRandomInt(3) }).createPicker(endpoints);
  const counts = count(picker, 30_000);
  assert.equal(counts.get('e1'), undefined);
  for (const address of ['e0', 'e2', 'e3']) {
    const share = (counts.get(address) as number) / 30_000;
    assert.ok(Math.abs(share - 1 / 3) < 0.02, `${address}: ${share}`);
  }
});

test('above the scan limit: two distinct random endpoints, the less loaded wins', () => {
  const n = FULL_SCAN_LIMIT + 12;
  const inFlight = Array.from({ length: n }, () => 1);
  inFlight[7] = 100;
  const endpoints = loads(n, inFlight);
  // Draws 0 and 0 make the choices endpoints 0 and 1 (distinct), never 0 twice.
  const draws = [0, 0];
  const fixed = new LeastRequestPolicy({ randomInt: () => draws.shift() as number }).createPicker(endpoints);
  endpoints[1].inFlight = 0;
  assert.equal(fixed.pick()?.address, 'e1');
  const picker = new LeastRequestPolicy({ randomInt: seededRandomInt(4) }).createPicker(endpoints);
  const counts = count(picker, 5000);
  assert.equal(counts.get('e7'), undefined, 'the most loaded endpoint loses every pair');
  assert.equal(counts.size, n - 1);
});

test('one endpoint: that one; none: the empty picker', () => {
  const policy = new LeastRequestPolicy();
  assert.equal(policy.createPicker(loads(1, [9])).pick()?.address, 'e0');
  assert.equal(policy.createPicker([]), EMPTY_PICKER);
  assert.equal(policy.name, 'least-request');
});
