// The reset budget's token bucket with explicit times: the burst, refill at the rate, the cap, fractions kept, time that does not move;
// and the resets that wait for it: in order, paced on the clock, skipped once ended, bounded, gone with the connection.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode } from '../../agent/http2/constants.ts';
import { Stream } from '../../agent/http2/stream.ts';
import { type ResetConnection, ResetBudget } from '../../agent/upstream/reset-budget.ts';
import type { Clock } from '../../agent/vocabulary/clock.ts';
import { FakeTimers } from '../support/fake-timers.ts';

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

/** A connection that records what the budget does to it, at the fake clock's time; `open` are its open streams. */
function recordingConnection(clock: FakeTimers) {
  const events: string[] = [];
  const open = new Set<Stream>();
  const connection = {
    events,
    open,
    state: { state: 'ready' } as { state: string },
    http2: {
      resetStream(stream: Stream, code: number) {
        events.push(`reset ${stream.id} ${code} @${clock.now()}`);
        stream.state = 'closed';
        open.delete(stream);
      },
      get activeStreamCount() {
        return open.size;
      },
    },
    onStreamEnded() {
      events.push(`streamEnded @${clock.now()}`);
    },
    drain() {
      events.push(`drain @${clock.now()}`);
      connection.state = { state: 'draining' };
    },
    close() {
      events.push(`close @${clock.now()}`);
    },
  };
  return connection;
}

/** An open stream with `id`, counted among the connection's open streams. */
function openStream(connection: { open: Set<Stream> }, id: number): Stream {
  const stream = new Stream(id, false, 65_535, 65_535);
  stream.state = 'half-closed-local';
  connection.open.add(stream);
  return stream;
}

/** The budget refused `stream` (as the cancel path does) and queued its reset. */
function cancel(budget: ResetBudget, connection: ResetConnection, stream: Stream, now: number): void {
  assert.equal(budget.take(now), false, `stream ${stream.id} should wait for the budget`);
  budget.defer(stream, connection);
}

const CANCEL = ErrorCode.CANCEL;

