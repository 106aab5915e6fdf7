// The agent-wide buffer budget (overload with a resume mark, connections waiting for its end) and the idle sweep of
// client connections, on a fake clock.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BufferBudget } from '../../agent/proxy/buffer-budget.ts';
import { IdleConnectionSweeper, type SweptConnection } from '../../agent/proxy/idle-connection-sweeper.ts';
import { FakeTimers } from '../support/fake-timers.ts';

describe('BufferBudget', () => {
  it('is exhausted past its limit, within again below 3/4 of it, with one event each way and waiters run once', () => {
    const clock = new FakeTimers();
    const events: string[] = [];
    const budget = new BufferBudget(1000, clock, {
      onExhausted: (held, limit) => events.push(`exhausted ${held}/${limit}`),
      onRelieved: (held, durationMs) => events.push(`within ${held} after ${durationMs}`),
    });
    budget.add(1000);
    assert.equal(budget.exhausted, false, 'at the limit is still within');
    let ran = 0;
    budget.add(1);
    budget.add(500);
    budget.whenWithin(() => ran++);
    assert.equal(budget.exhausted, true);
    clock.advance(250);
    budget.add(-600);
    assert.equal(budget.exhausted, true, '901 is above the resume mark (750)');
    assert.equal(ran, 0);
    budget.add(-152);
    assert.equal(budget.exhausted, false);
    assert.equal(ran, 1);
    budget.whenWithin(() => ran++);
    assert.equal(ran, 2, 'a waiter added while within runs at once');
    assert.deepEqual(events, ['exhausted 1001/1000', 'within 749 after 250']);
    assert.equal(budget.held, 749);
  });
});

class FakeConnection implements SweptConnection {
  activeStreamCount = 0;
  goaways: string[] = [];
  goAway(code: number, debug?: string): void {
    this.goaways.push(`${code} ${debug}`);
  }
}

describe('IdleConnectionSweeper', () => {
  it('closes a connection without streams for the timeout, not one that opened a stream meanwhile', () => {
    const clock = new FakeTimers();
    const idle = new FakeConnection();
    const busy = new FakeConnection();
    const closed: number[] = [];
    const sweeper = new IdleConnectionSweeper({
      idleTimeoutMs: 4000,
      clock,
      connections: () => [idle, busy],
      onIdleClosed: (count) => closed.push(count),
    });
    sweeper.start();
    // Sweeps every 1000 ms: both are first seen idle at 1000.
    clock.advance(3000);
    sweeper.busy(busy);
    clock.advance(2000);
    assert.deepEqual(idle.goaways, ['0 idle timeout'], 'idle since the sweep at 1000, closed at the sweep at 5000');
    assert.deepEqual(busy.goaways, []);
    assert.deepEqual(closed, [1]);
    busy.activeStreamCount = 1;
    clock.advance(10_000);
    assert.deepEqual(busy.goaways, [], 'a connection with a stream is never idle');
    busy.activeStreamCount = 0;
    clock.advance(4000);
    assert.deepEqual(busy.goaways, []);
    clock.advance(1000);
    assert.deepEqual(busy.goaways, ['0 idle timeout']);
    sweeper.stop();
  });
});
