// Micro-benchmark of pick(): ns per pick for each policy over 3 and 100 endpoints, and whether it allocates.

import { GCProfiler } from 'node:v8';
import {
  createTimeCell,
  DEFAULT_LOAD_OPTIONS,
  EndpointLoad,
  type LoadOptions,
  monotonicNowNs,
} from '../agent/balancer/endpoint-load.ts';
import { fastRandomInt, type Picker, type PolicyDeps } from '../agent/balancer/picker.ts';
import { policyByName } from '../agent/balancer/policies.ts';
import { BALANCER_NAMES } from '../agent/vocabulary/balancer-names.ts';

export interface MicroRow {
  name: string;
  nsPerOp: number;
  opsPerSec: number;
  /** Garbage collections during the timed loop: 0 means the loop allocated (next to) nothing. */
  gcs: number;
}

const WARMUP = 200_000;
const ITERATIONS = 5_000_000;

// Wired as the balancer set wires them: pickers read the latest sample time, not a clock.
const latest = createTimeCell(monotonicNowNs());
const LOAD: LoadOptions = { ...DEFAULT_LOAD_OPTIONS, latestSample: latest };
const DEPS: PolicyDeps = { randomInt: fastRandomInt(), time: latest };

function loads(n: number): EndpointLoad[] {
  return Array.from({ length: n }, (_, i) => {
    const load = new EndpointLoad(`10.0.${i >> 8}.${i & 255}:50051`, LOAD);
    // Some spread of load so comparisons go both ways.
    for (let k = 0; k < i % 5; k++) load.onStart();
    return load;
  });
}

/** Times `body` over ITERATIONS after a warm-up; `body` returns something so the work cannot be dropped. */
function measure(name: string, body: () => number): MicroRow {
  let sink = 0;
  for (let i = 0; i < WARMUP; i++) sink += body();
  const profiler = new GCProfiler();
  profiler.start();
  const start = process.hrtime.bigint();
  for (let i = 0; i < ITERATIONS; i++) sink += body();
  const elapsed = Number(process.hrtime.bigint() - start);
  const gcs = profiler.stop()?.statistics.length ?? 0;
  if (sink === -1) console.log('unreachable');
  const nsPerOp = elapsed / ITERATIONS;
  return { name, nsPerOp: Math.round(nsPerOp * 10) / 10, opsPerSec: Math.round(1e9 / nsPerOp), gcs };
}

function pickOnly(picker: Picker): () => number {
  return () => (picker.pick() as EndpointLoad).inFlight;
}

/** A request's whole balancer bookkeeping: pick, onStart, onFinish with a latency sample (as the relay does). */
function pickStartFinish(picker: Picker, passNow: boolean): () => number {
  // The time lives in a typed array: a double in a closure variable would be boxed on every update.
  const now = new Float64Array([DEFAULT_LOAD_OPTIONS.now()]);
  return passNow
    ? () => {
        const load = picker.pick() as EndpointLoad;
        load.onStart();
        now[0] += 1000;
        load.onFinish(200_000, now[0]);
        return load.inFlight;
      }
    : () => {
        const load = picker.pick() as EndpointLoad;
        load.onStart();
        load.onFinish(200_000);
        return load.inFlight;
      };
}

export function runBalancerMicro(): MicroRow[] {
  const rows: MicroRow[] = [];
  for (const n of [3, 100]) {
    for (const name of BALANCER_NAMES) {
      rows.push(measure(`${name} pick /${n}`, pickOnly(policyByName(name, DEPS).createPicker(loads(n)))));
    }
  }
  // For comparison: what reading the monotonic clock costs (why pickers read the latest sample time instead).
  rows.push(measure('monotonic clock read', () => (monotonicNowNs() > 0 ? 1 : 0)));
  // onFinish reads the clock unless the caller passes the time it already has; both are shown.
  const picker = policyByName('p2c-ewma', DEPS).createPicker(loads(3));
  rows.push(measure('p2c-ewma pick+start+finish /3', pickStartFinish(picker, false)));
  rows.push(measure('p2c-ewma pick+start+finish(now) /3', pickStartFinish(picker, true)));
  return rows;
}

if (import.meta.main) {
  console.table(runBalancerMicro());
}
