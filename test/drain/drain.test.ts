// The Drain state machine: the exact order of its steps and states, the deadline on an injected clock, force, and
// what it refuses.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Drain, type DrainState, type DrainTarget } from '../../agent/drain/drain.ts';
import { FakeTimers } from '../support/fake-timers.ts';

/** A target that records every call and holds `open` things until the test closes them. */
class RecordingTarget implements DrainTarget {
  readonly calls: string[] = [];
  open: number;
  constructor(open: number) {
    this.open = open;
  }
  stopAccepting(): void {
    this.calls.push('stopAccepting');
  }
  finishConnections(): void {
    this.calls.push('finishConnections');
  }
  openCount(): number {
    return this.open;
  }
  closeRemaining(): void {
    this.calls.push(`closeRemaining(${this.open})`);
    this.open = 0;
  }
}

function setup(open: number, deadlineMs: number) {
  const clock = new FakeTimers();
  const target = new RecordingTarget(open);
  const states: string[] = [];
  const drain = new Drain(target, {
    clock,
    deadlineMs,
    observer: { onDrainStateChange: (previous, next) => states.push(`${previous.state}→${show(next)}`) },
  });
  return { clock, target, drain, states };
}

function show(state: DrainState): string {
  if (state.state === 'drained') return `drained(${state.outcome}, left ${state.left}, at ${state.since})`;
  if (state.state === 'serving') return 'serving';
  return `${state.state}(${state.reason}, at ${state.since})`;
}

describe('Drain', () => {
  it('stops accepting, then asks every connection to finish, then waits until the last one closed', async () => {
    const { clock, target, drain, states } = setup(2, 30_000);
    assert.equal(drain.started, false);
    const done = drain.start('SIGTERM');
    assert.equal(drain.started, true);
    assert.deepEqual(target.calls, ['stopAccepting', 'finishConnections']);
    assert.deepEqual(states, ['serving→stopping(SIGTERM, at 0)', 'stopping→finishing(SIGTERM, at 0)']);
    clock.advance(1000);
    target.open = 1;
    drain.check();
    assert.equal(drain.state.state, 'finishing', 'one connection still open');
    clock.advance(500);
    target.open = 0;
    drain.check();
    const final = await done;
    assert.deepEqual(final, { state: 'drained', since: 1500, reason: 'SIGTERM', outcome: 'finished', left: 0 });
    assert.deepEqual(states.slice(2), ['finishing→drained(finished, left 0, at 1500)']);
    assert.deepEqual(target.calls, ['stopAccepting', 'finishConnections'], 'nothing was closed by force');
    assert.equal(clock.activeCount, 0, 'the deadline timer was cleared');
  });

  it('with nothing open it is drained at once', async () => {
    const { target, drain, states } = setup(0, 30_000);
    const final = await drain.start('SIGTERM');
    assert.equal(final.state === 'drained' && final.outcome, 'finished');
    assert.deepEqual(target.calls, ['stopAccepting', 'finishConnections']);
    assert.equal(states.length, 3);
  });

  it('at the deadline, what is left is closed and the outcome says so', async () => {
    const { clock, target, drain } = setup(3, 30_000);
    const done = drain.start('SIGTERM');
    clock.advance(29_999);
    assert.equal(drain.state.state, 'finishing', 'not before the deadline');
    target.open = 2;
    clock.advance(1);
    const final = await done;
    assert.deepEqual(final, { state: 'drained', since: 30_000, reason: 'SIGTERM', outcome: 'deadline', left: 2 });
    assert.deepEqual(target.calls, ['stopAccepting', 'finishConnections', 'closeRemaining(2)']);
  });

  it('force closes what is left at once (a second signal), and starts the drain if it had not begun', async () => {
    const { clock, target, drain, states } = setup(1, 30_000);
    clock.advance(10);
    const final = await drain.force('SIGINT');
    assert.deepEqual(final, { state: 'drained', since: 10, reason: 'SIGINT', outcome: 'forced', left: 1 });
    assert.deepEqual(target.calls, ['stopAccepting', 'finishConnections', 'closeRemaining(1)']);
    assert.deepEqual(states, ['serving→stopping(SIGINT, at 10)', 'stopping→finishing(SIGINT, at 10)', 'finishing→drained(forced, left 1, at 10)']);
    assert.equal(clock.activeCount, 0);
  });

  it('runs once: a second start returns the same promise and calls nothing again', async () => {
    const { target, drain } = setup(1, 30_000);
    const first = drain.start('SIGTERM');
    const second = drain.start('SIGINT');
    assert.equal(first, second);
    assert.deepEqual(target.calls, ['stopAccepting', 'finishConnections']);
    target.open = 0;
    drain.check();
    drain.check();
    assert.equal((await first).state, 'drained');
    drain.force('again');
    assert.deepEqual(target.calls, ['stopAccepting', 'finishConnections'], 'a drained target is left alone');
  });

  it('check() before the drain began does nothing', () => {
    const { target, drain } = setup(0, 30_000);
    drain.check();
    assert.equal(drain.state.state, 'serving');
    assert.deepEqual(target.calls, []);
  });

  it('an infinite deadline sets no timer and waits for as long as it takes', async () => {
    const { clock, target, drain } = setup(1, Number.POSITIVE_INFINITY);
    const done = drain.start('endpoint removed');
    assert.equal(clock.activeCount, 0);
    clock.advance(24 * 3_600_000);
    assert.equal(drain.state.state, 'finishing');
    target.open = 0;
    drain.check();
    const final = await done;
    assert.deepEqual(final, { state: 'drained', since: 24 * 3_600_000, reason: 'endpoint removed', outcome: 'finished', left: 0 });
  });

  it('a target that stops accepting asynchronously is still asked to finish its connections at once', async () => {
    const clock = new FakeTimers();
    const calls: string[] = [];
    let open = 1;
    let release = (): void => {};
    const drain = new Drain(
      {
        stopAccepting: () => {
          calls.push('stopAccepting');
          return new Promise<void>((resolve) => {
            release = resolve;
          });
        },
        finishConnections: () => void calls.push('finishConnections'),
        openCount: () => open,
        closeRemaining: () => void calls.push('closeRemaining'),
      },
      { clock, deadlineMs: 1000 },
    );
    const done = drain.start('SIGTERM');
    assert.deepEqual(calls, ['stopAccepting', 'finishConnections']);
    open = 0;
    drain.check();
    release();
    assert.equal((await done).state, 'drained');
  });
});
