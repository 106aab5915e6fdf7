// What the discovery benchmark measures of each agent start: memory at ready and settled, the change histogram, admin costs.

import { debugServices, histogram, metricsText, sampleValue } from './agent-admin.ts';
import type { LogIssues, RunningAgent } from './discovery-agent.ts';
import { readMemory, type Settled, settledMemory } from './proc-memory.ts';
import { median } from './report.ts';

export const CHANGE_HISTOGRAM = 'meshlite_endpoint_change_to_picker_seconds';
const SETTLE = { intervalMs: 500, window: 6, tolerance: 0.02, maxMs: 30_000 };
const ADMIN_FETCHES = 5;

/** One /metrics scrape and one /debug/endpoints fetch on the idle agent: each blocks its event loop while it renders. */
export interface AdminCost {
  metricsMs: number | null;
  metricsBytes: number;
  debugMs: number | null;
  debugBytes: number;
}

export interface AgentStart {
  readyMs: number;
  cpuSecondsAtReady: number;
  /** Services the ready line reports (gRPC Service ports in the registry). */
  readyServices: number | null;
  rssAtReadyBytes: number;
  settled: Settled;
  /** V8 heap in use after settling (nodejs_heap_size_used_bytes). */
  heapUsedBytes: number | null;
  /** Observations in the change histogram right after the initial sync, and their sum in seconds. */
  histogramCountAtReady: number;
  histogramSumAtReady: number;
  admin: AdminCost;
  issues: LogIssues | null;
  exitMs: number | null;
  exitStatus: number | string | null;
}

async function timed<T>(f: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t = performance.now();
  const value = await f();
  return { ms: performance.now() - t, value };
}

/** Median time of a few fetches of each admin page, one after the other, on an otherwise idle agent. */
export async function adminCost(admin: string): Promise<AdminCost> {
  const metrics: number[] = [];
  const debug: number[] = [];
  let metricsBytes = 0;
  let debugBytes = 0;
  for (let i = 0; i < ADMIN_FETCHES; i++) {
    const m = await timed(() => metricsText(admin));
    metrics.push(m.ms);
    metricsBytes = Buffer.byteLength(m.value);
    const d = await timed(() => debugServices(admin));
    debug.push(d.ms);
    debugBytes = Buffer.byteLength(JSON.stringify({ services: d.value }));
  }
  return { metricsMs: median(metrics), metricsBytes, debugMs: median(debug), debugBytes };
}

/** Memory at once (before anything else asks the agent for work), the histogram, memory settled, heap, admin costs. */
export async function observeStart(agent: RunningAgent): Promise<AgentStart> {
  const rssAtReadyBytes = readMemory(agent.process.pid).rssBytes;
  const atReady = histogram(await metricsText(agent.admin), CHANGE_HISTOGRAM);
  const settled = await settledMemory(agent.process.pid, SETTLE);
  const heapUsedBytes = sampleValue(await metricsText(agent.admin), 'nodejs_heap_size_used_bytes');
  const admin = await adminCost(agent.admin);
  const services = Number(agent.ready.services);
  return {
    readyMs: agent.readyMs,
    cpuSecondsAtReady: agent.cpuSecondsAtReady,
    readyServices: Number.isFinite(services) ? services : null,
    rssAtReadyBytes,
    settled,
    heapUsedBytes,
    histogramCountAtReady: atReady.count,
    histogramSumAtReady: atReady.sum,
    admin,
    issues: null,
    exitMs: null,
    exitStatus: null,
  };
}

/** Stops the agent and completes its record with how it ended and what it logged. */
export async function finishStart(agent: RunningAgent, start: AgentStart): Promise<AgentStart> {
  const stopped = await agent.stop();
  return { ...start, issues: agent.issues(), exitMs: stopped.exitMs, exitStatus: stopped.status };
}

/** Memory settled again after work (the changes), with the heap then in use. */
export async function observeAfterWork(agent: RunningAgent): Promise<{ settled: Settled; heapUsedBytes: number | null }> {
  const settled = await settledMemory(agent.process.pid, SETTLE);
  return { settled, heapUsedBytes: sampleValue(await metricsText(agent.admin), 'nodejs_heap_size_used_bytes') };
}

/** Medians over the starts of one cluster; warnings and errors are summed. */
export interface StartSummary {
  starts: number;
  readyMs: number[];
  medianReadyMs: number | null;
  cpuSecondsAtReady: number | null;
  rssAtReadyBytes: number | null;
  settledRssBytes: number | null;
  allSettled: boolean;
  hwmBytes: number | null;
  heapUsedBytes: number | null;
  metricsMs: number | null;
  metricsBytes: number | null;
  debugMs: number | null;
  debugBytes: number | null;
  warnings: number;
  errors: number;
}

export function summarizeStarts(starts: readonly AgentStart[]): StartSummary {
  const med = (f: (s: AgentStart) => number | null): number | null => median(starts.map(f).filter((v): v is number => v !== null));
  return {
    starts: starts.length,
    readyMs: starts.map((s) => s.readyMs),
    medianReadyMs: med((s) => s.readyMs),
    cpuSecondsAtReady: med((s) => s.cpuSecondsAtReady),
    rssAtReadyBytes: med((s) => s.rssAtReadyBytes),
    settledRssBytes: med((s) => s.settled.rssBytes),
    allSettled: starts.every((s) => s.settled.stable),
    hwmBytes: med((s) => s.settled.hwmBytes),
    heapUsedBytes: med((s) => s.heapUsedBytes),
    metricsMs: med((s) => s.admin.metricsMs),
    metricsBytes: med((s) => s.admin.metricsBytes),
    debugMs: med((s) => s.admin.debugMs),
    debugBytes: med((s) => s.admin.debugBytes),
    warnings: starts.reduce((a, s) => a + (s.issues?.warnings ?? 0), 0),
    errors: starts.reduce((a, s) => a + (s.issues?.errors ?? 0), 0),
  };
}
