// p2c over peak-EWMA: slow and busy endpoints are avoided, new ones get traffic, equal ones share evenly.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EndpointLoad, type LoadOptions } from '../../agent/balancer/endpoint-load.ts';
import { PeakEwmaPolicy } from '../../agent/balancer/p2c-peak-ewma.ts';
import { EMPTY_PICKER } from '../../agent/balancer/picker.ts';
import { FakeClock, simulate } from '../support/balancer-simulation.ts';
import { seededRandom, seededRandomInt } from '../support/seeded-random.ts';

const MS = 1e6;

function setup(names: string[], seed = 1) {
  const clock = new FakeClock();
  const options: LoadOptions = { now: clock.now, latestSample: null, decayNs: 10_000 * MS, defaultRttNs: 1 * MS, failurePenaltyNs: 1000 * MS };
  const loads = names.map((name) => new EndpointLoad(name, options));
  const policy = new PeakEwmaPolicy({ randomInt: seededRandomInt(seed), time: clock.cell });
  return { clock, options, loads, policy };
}

/** Gives an endpoint a settled estimate of `latencyNs` (one sample after a long quiet spell). */
function warm(clock: FakeClock, loads: EndpointLoad[], latencyNs: number): void {
  clock.ns += 60_000 * MS;
  for (const load of loads) {
    load.onStart();
    load.onFinish(latencyNs);
  }
}

test('two distinct random endpoints; the lower cost wins, the first drawn on a tie', () => {
  const { clock, loads } = setup(['a', 'b', 'c']);
  const draws: number[] = [];
  const picker = new PeakEwmaPolicy({ randomInt: () => draws.shift() as number, time: clock.cell }).createPicker(loads);
  draws.push(0, 0); // a and b (b: the second draw skips a)
  assert.equal(picker.pick()?.address, 'a', 'tie: the first drawn');
  loads[0].onStart();
  draws.push(0, 0);
  assert.equal(picker.pick()?.address, 'b', 'a has a request in flight');
  draws.push(5, 1); // c (5 % 3) and b (1 % 2)
  assert.equal(picker.pick()?.address, 'c');
  assert.equal(draws.length, 0);
});

test('an endpoint with many requests in flight is avoided', () => {
  const { loads, policy } = setup(['a', 'b', 'c']);
  for (let i = 0; i < 50; i++) loads[0].onStart();
  const picker = policy.createPicker(loads);
  const counts = new Map<string, number>();
  for (let i = 0; i < 300; i++) {
    const address = picker.pick()?.address as string;
    counts.set(address, (counts.get(address) ?? 0) + 1);
  }
  assert.equal(counts.get('a'), undefined);
  assert.ok((counts.get('b') as number) > 100 && (counts.get('c') as number) > 100);
});

test('a slow endpoint gets far fewer requests', () => {
  const { clock, loads, policy } = setup(['a', 'b', 'slow']);
  const picker = policy.createPicker(loads);
  const counts = simulate({
    clock,
    picker: () => picker,
    concurrency: 16,
    requests: 3000,
    latencyNs: (e) => (e.address === 'slow' ? 5 * MS : 1 * MS),
  });
  const slow = counts.get('slow') as number;
  assert.ok(slow > 0, 'still probed');
  assert.ok(slow < 150, `slow endpoint got ${slow} of 3000`);
});

test('a failing endpoint (fast failures) is avoided, not favoured for being fast', () => {
  const { clock, loads, policy } = setup(['a', 'b', 'broken']);
  warm(clock, loads, 1 * MS);
  loads[2].onStart();
  loads[2].onFailure();
  const picker = policy.createPicker(loads);
  const counts = simulate({ clock, picker: () => picker, concurrency: 8, requests: 3000, latencyNs: () => 1 * MS });
  assert.equal(counts.get('broken'), undefined);
});

test('an endpoint avoided for being slow is tried again once its estimate has faded', () => {
  const { clock, loads, policy } = setup(['a', 'b', 'c']);
  warm(clock, loads.slice(0, 2), 1 * MS);
  warm(clock, loads.slice(2), 200 * MS);
  const picker = policy.createPicker(loads);
  const run = () => simulate({ clock, picker: () => picker, concurrency: 1, requests: 300, latencyNs: () => 1 * MS });
  // The warm-up left a and b idle for 60 s too; refresh them so only c's estimate is old.
  for (const load of loads.slice(0, 2)) {
    load.onStart();
    load.onFinish(1 * MS);
  }
  assert.equal(run().get('c'), undefined);
  clock.ns += 60_000 * MS; // a minute without a sample: 200 ms × e^-6 ≈ 0.5 ms
  loads[0].onStart();
  loads[0].onFinish(1 * MS);
  loads[1].onStart();
  loads[1].onFinish(1 * MS);
  assert.ok((run().get('c') as number) > 0);
});

test('a new endpoint with no sample gets traffic at once under load, without being flooded', () => {
  const { clock, options, loads, policy } = setup(['a', 'b', 'c']);
  warm(clock, loads, 0.2 * MS); // warm endpoints far faster than the 1 ms default
  const fresh = new EndpointLoad('new', options);
  const picker = policy.createPicker([...loads, fresh]);
  const start = clock.ns;
  let firstPickNs = -1;
  let peakBeforeFirstAnswer = 0;
  let peakInFlight = 0;
  const counts = simulate({
    clock,
    picker: () => picker,
    concurrency: 64,
    requests: 20_000,
    latencyNs: () => 0.2 * MS,
    onPick: (endpoint, now) => {
      if (endpoint !== fresh) return;
      if (firstPickNs < 0) firstPickNs = now - start;
      const answered = fresh.started - fresh.inFlight;
      if (answered === 0) peakBeforeFirstAnswer = Math.max(peakBeforeFirstAnswer, fresh.inFlight);
      peakInFlight = Math.max(peakInFlight, fresh.inFlight);
    },
  });
  assert.ok(firstPickNs >= 0 && firstPickNs < 1000 * MS, `first request after ${firstPickNs / MS} ms`);
  assert.ok((counts.get('new') as number) > 500, `new endpoint got ${counts.get('new')}`);
  // Until its first answer, the newcomer's 1 ms default keeps it well below the ~21 in flight the warm ones average;
  // once its answers show it as fast as they are, it takes an equal share (64 / 4 = 16), never a flood.
  assert.ok(peakBeforeFirstAnswer <= 8, `new endpoint had ${peakBeforeFirstAnswer} in flight before its first answer`);
  assert.ok(peakInFlight <= 24, `new endpoint peaked at ${peakInFlight} in flight`);
});

test('equal endpoints share 3000 requests within ±10% of 1000 each', () => {
  for (const seed of [1, 2, 3]) {
    const { clock, loads, policy } = setup(['a', 'b', 'c'], seed);
    const picker = policy.createPicker(loads);
    const jitter = seededRandom(seed + 100);
    const counts = simulate({
      clock,
      picker: () => picker,
      concurrency: 8,
      requests: 3000,
      latencyNs: () => 1 * MS * (0.9 + 0.2 * jitter()),
    });
    for (const [address, n] of counts) assert.ok(n >= 900 && n <= 1100, `seed ${seed}: ${address} got ${n}`);
    assert.equal(counts.size, 3);
  }
});

test('one endpoint: that one; none: the empty picker', () => {
  const { loads, policy } = setup(['only']);
  assert.equal(policy.createPicker(loads).pick()?.address, 'only');
  assert.equal(policy.createPicker([]), EMPTY_PICKER);
  assert.equal(policy.name, 'p2c-ewma');
});
