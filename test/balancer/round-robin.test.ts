// Round-robin: exact order from a random start, exact counts, snapshots independent of their input.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EndpointLoad } from '../../agent/balancer/endpoint-load.ts';
import { EMPTY_PICKER } from '../../agent/balancer/picker.ts';
import { RoundRobinPolicy } from '../../agent/balancer/round-robin.ts';

const loads = (...names: string[]): EndpointLoad[] => names.map((name) => new EndpointLoad(name));

function picks(picker: { pick(): EndpointLoad | null }, n: number): (string | undefined)[] {
  return Array.from({ length: n }, () => picker.pick()?.address);
}

test('exact sequence, starting where the random offset says', () => {
  const endpoints = loads('a', 'b', 'c');
  assert.deepEqual(picks(new RoundRobinPolicy({ randomInt: () => 0 }).createPicker(endpoints), 7), ['a', 'b', 'c', 'a', 'b', 'c', 'a']);
  assert.deepEqual(picks(new RoundRobinPolicy({ randomInt: () => 4 }).createPicker(endpoints), 4), ['b', 'c', 'a', 'b']);
  assert.deepEqual(picks(new RoundRobinPolicy({ randomInt: () => 5 }).createPicker(endpoints), 4), ['c', 'a', 'b', 'c']);
});

test('each new picker draws its own start', () => {
  const draws = [3, 8];
  const policy = new RoundRobinPolicy({ randomInt: () => draws.shift() as number });
  const endpoints = loads('a', 'b', 'c');
  assert.equal(policy.createPicker(endpoints).pick()?.address, 'a');
  assert.equal(policy.createPicker(endpoints).pick()?.address, 'c');
});

test('3000 picks over 3 endpoints: exactly 1000 each', () => {
  const picker = new RoundRobinPolicy({ randomInt: () => Math.floor(Math.random() * 0x40000000) }).createPicker(loads('a', 'b', 'c'));
  const counts = new Map<string, number>();
  for (let i = 0; i < 3000; i++) {
    const address = picker.pick()?.address as string;
    counts.set(address, (counts.get(address) ?? 0) + 1);
  }
  assert.deepEqual([...counts.values()], [1000, 1000, 1000]);
});

test('one endpoint: always that one; none: the empty picker', () => {
  const picker = new RoundRobinPolicy().createPicker(loads('only'));
  assert.deepEqual(picks(picker, 3), ['only', 'only', 'only']);
  assert.equal(new RoundRobinPolicy().createPicker([]), EMPTY_PICKER);
  assert.equal(EMPTY_PICKER.pick(), null);
  assert.equal(new RoundRobinPolicy().name, 'round-robin');
});

test('a picker keeps its own copy of the endpoint list', () => {
  const endpoints = loads('a', 'b');
  const picker = new RoundRobinPolicy({ randomInt: () => 0 }).createPicker(endpoints);
  endpoints.push(new EndpointLoad('c'));
  endpoints[0] = new EndpointLoad('z');
  assert.deepEqual(picks(picker, 4), ['a', 'b', 'a', 'b']);
});
