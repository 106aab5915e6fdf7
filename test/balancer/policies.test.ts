// Policy names: the list config validates against, and one policy per name.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { policyByName } from '../../agent/balancer/policies.ts';
import { BALANCER_NAMES, DEFAULT_BALANCER, isBalancerName } from '../../agent/vocabulary/balancer-names.ts';
import type { BalancerName } from '../../agent/vocabulary/balancer-names.ts';

test('the valid names, default first', () => {
  assert.deepEqual(BALANCER_NAMES, ['p2c-ewma', 'least-request', 'round-robin']);
  assert.equal(DEFAULT_BALANCER, BALANCER_NAMES[0]);
  assert.ok(Object.isFrozen(BALANCER_NAMES));
});

test('isBalancerName accepts exactly the valid names', () => {
  for (const name of BALANCER_NAMES) assert.equal(isBalancerName(name), true);
  for (const bad of ['', 'P2C-EWMA', 'random', 'ewma', null, undefined, 3]) assert.equal(isBalancerName(bad), false, String(bad));
});

test('policyByName builds the named policy and refuses others', () => {
  for (const name of BALANCER_NAMES) assert.equal(policyByName(name).name, name);
  assert.throws(() => policyByName('random' as BalancerName), /unknown balancer random; expected one of p2c-ewma, least-request, round-robin/);
});
