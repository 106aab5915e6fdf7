// The pickers' randomness: fastRandomInt's seeding, and the default dependencies a policy gets when used alone.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EndpointLoad } from '../../agent/balancer/endpoint-load.ts';
import { fastRandomInt, RANDOM_INT_RANGE } from '../../agent/balancer/picker.ts';
import { DEFAULT_POLICY_DEPS, policyByName } from '../../agent/balancer/policies.ts';
import { BALANCER_NAMES } from '../../agent/vocabulary/balancer-names.ts';

function draws(randomInt: () => number, n = 16): number[] {
  return Array.from({ length: n }, () => randomInt());
}

test('fastRandomInt: small integers in [0, 2^30), one sequence per seed', () => {
  const sequence = draws(fastRandomInt(12345), 1000);
  for (const x of sequence) assert.ok(Number.isInteger(x) && x >= 0 && x < RANDOM_INT_RANGE, String(x));
  assert.ok(new Set(sequence).size > 990, 'the draws vary');
  assert.deepEqual(draws(fastRandomInt(12345)), sequence.slice(0, 16), 'the same seed, the same sequence');
  assert.notDeepEqual(draws(fastRandomInt(1)), draws(fastRandomInt(2)), 'another seed, another sequence');
});

test('fastRandomInt: a zero seed (xorshift would stay at zero) still varies', () => {
  const sequence = draws(fastRandomInt(0));
  assert.ok(new Set(sequence).size > 1, `seed 0 gave ${sequence.join(' ')}`);
  assert.notDeepEqual(sequence, draws(fastRandomInt(1)));
});

test('fastRandomInt without a seed: each generator its own sequence', () => {
  // Seeds drawn from Math.random over 2^32 values: two equal ones would be a 1 in 4 billion event.
  assert.notDeepEqual(draws(fastRandomInt()), draws(fastRandomInt()));
});

test('a policy built by name alone has working randomness and time', () => {
  assert.equal(typeof DEFAULT_POLICY_DEPS.randomInt(), 'number');
  assert.deepEqual([...DEFAULT_POLICY_DEPS.time], [0]);
  for (const name of BALANCER_NAMES) {
    const endpoints = ['a', 'b', 'c'].map((address) => new EndpointLoad(address));
    const picker = policyByName(name).createPicker(endpoints);
    const seen = new Set<string>();
    for (let i = 0; i < 60; i++) seen.add(picker.pick()?.address as string);
    assert.deepEqual([...seen].sort(), ['a', 'b', 'c'], name);
  }
});
