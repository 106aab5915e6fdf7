// The time side of an endpoint's load: the ns clock, time cells, the shared latest-sample cell, stamps that never go
// back, and costsLessThan (the comparison p2c makes on every pick) fading estimates exactly as costAt does.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createTimeCell, EndpointLoad, type LoadOptions, monotonicNowNs } from '../../agent/balancer/endpoint-load.ts';
import { FakeClock } from '../support/balancer-simulation.ts';

const MS = 1e6;
const S = 1e9;
const TAU = 10 * S;

function options(clock: FakeClock, latestSample: Float64Array | null = null): LoadOptions {
  return { now: clock.now, latestSample, decayNs: TAU, defaultRttNs: 1 * MS, failurePenaltyNs: 1000 * MS };
}

test('monotonicNowNs is performance.now() in nanoseconds', () => {
  const beforeMs = performance.now();
  const ns = monotonicNowNs();
  const afterMs = performance.now();
  assert.ok(beforeMs * 1e6 <= ns && ns <= afterMs * 1e6, `${beforeMs} ms ≤ ${ns} ns ≤ ${afterMs} ms`);
  assert.ok(monotonicNowNs() >= ns);
});

test('a time cell holds one time, zero unless given', () => {
  const cell = createTimeCell(5 * S);
  assert.equal(cell.length, 1);
  assert.equal(cell[0], 5 * S);
  assert.deepEqual([...createTimeCell()], [0]);
});

test('the latest-sample cell moves forward to each new load and sample, never back', () => {
  const clock = new FakeClock();
  const latest = createTimeCell(0);
  clock.ns = 10 * S;
  const a = new EndpointLoad('a', options(clock, latest));
  assert.equal(latest[0], 10 * S, 'a new load counts as a sample at its creation');
  a.onStart();
  a.onFinish(1 * MS, 20 * S);
  assert.equal(latest[0], 20 * S);
  a.onStart();
  a.onFinish(1 * MS, 15 * S);
  assert.equal(latest[0], 20 * S, 'an older reading does not move it back');
  clock.ns = 5 * S;
  const b = new EndpointLoad('b', options(clock, latest));
  assert.equal(latest[0], 20 * S, 'nor does a load created at an older time');
  b.onStart();
  b.onFailure(30 * S);
  assert.equal(latest[0], 30 * S, 'a failure is a sample too');
});

test("a sample's stamp never goes back: a late finish with an older clock reading keeps the newer stamp", () => {
  const clock = new FakeClock();
  clock.ns = 100 * S;
  const load = new EndpointLoad('a', options(clock));
  load.onStart();
  load.onFinish(5 * MS, 107 * S);
  assert.equal(load.stampNs, 107 * S);
  load.onStart();
  load.onFinish(5 * MS, 103 * S);
  assert.equal(load.stampNs, 107 * S);
  assert.equal(load.latencyAt(107 * S), 5 * MS);
});

/** A load whose estimate is `ewmaNs` as of `stampNs`, with `inFlight` requests in flight. */
function loadAt(name: string, ewmaNs: number, stampNs: number, inFlight = 0): EndpointLoad {
  const clock = new FakeClock();
  clock.ns = stampNs;
  const load = new EndpointLoad(name, options(clock), ewmaNs);
  for (let i = 0; i < inFlight; i++) load.onStart();
  return load;
}

test('costsLessThan: a time behind both stamps fades neither estimate', () => {
  // a: 10 ms as of 100 s, b: 20 ms as of 60 s, read at 50 s. Unfaded, a is cheaper; had either estimate been
  // "faded" by a negative elapsed time it would have grown (a by e^5, b by e^1) and a would lose.
  const a = loadAt('a', 10 * MS, 100 * S);
  const b = loadAt('b', 20 * MS, 60 * S);
  const time = createTimeCell(50 * S);
  assert.equal(a.costsLessThan(b, time), true);
  assert.equal(b.costsLessThan(a, time), false);
  assert.equal(a.costAt(50 * S), 10 * MS);
  assert.equal(b.costAt(50 * S), 20 * MS);
});

test('costsLessThan: a time after a stamp fades that estimate by exp(-elapsed/τ)', () => {
  // a: 10 ms as of 0 s, b: 5 ms as of 100 s, read at 100 s: a has faded to 10 ms × e^-10 ≈ 0.45 µs, far below b.
  const a = loadAt('a', 10 * MS, 0);
  const b = loadAt('b', 5 * MS, 100 * S);
  const time = createTimeCell(100 * S);
  assert.equal(a.costsLessThan(b, time), true);
  assert.equal(b.costsLessThan(a, time), false);
  // Read at the stamp of a instead, b (stamped later) is not faded and a's 10 ms loses to b's 5 ms.
  time[0] = 0;
  assert.equal(a.costsLessThan(b, time), false);
  assert.equal(b.costsLessThan(a, time), true);
});

test('costsLessThan: both faded by the same time keep their order; requests in flight multiply the cost', () => {
  // One time constant after both stamps: 10 ms and 12 ms both × e^-1, so 10 < 12 still.
  const a = loadAt('a', 10 * MS, 0);
  const b = loadAt('b', 12 * MS, 0);
  const time = createTimeCell(TAU);
  assert.equal(a.costsLessThan(b, time), true);
  assert.equal(b.costsLessThan(a, time), false);
  // With one request in flight a costs 2 × 10 ms × e^-1 > 12 ms × e^-1.
  a.onStart();
  assert.equal(a.costsLessThan(b, time), false);
  assert.equal(b.costsLessThan(a, time), true);
  // Equal costs: neither is less.
  const c = loadAt('c', 10 * MS, 0);
  const d = loadAt('d', 10 * MS, 0);
  assert.equal(c.costsLessThan(d, time), false);
  assert.equal(d.costsLessThan(c, time), false);
});
