// The deadline queue on a fake clock: firing order, removal, one timer re-armed only when the earliest deadline moves, clear.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type DeadlineEntry, DeadlineQueue } from '../../agent/proxy/deadline-queue.ts';
import { type PlatformTimers, platformClock } from '../../agent/vocabulary/clock.ts';
import { FakeTimers } from '../support/fake-timers.ts';
import { seededRandom } from '../support/seeded-random.ts';

/** A fake clock that also records every timer the queue sets and clears, as `set <at>` / `clear <at>`. */
class RecordingTimers extends FakeTimers {
  readonly calls: string[] = [];
  private readonly dueAt = new Map<unknown, number>();

  override setTimeout(callback: () => void, ms: number): unknown {
    const handle = super.setTimeout(callback, ms);
    this.dueAt.set(handle, this.now() + ms);
    this.calls.push(`set ${this.now() + ms}`);
    return handle;
  }

  override clearTimeout(handle: unknown): void {
    this.calls.push(`clear ${this.dueAt.get(handle)}`);
    super.clearTimeout(handle);
  }
}

interface Entry extends DeadlineEntry {
  name: string;
}

function setup() {
  const clock = new RecordingTimers();
  const queue = new DeadlineQueue(clock);
  /** What fired, as `name@time`. */
  const fired: string[] = [];
  const entry = (name: string, deadlineAt: number, onDeadline?: () => void): Entry => ({
    name,
    deadlineAt,
    deadlineIndex: -1,
    onDeadline() {
      fired.push(`${name}@${clock.now()}`);
      onDeadline?.();
    },
  });
  return { clock, queue, fired, entry };
}

