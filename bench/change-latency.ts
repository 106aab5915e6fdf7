// Time from an EndpointSlice change to the agent's new picker: from the agent's own histogram, and as seen from outside.

import type { KubeApiServer } from '../test/support/kube-api-server.ts';
import { debugServices, type DebugService, histogram, type HistogramReading, metricsText } from './agent-admin.ts';
import { CHANGE_HISTOGRAM } from './agent-observe.ts';
import { endpointSliceObject } from './cluster-objects.ts';
import type { ChangeKind, SliceChange, SliceChanger } from './slice-changes.ts';

export interface ChangeSample {
  kind: ChangeKind;
  serviceKey: string;
  /** The agent's own figure: the increase of the histogram's `_sum`, ms; null when the change was not observed once. */
  agentMs: number | null;
  /** From the apply call to the response that showed the change (outside) or the count's increase (in-agent), ms. */
  seenMs: number | null;
  /** Outside only: when the last poll that did not show the change was sent, ms after the apply (a lower bound). */
  lastMissSentMs?: number | null;
  polls: number;
  error: string | null;
}

export interface LoopOptions {
  server: KubeApiServer;
  changer: SliceChanger;
  admin: string;
  count: number;
  /** performance.now() after which no new change is made. */
  deadline: number;
  /** How long one change may take to show before it counts as lost. */
  changeTimeoutMs: number;
  /** Pause between changes, so that one change's work never overlaps the next. */
  gapMs: number;
  random: () => number;
  progress(done: number, sample: ChangeSample): void;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Applies a change with the trigger time the controller would write, just before the write. */
function applyChange(o: LoopOptions): { change: SliceChange; appliedAt: number } {
  const change = o.changer.next(new Date().toISOString());
  const appliedAt = performance.now();
  o.server.apply('endpointslices', endpointSliceObject(change.slice));
  return { change, appliedAt };
}

/**
 * One change at a time; after each, /metrics is polled (from 1 ms apart, backing off to 50 ms so that polling
 * stays a small load on the agent) until the histogram's count rose by one. The sample is the rise of its sum:
 * exactly what the agent measured for that change, whatever the polling rate.
 */
export async function measureInAgent(o: LoopOptions): Promise<ChangeSample[]> {
  const samples: ChangeSample[] = [];
  let before = histogram(await metricsText(o.admin), CHANGE_HISTOGRAM);
  for (let i = 0; i < o.count && performance.now() < o.deadline; i++) {
    const { change, appliedAt } = applyChange(o);
    const sample: ChangeSample = { kind: change.kind, serviceKey: change.serviceKey, agentMs: null, seenMs: null, polls: 0, error: null };
    let delayMs = 1;
    for (;;) {
      await sleep(delayMs);
      delayMs = Math.min(delayMs * 2, 50);
      const now = histogram(await metricsText(o.admin), CHANGE_HISTOGRAM);
      sample.polls++;
      if (now.count > before.count) {
        sample.seenMs = performance.now() - appliedAt;
        const result = agentDelta(before, now);
        sample.agentMs = result.ms;
        sample.error = result.error;
        before = now;
        break;
      }
      if (performance.now() - appliedAt > o.changeTimeoutMs) {
        sample.error = `not observed within ${o.changeTimeoutMs} ms`;
        break;
      }
    }
    samples.push(sample);
    o.progress(samples.length, sample);
    await sleep(o.gapMs * (0.5 + o.random()));
  }
  return samples;
}

function agentDelta(before: HistogramReading, after: HistogramReading): { ms: number | null; error: string | null } {
  const observations = after.count - before.count;
  if (observations !== 1) return { ms: null, error: `${observations} observations for one change` };
  // The sum holds the initial sync's observations too (seconds to days each): round away its float noise.
  return { ms: Math.round((after.sum - before.sum) * 1e6) / 1000, error: null };
}

function shows(services: readonly DebugService[], change: SliceChange): boolean {
  const endpoint = services.find((s) => s.key === change.serviceKey)?.endpoints.find((e) => e.address === change.address);
  if (!change.expect.present) return endpoint === undefined;
  return endpoint !== undefined && endpoint.ready === change.expect.ready;
}

/**
 * The same latency from outside, for readers to check the agent's figure: after each change /debug/endpoints is
 * fetched back to back until it shows the change. The result is bounded above by when that response arrived and
 * below by when the previous poll was sent; the agent's own figure for the same change is read afterwards.
 */
export async function measureFromOutside(o: LoopOptions): Promise<{ samples: ChangeSample[]; pollMs: number[] }> {
  const samples: ChangeSample[] = [];
  const pollMs: number[] = [];
  let before = histogram(await metricsText(o.admin), CHANGE_HISTOGRAM);
  for (let i = 0; i < o.count && performance.now() < o.deadline; i++) {
    const { change, appliedAt } = applyChange(o);
    const sample: ChangeSample = {
      kind: change.kind,
      serviceKey: change.serviceKey,
      agentMs: null,
      seenMs: null,
      lastMissSentMs: null,
      polls: 0,
      error: null,
    };
    for (;;) {
      const sent = performance.now();
      const services = await debugServices(o.admin);
      const received = performance.now();
      pollMs.push(received - sent);
      sample.polls++;
      if (shows(services, change)) {
        sample.seenMs = received - appliedAt;
        break;
      }
      sample.lastMissSentMs = sent - appliedAt;
      if (received - appliedAt > o.changeTimeoutMs) {
        sample.error = `not shown within ${o.changeTimeoutMs} ms`;
        break;
      }
    }
    // The agent observed the change before it could show it: its histogram already counts it.
    const after = histogram(await metricsText(o.admin), CHANGE_HISTOGRAM);
    const result = agentDelta(before, after);
    sample.agentMs = result.ms;
    sample.error ??= result.error;
    before = after;
    samples.push(sample);
    o.progress(samples.length, sample);
    await sleep(o.gapMs * (0.5 + o.random()));
  }
  return { samples, pollMs };
}
