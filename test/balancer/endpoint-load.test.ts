// Peak EWMA bookkeeping of one endpoint: peaks replace, lower samples decay in, reads fade, cost counts in-flight.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EndpointLoad, type LoadOptions } from '../../agent/balancer/endpoint-load.ts';
import { FakeClock } from '../support/balancer-simulation.ts';

const MS = 1e6;
const TAU = 10_000 * MS;

function setup(): { clock: FakeClock; load: EndpointLoad; options: LoadOptions } {
  const clock = new FakeClock();
  clock.ns = 5_000 * MS;
  const options: LoadOptions = { now: clock.now, latestSample: null, decayNs: TAU, defaultRttNs: 1 * MS, failurePenaltyNs: 1000 * MS };
  return { clock, load: new EndpointLoad('10.0.0.1:50051', options), options };
}

test('a new endpoint: no request in flight or started, the default estimate', () => {
  const { load, clock } = setup();
  assert.equal(load.address, '10.0.0.1:50051');
  assert.equal(load.inFlight, 0);
  assert.equal(load.started, 0);
  assert.equal(load.latencyAt(clock.ns), 1 * MS);
  assert.equal(load.costAt(clock.ns), 1 * MS);
  const seeded = new EndpointLoad('10.0.0.2:50051', setup().options, 3 * MS);
  assert.equal(seeded.ewmaNs, 3 * MS);
});

test('cost is estimate × (inFlight + 1)', () => {
  const { load, clock } = setup();
  load.onStart();
  load.onStart();
  assert.equal(load.inFlight, 2);
  assert.equal(load.started, 2);
  assert.equal(load.costAt(clock.ns), 3 * MS);
});

test('a sample above the estimate replaces it at once (peak)', () => {
  const { load, clock } = setup();
  load.onStart();
  load.onFinish(40 * MS);
  assert.equal(load.inFlight, 0);
  assert.equal(load.latencyAt(clock.ns), 40 * MS);
});

test('a lower sample pulls the estimate with weight 1 - exp(-Δt/τ), and at least 5%', () => {
  const { load, clock } = setup();
  load.onStart();
  load.onFinish(10 * MS);
  clock.ns += TAU; // one time constant later
  load.onStart();
  load.onFinish(2 * MS);
  const keep = Math.exp(-1);
  assert.ok(Math.abs(load.ewmaNs - (10 * MS * keep + 2 * MS * (1 - keep))) < 1);
  // A sample right after the previous one still moves it by the minimum weight: many fast answers in a row bring a
  // stale peak down without waiting for τ.
  const before = load.ewmaNs;
  clock.ns += 1 * MS;
  load.onStart();
  load.onFinish(0.1 * MS);
  assert.ok(Math.abs(load.ewmaNs - (before * 0.95 + 0.1 * MS * 0.05)) < 1);
  assert.ok(load.ewmaNs < before);
});

test('without samples the read estimate fades toward zero, so an avoided endpoint is tried again', () => {
  const { load, clock } = setup();
  load.onStart();
  load.onFinish(100 * MS);
  assert.equal(load.latencyAt(clock.ns), 100 * MS);
  assert.ok(Math.abs(load.latencyAt(clock.ns + 2 * TAU) - 100 * MS * Math.exp(-2)) < 1);
  assert.equal(load.latencyAt(clock.ns - 1), 100 * MS, 'a clock behind the stamp does not grow the estimate');
});

test('a failure is a penalty sample; a cancel is no sample', () => {
  const { load, clock } = setup();
  load.onStart();
  load.onStart();
  load.onCancel();
  assert.equal(load.inFlight, 1);
  assert.equal(load.latencyAt(clock.ns), 1 * MS);
  load.onFailure();
  assert.equal(load.inFlight, 0);
  assert.equal(load.latencyAt(clock.ns), 1000 * MS);
});

test('onFinish takes the caller\'s clock reading when given', () => {
  const { load, clock } = setup();
  load.onStart();
  load.onFinish(5 * MS, clock.ns + 7 * MS);
  assert.equal(load.stampNs, clock.ns + 7 * MS);
});
