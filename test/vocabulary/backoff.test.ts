// Reconnect backoff with an injected random: equal jitter (half the ceiling fixed, half random), doubling, the cap.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type BackoffPolicy, backoffDelay, DEFAULT_BACKOFF } from '../../agent/vocabulary/backoff.ts';

const POLICY: BackoffPolicy = { initialMs: 100, maxMs: 1000 };

describe('backoffDelay', () => {
  it('no failure, no delay', () => {
    assert.equal(backoffDelay(POLICY, 0, () => 0.5), 0);
    assert.equal(backoffDelay(POLICY, -1, () => 0.5), 0);
  });

  it('the ceiling doubles from initialMs with each failure, up to maxMs', () => {
    // random 0.999: just under the ceiling.
    const top = () => 0.999;
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 30].map((failures) => backoffDelay(POLICY, failures, top)),
      [99, 199, 399, 799, 999, 999, 999],
    );
  });

  it('equal jitter: never less than half the ceiling, spread over the other half', () => {
    assert.deepEqual(
      [0, 0.25, 0.5, 0.999].map((r) => backoffDelay(POLICY, 3, () => r)),
      [200, 250, 300, 399],
    );
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((failures) => backoffDelay(POLICY, failures, () => 0)),
      [50, 100, 200, 400, 500],
    );
  });

  it('draws exactly one random number per delay', () => {
    let draws = 0;
    backoffDelay(POLICY, 2, () => {
      draws++;
      return 0.5;
    });
    assert.equal(draws, 1);
  });

  it('a huge failure count stays at the cap and finite', () => {
    assert.equal(backoffDelay(DEFAULT_BACKOFF, 10_000, () => 0.5), 7500);
    assert.equal(backoffDelay({ initialMs: 1, maxMs: Number.MAX_SAFE_INTEGER }, 10_000, () => 0), 2 ** 19);
  });

  it('defaults: 100 ms first, 10 s at most', () => {
    assert.deepEqual(DEFAULT_BACKOFF, { initialMs: 100, maxMs: 10_000 });
    assert.equal(backoffDelay(DEFAULT_BACKOFF, 1, () => 0.5), 75);
  });
});