describe('ResetBudget: resets that wait for the budget', () => {
  it('sends them in order, one per token, on a timer of the clock it was made with', () => {
    const clock = new FakeTimers();
    const connection = recordingConnection(clock);
    const budget = new ResetBudget(1, 4, clock);
    assert.equal(budget.take(0), true);
    for (const id of [3, 5, 7]) cancel(budget, connection, openStream(connection, id), 0);
    assert.equal(budget.state, 'pacing');
    assert.equal(budget.queued, 3);
    assert.equal(clock.activeCount, 1, 'one timer, however many wait');
    clock.advance(249);
    assert.deepEqual(connection.events, []);
    clock.advance(1000);
    assert.deepEqual(connection.events, [
      `reset 3 ${CANCEL} @250`,
      'streamEnded @250',
      `reset 5 ${CANCEL} @500`,
      'streamEnded @500',
      `reset 7 ${CANCEL} @750`,
      'streamEnded @750',
    ]);
    assert.equal(budget.state, 'idle');
    assert.equal(budget.queued, 0);
    assert.equal(clock.activeCount, 0, 'no timer once nothing waits');
  });

  it('a cancel never overtakes the ones waiting: take refuses while any wait, even with a token in the bucket', () => {
    const clock = new FakeTimers();
    const connection = recordingConnection(clock);
    const budget = new ResetBudget(1, 4, clock);
    assert.equal(budget.take(0), true);
    cancel(budget, connection, openStream(connection, 3), 0);
    // At 300 ms a token is due, but the waiting reset's timer (250 ms) has not run yet: it goes first.
    assert.equal(budget.take(300), false);
    cancel(budget, connection, openStream(connection, 5), 300);
    clock.advance(500);
    assert.deepEqual(connection.events, [`reset 3 ${CANCEL} @250`, 'streamEnded @250', `reset 5 ${CANCEL} @500`, 'streamEnded @500']);
    assert.equal(budget.take(500), false, 'the token of 500 ms went to stream 5');
    assert.equal(budget.take(750), true, 'nothing waits: takes are granted again');
  });

  it('sends what the burst refilled to at once, after a pause, and waits for fractions of a token', () => {
    const clock = new FakeTimers();
    const connection = recordingConnection(clock);
    const budget = new ResetBudget(2, 4, clock);
    assert.equal(budget.take(0), true);
    assert.equal(budget.take(0), true);
    clock.advance(125);
    // Half a token by now: the first waits 125 ms more, the second a full 250 ms after it.
    for (const id of [1, 3, 5]) cancel(budget, connection, openStream(connection, id), 125);
    clock.advance(375);
    assert.deepEqual(connection.events, [`reset 1 ${CANCEL} @250`, 'streamEnded @250', `reset 3 ${CANCEL} @500`, 'streamEnded @500']);
    clock.advance(250);
    assert.equal(connection.events.at(-2), `reset 5 ${CANCEL} @750`);
  });

  it('skips streams that ended meanwhile without spending a token on them', () => {
    const clock = new FakeTimers();
    const connection = recordingConnection(clock);
    const budget = new ResetBudget(1, 4, clock);
    assert.equal(budget.take(0), true);
    const ended = [openStream(connection, 3), openStream(connection, 5)];
    const waiting = openStream(connection, 7);
    for (const stream of [...ended, waiting]) cancel(budget, connection, stream, 0);
    for (const stream of ended) stream.state = 'closed';
    clock.advance(250);
    assert.deepEqual(connection.events, [`reset 7 ${CANCEL} @250`, 'streamEnded @250']);
    assert.equal(budget.state, 'idle');
  });

  it('does not queue a stream that already ended', () => {
    const clock = new FakeTimers();
    const connection = recordingConnection(clock);
    const budget = new ResetBudget(1, 4, clock);
    assert.equal(budget.take(0), true);
    const stream = openStream(connection, 3);
    stream.state = 'closed';
    cancel(budget, connection, stream, 0);
    assert.equal(budget.queued, 0);
    assert.equal(budget.state, 'idle');
    assert.equal(clock.activeCount, 0);
  });

  it('dies with its connection: dispose clears the timer and the queue, and refuses everything after', () => {
    const clock = new FakeTimers();
    const connection = recordingConnection(clock);
    const budget = new ResetBudget(1, 4, clock);
    assert.equal(budget.take(0), true);
    cancel(budget, connection, openStream(connection, 3), 0);
    budget.dispose();
    assert.equal(budget.state, 'disposed');
    assert.equal(budget.queued, 0);
    assert.equal(clock.activeCount, 0);
    clock.advance(10_000);
    assert.equal(budget.take(10_000), false);
    budget.defer(openStream(connection, 5), connection);
    assert.equal(budget.queued, 0);
    clock.advance(10_000);
    assert.deepEqual(connection.events, []);
    budget.dispose();
    assert.equal(budget.state, 'disposed');
  });

  it('a backlog over its bound drains the connection once, and closes it when only streams waiting for a reset remain', () => {
    const clock = new FakeTimers();
    const connection = recordingConnection(clock);
    const budget = new ResetBudget(1, 4, clock, 3);
    const live = openStream(connection, 1);
    assert.equal(budget.take(0), true);
    for (const id of [3, 5, 7]) cancel(budget, connection, openStream(connection, id), 0);
    assert.deepEqual(connection.events, [], 'three wait: within the bound');
    cancel(budget, connection, openStream(connection, 9), 0);
    cancel(budget, connection, openStream(connection, 11), 0);
    assert.deepEqual(connection.events, ['drain @0']);
    // The live stream keeps the connection open; the resets go on at the rate meanwhile.
    clock.advance(250);
    assert.deepEqual(connection.events.slice(1), [`reset 3 ${CANCEL} @250`, 'streamEnded @250']);
    live.state = 'closed';
    connection.open.delete(live);
    clock.advance(250);
    assert.deepEqual(connection.events.slice(3), [`reset 5 ${CANCEL} @500`, 'close @500']);
    assert.equal(budget.state, 'disposed');
    assert.equal(clock.activeCount, 0);
  });

  it('streams that ended are not counted against the bound', () => {
    const clock = new FakeTimers();
    const connection = recordingConnection(clock);
    const budget = new ResetBudget(1, 4, clock, 2);
    assert.equal(budget.take(0), true);
    const first = openStream(connection, 3);
    cancel(budget, connection, first, 0);
    cancel(budget, connection, openStream(connection, 5), 0);
    first.state = 'closed';
    cancel(budget, connection, openStream(connection, 7), 0);
    assert.deepEqual(connection.events, []);
    assert.equal(budget.queued, 2);
  });

  it('by default the bound is a minute of the rate: 1200 waiting at 20/s are kept, the 1201st drains', () => {
    const clock = new FakeTimers();
    const connection = recordingConnection(clock);
    const budget = new ResetBudget(100, 20, clock);
    for (let i = 0; i < 100; i++) assert.equal(budget.take(0), true);
    for (let i = 0; i < 1200; i++) cancel(budget, connection, openStream(connection, 2 * i + 1), 0);
    assert.deepEqual(connection.events, []);
    cancel(budget, connection, openStream(connection, 2401), 0);
    assert.deepEqual(connection.events, ['drain @0']);
    // Paced at 20 per second, a reset every 50 ms; closed as soon as only waiting streams remain (they all do).
    clock.advance(50);
    assert.deepEqual(connection.events.slice(1), [`reset 1 ${CANCEL} @50`, 'close @50']);
  });

  it('closes a connection the endpoint is draining once only waiting streams remain on it', () => {
    const clock = new FakeTimers();
    const connection = recordingConnection(clock);
    const budget = new ResetBudget(1, 4, clock);
    assert.equal(budget.take(0), true);
    const live = openStream(connection, 1);
    for (const id of [3, 5, 7]) cancel(budget, connection, openStream(connection, id), 0);
    connection.state = { state: 'draining' };
    clock.advance(250);
    assert.deepEqual(connection.events, [`reset 3 ${CANCEL} @250`, 'streamEnded @250'], 'stream 1 is still live');
    live.state = 'closed';
    connection.open.delete(live);
    clock.advance(250);
    assert.deepEqual(connection.events.slice(2), [`reset 5 ${CANCEL} @500`, 'close @500']);
  });

  it('sustains 1000 waiting resets at exactly its rate after the burst: the last goes out 45 s after the cancel', () => {
    const clock = new FakeTimers();
    const connection = recordingConnection(clock);
    const budget = new ResetBudget(100, 20, clock);
    const streams = Array.from({ length: 1000 }, (_, i) => openStream(connection, 2 * i + 1));
    let immediate = 0;
    for (const stream of streams) {
      if (budget.take(0)) {
        immediate++;
        connection.http2.resetStream(stream, CANCEL);
      } else budget.defer(stream, connection);
    }
    assert.equal(immediate, 100);
    clock.advance(44_999);
    assert.equal(budget.queued, 1);
    clock.advance(1);
    const resets = connection.events.filter((event) => event.startsWith('reset'));
    assert.equal(resets.length, 1000);
    assert.equal(resets.at(-1), `reset 1999 ${CANCEL} @45000`);
    assert.equal(budget.state, 'idle');
  });

  it('refuses a burst below one or a rate that is not positive', () => {
    const clock = new FakeTimers();
    assert.throws(() => new ResetBudget(0, 1, clock), RangeError);
    assert.throws(() => new ResetBudget(1, 0, clock), RangeError);
    assert.throws(() => new ResetBudget(1, Number.NaN, clock), RangeError);
  });
});
