// The discovery benchmark's result: the agent starts, the latency summaries, the checks, and the Markdown table.

import type { AgentStart, StartSummary } from './agent-observe.ts';
import type { ChangeSample } from './change-latency.ts';
import type { ClusterStats } from './cluster-plan.ts';
import type { Settled } from './proc-memory.ts';

export interface LatencySummary {
  samples: number;
  failed: number;
  p50: number | null;
  p99: number | null;
  max: number | null;
}

/** Nearest-rank percentile (q in 0..1) of the finite values. */
export function percentile(values: readonly number[], q: number): number | null {
  const s = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return null;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

export function summarizeLatency(values: ReadonlyArray<number | null | undefined>): LatencySummary {
  const ok = values.filter((v): v is number => v !== null && v !== undefined);
  return { samples: values.length, failed: values.length - ok.length, p50: percentile(ok, 0.5), p99: percentile(ok, 0.99), max: percentile(ok, 1) };
}

/** Outside samples whose in-agent figure lies between the outside bounds (1 ms of slack: the trigger time's resolution). */
export function consistentSamples(samples: readonly ChangeSample[]): number {
  return samples.filter((s) => s.agentMs !== null && s.seenMs !== null && s.agentMs <= s.seenMs + 1 && s.agentMs >= (s.lastMissSentMs ?? 0) - 1).length;
}

export interface DiscoveryResult {
  startedAt: string;
  /** The commit the agent ran from, and whether agent/ had uncommitted changes. */
  agentRevision: string;
  machine: { cpuModel: string; cores: number; kernel: string; node: string; autogroupsEnabled: boolean };
  /** 1-, 5- and 15-minute load averages when the benchmark started, and the share of CPU idle during each phase. */
  load: { loadAverage: number[]; idleDuringSyncs: number | null; idleDuringChanges: number | null };
  seed: number;
  cluster: ClusterStats;
  /** Time to write every object into the test API server (in the benchmark's own process), ms. */
  clusterLoadMs: number;
  baseline: { summary: StartSummary; starts: AgentStart[] };
  scale: { summary: StartSummary; starts: AgentStart[] };
  /** The debug view agreed with the cluster after the sync: gRPC service keys and endpoints it shows. */
  check: { serviceKeys: number; endpoints: number; expectedServiceKeys: number; expectedEndpoints: number };
  afterChanges: { rssBytes: number; settled: Settled; heapUsedBytes: number | null } | null;
  inAgent: { summary: LatencySummary; samples: ChangeSample[] };
  outside: {
    summary: LatencySummary;
    lowerBound: LatencySummary;
    agentSameChanges: LatencySummary;
    consistent: number;
    samples: ChangeSample[];
    pollMs: LatencySummary;
  };
  markdown: string;
}

const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const ms = (v: number | null): string => (v === null ? '–' : `${v.toFixed(1)} ms`);
const sec = (v: number): string => `${(v / 1000).toFixed(2)} s`;
const int = (v: number): string => v.toLocaleString('en-US');
const ratio = (a: number | null, b: number | null): string => (a === null || b === null || b === 0 ? '–' : `${(a / b).toFixed(2)}×`);
const cell = (v: number | null, f: (v: number) => string): string => (v === null ? '–' : f(v));
const diff = (a: number | null, b: number | null, f: (v: number) => string): string =>
  a === null || b === null ? '–' : a >= b ? `+${f(a - b)}` : `−${f(b - a)}`;
const idle = (v: number | null): string => (v === null ? '–' : `${Math.round(v * 100)}%`);

function histogramAtSync(start: AgentStart): string {
  if (start.histogramCountAtReady === 0) return 'Right after the initial sync the change histogram was empty (the initial LIST is not counted as changes).';
  return (
    `Right after the initial sync the change histogram already held ${int(start.histogramCountAtReady)} observations ` +
    `(sum ${int(Math.round(start.histogramSumAtReady))} s): slices of the initial LIST, aged by their trigger times.`
  );
}

export function markdown(r: Omit<DiscoveryResult, 'markdown'>): string {
  const m = r.machine;
  const c = r.cluster;
  const b = r.baseline.summary;
  const x = r.scale.summary;
  const last = r.scale.starts[r.scale.starts.length - 1];
  // A ratio to a near-empty baseline (an empty page) says nothing: left out.
  const row = (label: string, base: number | null, big: number | null, f: (v: number) => string, withRatio = true): string =>
    `| ${label} | ${cell(base, f)} | ${cell(big, f)} | ${diff(big, base, f)} | ${withRatio ? ratio(big, base) : '–'} |`;
  const lat = (label: string, l: LatencySummary): string =>
    `| ${label} | ${l.samples}${l.failed > 0 ? ` (${l.failed} failed)` : ''} | ${ms(l.p50)} | ${ms(l.p99)} | ${ms(l.max)} |`;
  const each = (s: StartSummary): string => s.readyMs.map((v) => (v / 1000).toFixed(2)).join(', ');
  const after = r.afterChanges;
  const lines = [
    `Agent at ${r.agentRevision}. Machine: ${m.cpuModel}, ${m.cores} cores, ${m.kernel}; Node ${m.node}. Load average at start ` +
      `${r.load.loadAverage.map((v) => v.toFixed(2)).join(' / ')}; CPU idle ${idle(r.load.idleDuringSyncs)} during the big syncs, ` +
      `${idle(r.load.idleDuringChanges)} during the changes (other work on the machine shows here).`,
    '',
    `Cluster (seed ${r.seed}), served by the in-repo test API server in the benchmark's process: ${int(c.services)} Services ` +
      `(${int(c.grpcServices)} gRPC) in ${c.namespaces} Namespaces, ${int(c.endpoints)} endpoints (${int(c.grpcEndpoints)} behind gRPC ` +
      `Services) in ${int(c.slices)} EndpointSlices (${int(c.grpcSlices)} gRPC; ${c.servicesWithSeveralSlices} Services, ` +
      `${c.grpcServicesWithSeveralSlices} of them gRPC, need several); endpoints per Service median ${c.sizes.p50}, p90 ${c.sizes.p90}, ` +
      `p99 ${c.sizes.p99}, max ${c.sizes.max}; ${c.notReadyEndpoints} not ready, ${c.terminatingEndpoints} terminating; ` +
      `${c.localPods} Pods on the agent's node (${c.localPodsOptedIn} opted in). Writing it into the server took ${sec(r.clusterLoadMs)}.`,
    '',
    `**Start and memory** (medians of ${x.starts} starts per cluster, each agent in its own session; RSS is VmRSS from /proc/PID/status)`,
    '',
    '| | empty cluster | this cluster | difference | ratio |',
    '|---|--:|--:|--:|--:|',
    row('spawn → "meshlite ready"', b.medianReadyMs, x.medianReadyMs, sec),
    row('agent CPU (user+sys) until ready', b.cpuSecondsAtReady === null ? null : b.cpuSecondsAtReady * 1000, x.cpuSecondsAtReady === null ? null : x.cpuSecondsAtReady * 1000, sec),
    row('RSS at ready', b.rssAtReadyBytes, x.rssAtReadyBytes, mib),
    row(`RSS settled${b.allSettled && x.allSettled ? '' : ' (not stable within 30 s)'}`, b.settledRssBytes, x.settledRssBytes, mib),
    row('peak RSS (VmHWM)', b.hwmBytes, x.hwmBytes, mib),
    row('V8 heap used, settled', b.heapUsedBytes, x.heapUsedBytes, mib),
    row('one /metrics scrape (idle agent)', b.metricsMs, x.metricsMs, ms),
    row('/metrics size', b.metricsBytes, x.metricsBytes, (v) => `${Math.round(v / 1024)} KiB`, false),
    row('one /debug/endpoints fetch (idle agent)', b.debugMs, x.debugMs, ms),
    row('/debug/endpoints size', b.debugBytes, x.debugBytes, (v) => `${Math.round(v / 1024)} KiB`, false),
    row('RSS right after the changes below', null, after?.rssBytes ?? null, mib),
    row('RSS settled after the changes', null, after?.settled.rssBytes ?? null, mib),
    row('V8 heap used after the changes', null, after?.heapUsedBytes ?? null, mib),
    '',
    `Ready times of each start: empty ${each(b)} s; this cluster ${each(x)} s.`,
    '',
    '**EndpointSlice change → new picker** (changes to slices of gRPC Services, one at a time, on the last start)',
    '',
    '| measured | changes | median | p99 | max |',
    '|---|--:|--:|--:|--:|',
    lat('in the agent (`meshlite_endpoint_change_to_picker_seconds`: `_sum` rise per change)', r.inAgent.summary),
    lat('from outside: apply → the `/debug/endpoints` response that shows it (upper bound)', r.outside.summary),
    lat('from outside: apply → the last poll that did not show it was sent (lower bound)', r.outside.lowerBound),
    lat('in the agent, for those same changes (polled back to back)', r.outside.agentSameChanges),
    lat('one `/debug/endpoints` fetch while polling', r.outside.pollMs),
    '',
    `Checks: the debug view showed ${int(r.check.serviceKeys)} gRPC Service ports (expected ${int(r.check.expectedServiceKeys)}) ` +
      `and ${int(r.check.endpoints)} endpoints (expected ${int(r.check.expectedEndpoints)}); for ${r.outside.consistent} of ` +
      `${r.outside.samples.length} outside samples the agent's figure lies within the outside bounds (±1 ms). ${histogramAtSync(last)} The agent logged ` +
      `${x.warnings} warning(s) and ${x.errors} error(s) over the starts against this cluster (empty cluster: ${b.warnings}, ${b.errors}); ` +
      `SIGTERM to exit ${last.exitMs === null ? '–' : sec(last.exitMs)} (exit ${String(last.exitStatus)}). The trigger time has ` +
      'millisecond resolution, as the controller writes it, and so has the agent\'s clock reading: each in-agent sample is ±1 ms.',
    '',
  ];
  return lines.join('\n');
}
