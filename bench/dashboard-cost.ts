// `npm run bench:dashboard`: what the dashboard's data costs the agent — one frame a second (readings, frame, JSON
// for the event stream) with N services of E endpoints, as CPU time per frame and its share of one core at 1 Hz.

import os from 'node:os';
import { parseArgs } from 'node:util';
import { DashboardSampler } from '../agent/admin/dashboard-sampler.ts';
import type { BalancedService } from '../agent/admin/dashboard-frame.ts';
import { createMetrics } from '../agent/telemetry/metrics.ts';
import { realClock } from '../agent/vocabulary/clock.ts';
import { numberOption } from './number-option.ts';
import { describeMachine, median } from './report.ts';
import { autogroupsEnabled } from './proc-cpu.ts';

const { values } = parseArgs({ options: { services: { type: 'string' }, endpoints: { type: 'string' }, frames: { type: 'string' } } });
const services = numberOption(values.services, 100, 'services', { min: 1, max: 100_000, integer: true });
const endpoints = numberOption(values.endpoints, 3, 'endpoints', { min: 1, max: 1000, integer: true });
const frames = numberOption(values.frames, 200, 'frames', { min: 10, max: 100_000, integer: true });

const metrics = createMetrics({ processMetrics: false });
const balanced: BalancedService[] = [];
for (let s = 0; s < services; s++) {
  const key = `ns${s % 10}/svc${s}:50051`;
  const list = Array.from({ length: endpoints }, (_, e) => `10.${s >> 8}.${s & 255}.${e + 1}:50051`);
  balanced.push({ key, balancer: 'p2c-ewma', endpoints: list.map((address) => ({ address, ready: true, serving: true, terminating: false, eligible: true, inFlight: 1, latencyMs: 1.5, backingOff: false, ejected: false })) });
}
const handles = balanced.flatMap((service) => service.endpoints.map((endpoint) => metrics.requestMetrics(service.key, endpoint.address)));
const sampler = new DashboardSampler({
  clock: realClock,
  wallClockMs: Date.now,
  readings: () => metrics.readings(),
  services: () => balanced,
  agent: () => ({ readiness: { ready: true }, version: 'bench', node: 'bench', rssBytes: process.memoryUsage.rss(), eventLoopDelayMs: 0 }),
});

// Traffic between frames (not timed): every endpoint answered, a few statuses, spread latencies.
const traffic = (): void => {
  for (let i = 0; i < handles.length; i++) for (let r = 0; r < 20; r++) handles[i].record(r % 7 === 0 ? 14 : 0, 0.0005 * ((i + r) % 40));
};
const perFrameMs: number[] = [];
let bytes = 0;
for (let f = 0; f < frames; f++) {
  traffic();
  const before = process.cpuUsage();
  const json = JSON.stringify(sampler.sample());
  const used = process.cpuUsage(before);
  bytes = json.length;
  perFrameMs.push((used.user + used.system) / 1000);
}
const machine = describeMachine(autogroupsEnabled());
const medianMs = median(perFrameMs.slice(10)) ?? Number.NaN;
process.stdout.write(
  `${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}, load average ${os.loadavg()[0].toFixed(2)}\n` +
    `${services} services × ${endpoints} endpoints: ${medianMs.toFixed(3)} ms of CPU per frame (median of ${frames - 10}, after 10 warm-up), ` +
    `${(medianMs / 10).toFixed(3)}% of one core at one frame a second; ${(bytes / 1024).toFixed(1)} KiB of JSON per frame\n`,
);