describe('DeadlineQueue', () => {
  it('fires entries at their deadlines, earliest first, whatever the order they were added in', () => {
    const { clock, queue, fired, entry } = setup();
    for (const [name, at] of [
      ['d', 400],
      ['a', 100],
      ['c', 300],
      ['e', 500],
      ['b', 200],
    ] as const) {
      queue.add(entry(name, at));
    }
    assert.equal(queue.size, 5);
    clock.advance(99);
    assert.deepEqual(fired, []);
    clock.advance(1);
    assert.deepEqual(fired, ['a@100']);
    assert.equal(queue.size, 4);
    clock.advance(250);
    assert.deepEqual(fired, ['a@100', 'b@200', 'c@300']);
    clock.advance(1000);
    assert.deepEqual(fired, ['a@100', 'b@200', 'c@300', 'd@400', 'e@500']);
    assert.equal(queue.size, 0);
    assert.equal(clock.activeCount, 0, 'no timer left once the queue is empty');
  });

  it('keeps one timer for any number of entries, set for the earliest deadline', () => {
    const { clock, queue, entry } = setup();
    queue.add(entry('a', 300));
    queue.add(entry('b', 500));
    queue.add(entry('c', 400));
    queue.add(entry('d', 300));
    assert.equal(clock.activeCount, 1);
    assert.deepEqual(clock.calls, ['set 300']);
  });

  it('re-arms when an earlier deadline arrives, and only then', () => {
    const { clock, queue, fired, entry } = setup();
    queue.add(entry('late', 1000));
    queue.add(entry('early', 200));
    queue.add(entry('middle', 600));
    queue.add(entry('same', 200));
    assert.deepEqual(clock.calls, ['set 1000', 'clear 1000', 'set 200']);
    assert.equal(clock.activeCount, 1);
    clock.advance(200);
    assert.deepEqual(fired, ['early@200', 'same@200']);
    // After firing, the timer is set for the next deadline from now.
    assert.deepEqual(clock.calls, ['set 1000', 'clear 1000', 'set 200', 'set 600']);
    clock.advance(1000);
    assert.deepEqual(fired, ['early@200', 'same@200', 'middle@600', 'late@1000']);
    assert.deepEqual(clock.calls, ['set 1000', 'clear 1000', 'set 200', 'set 600', 'set 1000']);
  });

  it('entries with equal deadlines all fire at that time, in one turn', () => {
    const { clock, queue, fired, entry } = setup();
    for (const name of ['a', 'b', 'c', 'd']) queue.add(entry(name, 50));
    clock.advance(50);
    assert.deepEqual([...fired].sort(), ['a@50', 'b@50', 'c@50', 'd@50']);
    assert.equal(queue.size, 0);
    assert.deepEqual(clock.calls, ['set 50']);
  });

  it('a deadline already past is due at once', () => {
    const { clock, queue, fired, entry } = setup();
    clock.advance(1000);
    queue.add(entry('past', 400));
    assert.deepEqual(clock.calls, ['set 1000']);
    clock.advance(0);
    assert.deepEqual(fired, ['past@1000']);
  });

  it('deadlines are measured from the clock when the timer is set', () => {
    const { clock, queue, fired, entry } = setup();
    clock.advance(700);
    queue.add(entry('a', 1000));
    clock.advance(299);
    assert.deepEqual(fired, []);
    clock.advance(1);
    assert.deepEqual(fired, ['a@1000']);
  });

  it('a removed entry never fires, its index is reset, and removing it again changes nothing', () => {
    const { clock, queue, fired, entry } = setup();
    const a = entry('a', 100);
    const b = entry('b', 200);
    const c = entry('c', 300);
    for (const e of [a, b, c]) queue.add(e);
    assert.deepEqual([a, b, c].map((e) => e.deadlineIndex).sort(), [0, 1, 2]);
    queue.remove(b);
    assert.equal(b.deadlineIndex, -1);
    assert.equal(queue.size, 2);
    queue.remove(b);
    assert.equal(queue.size, 2);
    assert.deepEqual([a, c].map((e) => e.deadlineIndex).sort(), [0, 1]);
    clock.advance(1000);
    assert.deepEqual(fired, ['a@100', 'c@300']);
    assert.equal(a.deadlineIndex, -1, 'a fired entry is no longer queued');
    assert.equal(c.deadlineIndex, -1);
  });

  it('removing the earliest entry leaves the timer; when it fires with nothing due it re-arms for the next', () => {
    const { clock, queue, fired, entry } = setup();
    const first = entry('first', 100);
    queue.add(first);
    queue.add(entry('second', 300));
    queue.remove(first);
    assert.equal(clock.activeCount, 1);
    clock.advance(100);
    assert.deepEqual(fired, []);
    assert.deepEqual(clock.calls, ['set 100', 'set 300']);
    clock.advance(200);
    assert.deepEqual(fired, ['second@300']);
  });

  it('removing the last entry, then adding a later one, fires only the later one', () => {
    const { clock, queue, fired, entry } = setup();
    const only = entry('only', 100);
    queue.add(only);
    queue.remove(only);
    assert.equal(queue.size, 0);
    queue.add(entry('later', 500));
    clock.advance(1000);
    assert.deepEqual(fired, ['later@500']);
  });

  it('an entry removed by another entry\'s callback in the same turn does not fire', () => {
    const { clock, queue, fired, entry } = setup();
    const victim = entry('victim', 100);
    queue.add(entry('killer', 100, () => queue.remove(victim)));
    queue.add(victim);
    clock.advance(100);
    assert.deepEqual(fired, ['killer@100']);
    assert.equal(queue.size, 0);
  });

  it('an entry added by a callback fires at its own deadline', () => {
    const { clock, queue, fired, entry } = setup();
    queue.add(entry('first', 100, () => queue.add(entry('chained', clock.now() + 50))));
    queue.add(entry('other', 400));
    clock.advance(1000);
    assert.deepEqual(fired, ['first@100', 'chained@150', 'other@400']);
    assert.equal(clock.activeCount, 0);
  });

  it('keeps heap order through many adds and removes: what fires is exactly the rest, in deadline order', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const { clock, queue, fired, entry } = setup();
      const random = seededRandom(seed);
      const live = new Map<string, Entry>();
      for (let i = 0; i < 60; i++) {
        if (live.size > 0 && random() < 0.35) {
          const names = [...live.keys()];
          const name = names[Math.floor(random() * names.length)];
          queue.remove(live.get(name) as Entry);
          live.delete(name);
        } else {
          // Few distinct values, so that equal deadlines and sift-up after removal both happen.
          const e = entry(`e${i}`, 10 * (1 + Math.floor(random() * 20)));
          queue.add(e);
          live.set(e.name, e);
        }
        assert.equal(queue.size, live.size, `seed ${seed} step ${i}`);
        assert.deepEqual([...live.values()].map((e) => e.deadlineIndex).sort((a, b) => a - b), [...Array(live.size).keys()], `seed ${seed} step ${i}: indices`);
      }
      clock.advance(1000);
      const expected = [...live.values()].sort((a, b) => a.deadlineAt - b.deadlineAt);
      assert.deepEqual(
        fired.map((f) => Number(f.split('@')[1])),
        expected.map((e) => e.deadlineAt),
        `seed ${seed}: firing times`,
      );
      assert.deepEqual([...fired].map((f) => f.split('@')[0]).sort(), expected.map((e) => e.name).sort(), `seed ${seed}: entries fired`);
      for (const f of fired) assert.equal(f.split('@')[1], String((live.get(f.split('@')[0]) as Entry).deadlineAt), `seed ${seed}: ${f} on time`);
    }
  });

  it('clear() forgets every entry and stops the timer; the queue works again afterwards', () => {
    const { clock, queue, fired, entry } = setup();
    const a = entry('a', 100);
    const b = entry('b', 200);
    queue.add(a);
    queue.add(b);
    queue.clear();
    assert.equal(queue.size, 0);
    assert.equal(a.deadlineIndex, -1);
    assert.equal(b.deadlineIndex, -1);
    assert.equal(clock.activeCount, 0);
    assert.deepEqual(clock.calls, ['set 100', 'clear 100']);
    clock.advance(1000);
    assert.deepEqual(fired, []);
    // A later deadline than the one cleared still arms a timer: clear() forgot the old one.
    queue.add(entry('c', 1500));
    assert.deepEqual(clock.calls, ['set 100', 'clear 100', 'set 1500']);
    clock.advance(500);
    assert.deepEqual(fired, ['c@1500']);
  });

  it('clear() on an empty queue sets and clears nothing', () => {
    const { clock, queue } = setup();
    queue.clear();
    assert.deepEqual(clock.calls, []);
    assert.equal(queue.size, 0);
  });

  it('a deadline of 99999999H on the real clock arms one timer and re-arms none, without a warning', async () => {
    // Node's own timers, counted: before the clock chained long delays, this deadline re-armed every 1 ms and warned each time.
    let armed = 0;
    const counting: PlatformTimers = {
      setTimeout: (callback, ms) => {
        armed++;
        return setTimeout(callback, ms);
      },
      clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
    };
    const clock = platformClock(counting, true);
    const queue = new DeadlineQueue(clock);
    const warnings: string[] = [];
    const onWarning = (warning: Error): void => {
      warnings.push(warning.name);
    };
    process.on('warning', onWarning);
    let fired = 0;
    queue.add({ deadlineAt: clock.now() + 99_999_999 * 3_600_000, deadlineIndex: -1, onDeadline: () => fired++ });
    await new Promise((resolve) => setTimeout(resolve, 200));
    queue.clear();
    process.off('warning', onWarning);
    assert.equal(armed, 1, 'one timer armed in 200 ms');
    assert.equal(fired, 0);
    assert.deepEqual(warnings, []);
  });
});
