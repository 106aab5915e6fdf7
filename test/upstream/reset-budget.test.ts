// The reset budget's token bucket with explicit times: the burst, refill at the rate, the cap, fractions kept, time that does not move.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ResetBudget } from '../../agent/upstream/reset-budget.ts';
import type { Clock } from '../../agent/vocabulary/clock.ts';

/** A clock that says `now` (the budget reads it once, when made; takes are given their time). */
const clockAt = (now: number): Clock => ({ now: () => now, setTimeout: () => null, clearTimeout: () => {} });

/** How many of `attempts` takes at time `now` succeed. */
function takes(budget: ResetBudget, now: number, attempts: number): number {
  let taken = 0;
  for (let i = 0; i < attempts; i++) if (budget.take(now)) taken++;
  return taken;
}

describe('ResetBudget', () => {
  it('starts full: the burst is available at once, and not one more', () => {
    const budget = new ResetBudget(5, 4, clockAt(1000));
    assert.deepEqual(
      Array.from({ length: 7 }, () => budget.take(1000)),
      [true, true, true, true, true, false, false],
    );
  });

  it('refills at the rate: 4 per second is one every 250 ms', () => {
    const budget = new ResetBudget(3, 4, clockAt(0));
    assert.equal(takes(budget, 0, 3), 3);
    assert.equal(budget.take(249), false);
    assert.equal(budget.take(250), true);
    assert.equal(budget.take(250), false);
    assert.equal(takes(budget, 750, 5), 2);
    assert.equal(takes(budget, 1000, 5), 1);
  });

  it('keeps fractions of a token across takes that fail', () => {
    const budget = new ResetBudget(2, 4, clockAt(0));
    assert.equal(takes(budget, 0, 2), 2);
    // Half a token at 125 ms (refused), the other half by 250 ms.
    assert.equal(budget.take(125), false);
    assert.equal(budget.take(250), true);
    assert.equal(budget.take(250), false);
    assert.equal(budget.take(375), false);
    assert.equal(budget.take(437.5), false);
    assert.equal(budget.take(500), true);
  });

  it('never holds more than the burst, however long it was idle', () => {
    const budget = new ResetBudget(3, 4, clockAt(0));
    assert.equal(takes(budget, 0, 3), 3);
    assert.equal(takes(budget, 3_600_000, 10), 3);
    // Not full only at the moment of the take: the cap applies to what accumulates, so 250 ms later there is 1.
    assert.equal(takes(budget, 3_600_250, 10), 1);
  });

  it('a full bucket stays full: idle time before the first take does not add beyond the burst', () => {
    const budget = new ResetBudget(2, 1000, clockAt(0));
    assert.equal(takes(budget, 10_000, 5), 2);
  });

  it('time that stands still or goes backwards adds nothing and moves nothing', () => {
    const budget = new ResetBudget(1, 4, clockAt(1000));
    assert.equal(budget.take(1000), true);
    assert.equal(budget.take(1000), false);
    assert.equal(budget.take(900), false);
    assert.equal(budget.take(500), false);
    // Refill counts from 1000 still: one token at 1250, not earlier.
    assert.equal(budget.take(1249), false);
    assert.equal(budget.take(1250), true);
  });

  it('time that goes backwards takes nothing away either', () => {
    const budget = new ResetBudget(2, 4, clockAt(1000));
    assert.equal(budget.take(500), true);
    assert.equal(budget.take(0), true);
    assert.equal(budget.take(0), false);
    // Still counted from 1000: the first token back at 1250.
    assert.equal(budget.take(1249), false);
    assert.equal(budget.take(1250), true);
  });

  it('counts from the time it was made, not from zero', () => {
    const budget = new ResetBudget(1, 4, clockAt(10_000));
    assert.equal(budget.take(10_000), true);
    assert.equal(budget.take(10_200), false);
    assert.equal(budget.take(10_250), true);
  });

  it('sustains exactly its rate once the burst is spent', () => {
    const budget = new ResetBudget(100, 20, clockAt(0));
    assert.equal(takes(budget, 0, 150), 100);
    let granted = 0;
    // One attempt every 10 ms for 10 s: 20 per second, so 200 granted.
    for (let t = 10; t <= 10_000; t += 10) if (budget.take(t)) granted++;
    assert.equal(granted, 200);
  });
});
