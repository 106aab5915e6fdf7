// `npm run bench:discovery`: the agent against 10,000 Services / 100,000 endpoints — time to ready, memory, change → picker latency.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type KubeApiServer, startKubeApiServer } from '../test/support/kube-api-server.ts';
import { seededRandom } from '../test/support/seeded-random.ts';
import { debugServices } from './agent-admin.ts';
import { type AgentStart, finishStart, observeAfterWork, observeStart, summarizeStarts } from './agent-observe.ts';
import { type ChangeSample, measureFromOutside, measureInAgent } from './change-latency.ts';
import { endpointSliceObject, namespaceObject, podObject, serviceObject } from './cluster-objects.ts';
import { type ClusterPlan, clusterStats, planCluster } from './cluster-plan.ts';
import { type RunningAgent, startAgent } from './discovery-agent.ts';
import { consistentSamples, type DiscoveryResult, markdown, summarizeLatency } from './discovery-report.ts';
import { autogroupsEnabled, clockTicksPerSecond, idleShare, sampleSystem } from './proc-cpu.ts';
import { readMemory } from './proc-memory.ts';
import { killAllNow, stopAll } from './processes.ts';
import { describeMachine, median } from './report.ts';
import { SliceChanger } from './slice-changes.ts';
import { numberOption } from './number-option.ts';
import { agentRevision } from './agent-revision.ts';

const USAGE = `Usage: npm run bench:discovery -- [options]
  --changes N       in-agent change → picker samples (default 200)
  --outside N       changes also timed from outside through /debug/endpoints (default 30)
  --starts N        agent starts per cluster, for medians (default 3)
  --seed N          the cluster's seed (default 1)
  --cpu-prof DIR    write a V8 CPU profile of each agent into DIR (when it exits)
  --time-limit S    stop measuring and clean up after S seconds (default 300)
  --quick           smoke run: a tenth of the cluster, 2 starts, 30 + 10 changes
  --help            this text`;

const NODE_NAME = 'bench-node-0000';
const READY_TIMEOUT_MS = 150_000;

interface Options {
  changes: number;
  outside: number;
  starts: number;
  seed: number;
  cpuProfDir: string | undefined;
  timeLimitS: number;
  quick: boolean;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      changes: { type: 'string' },
      outside: { type: 'string' },
      starts: { type: 'string' },
      seed: { type: 'string' },
      'cpu-prof': { type: 'string' },
      'time-limit': { type: 'string' },
      quick: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const quick = values.quick;
  return {
    changes: numberOption(values.changes, quick ? 30 : 200, 'changes', { min: 1, max: 5000, integer: true }),
    outside: numberOption(values.outside, quick ? 10 : 30, 'outside', { min: 0, max: 1000, integer: true }),
    starts: numberOption(values.starts, quick ? 2 : 3, 'starts', { min: 1, max: 20, integer: true }),
    seed: numberOption(values.seed, 1, 'seed', { min: 0, max: 2 ** 31, integer: true }),
    cpuProfDir: values['cpu-prof'] === undefined ? undefined : resolve(values['cpu-prof']),
    timeLimitS: numberOption(values['time-limit'], 300, 'time-limit', { min: 30, max: 3600, integer: true }),
    quick,
  };
}

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};
const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** Writes the cluster in the order a cluster comes to be: Namespaces, Services, Pods, then the controller's slices. */
function loadCluster(server: KubeApiServer, plan: ClusterPlan): void {
  for (const ns of plan.namespaces) server.apply('namespaces', namespaceObject(ns.name, ns.inject));
  for (const service of plan.services) service.uid = String(server.apply('services', serviceObject(service)).metadata?.uid);
  for (const pod of plan.localPods) {
    const stored = server.apply('pods', podObject(pod.service, pod.endpoint, plan.hostIP, pod.inject));
    pod.endpoint.uid = String(stored.metadata?.uid);
  }
  for (const slice of plan.slices) server.apply('endpointslices', endpointSliceObject(slice));
}

function describe(name: string, run: AgentStart): string {
  return (
    `${name}: ready in ${(run.readyMs / 1000).toFixed(2)} s (CPU ${run.cpuSecondsAtReady.toFixed(2)} s, ${run.readyServices} services), ` +
    `RSS ${mib(run.rssAtReadyBytes)} at ready, ${mib(run.settled.rssBytes)} settled${run.settled.stable ? '' : ' (NOT stable)'} ` +
    `after ${(run.settled.elapsedMs / 1000).toFixed(1)} s, peak ${mib(run.settled.hwmBytes)}, histogram count ${run.histogramCountAtReady} at ready, ` +
    `/metrics ${run.admin.metricsMs?.toFixed(1)} ms, /debug/endpoints ${run.admin.debugMs?.toFixed(1)} ms`
  );
}

function progressLine(phase: string, total: number): (done: number, s: ChangeSample) => void {
  return (done, s) => {
    if (s.error !== null) log(`${phase} ${done}/${total} ${s.kind} ${s.serviceKey}: ${s.error}`);
    else if (done % 25 === 0 || done === total) {
      log(`${phase} ${done}/${total}: last ${s.kind} agent ${s.agentMs?.toFixed(1)} ms, seen after ${s.seenMs?.toFixed(1)} ms`);
    }
  };
}

async function main(): Promise<void> {
  const o = options();
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 24) throw new Error(`run on the pinned Node (npm run bench:discovery or ./node_modules/.bin/node), not ${process.version}`);
  const startedAt = new Date().toISOString();
  const started = performance.now();
  const deadline = started + o.timeLimitS * 1000;
  const dir = mkdtempSync(join(os.tmpdir(), 'meshlite-bench-discovery-'));
  const servers: KubeApiServer[] = [];
  let cleaning: Promise<void> | null = null;
  const cleanup = (): Promise<void> => {
    cleaning ??= (async () => {
      await stopAll();
      for (const server of servers) await server.close();
      rmSync(dir, { recursive: true, force: true });
    })();
    return cleaning;
  };
  const abort = (why: string): void => {
    log(`\n${why}: stopping every process the benchmark started`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', () => abort('SIGINT'));
  process.once('SIGTERM', () => abort('SIGTERM'));
  process.once('exit', killAllNow);
  // Past the limit (plus time to report) something hangs: end it rather than run on.
  setTimeout(() => abort(`time limit of ${o.timeLimitS + 60} s`), (o.timeLimitS + 60) * 1000).unref();
  if (o.cpuProfDir !== undefined) mkdirSync(o.cpuProfDir, { recursive: true });
  try {
    const m = describeMachine(autogroupsEnabled());
    const machine = { cpuModel: m.cpuModel, cores: m.cores, kernel: m.kernel, node: m.node, autogroupsEnabled: m.autogroupsEnabled };
    const revision = agentRevision();
    const loadAverage = os.loadavg();
    const ticksPerSecond = clockTicksPerSecond();
    const agentOptions = { nodeName: NODE_NAME, dir, readyTimeoutMs: READY_TIMEOUT_MS, ticksPerSecond, cpuProfDir: o.cpuProfDir };

    const empty = await startKubeApiServer();
    servers.push(empty);
    const baselineStarts: AgentStart[] = [];
    for (let i = 1; i <= o.starts; i++) {
      const agent = await startAgent({ ...agentOptions, name: `agent-empty-${i}`, kubeconfig: empty.kubeconfigPath });
      const start = await observeStart(agent);
      log(describe(`empty cluster, start ${i}`, start));
      baselineStarts.push(await finishStart(agent, start));
    }
    await empty.close();

    const scale = o.quick ? 10 : 1;
    const plan = planCluster({
      seed: o.seed,
      services: 10_000 / scale,
      endpoints: 100_000 / scale,
      grpcEvery: 10,
      namespaces: 100 / scale,
      nodes: 1000 / scale,
      nodeName: NODE_NAME,
      nowMs: Date.now(),
    });
    const cluster = clusterStats(plan);
    const server = await startKubeApiServer();
    servers.push(server);
    const loadStart = performance.now();
    loadCluster(server, plan);
    const clusterLoadMs = performance.now() - loadStart;
    log(`cluster: ${cluster.services} services (${cluster.grpcServices} gRPC), ${cluster.endpoints} endpoints, ${cluster.slices} slices, loaded in ${(clusterLoadMs / 1000).toFixed(2)} s`);

    const scaleStarts: AgentStart[] = [];
    const syncIdle: number[] = [];
    let agent: RunningAgent | null = null;
    for (let i = 1; i <= o.starts; i++) {
      const syncBefore = sampleSystem();
      agent = await startAgent({ ...agentOptions, name: `agent-scale-${i}`, kubeconfig: server.kubeconfigPath });
      syncIdle.push(idleShare(syncBefore, sampleSystem()) ?? Number.NaN);
      const start = await observeStart(agent);
      log(describe(`this cluster, start ${i}`, start));
      // The last agent stays up for the changes.
      if (i < o.starts) scaleStarts.push(await finishStart(agent, start));
      else scaleStarts.push(start);
    }
    if (agent === null) throw new Error('no agent started');

    const view = await debugServices(agent.admin);
    const check = {
      serviceKeys: view.length,
      endpoints: view.reduce((a, s) => a + s.endpoints.length, 0),
      expectedServiceKeys: cluster.grpcServices,
      expectedEndpoints: cluster.grpcEndpoints,
    };
    log(`debug view: ${check.serviceKeys} service keys, ${check.endpoints} endpoints (expected ${check.expectedServiceKeys}, ${check.expectedEndpoints})`);

    const changer = new SliceChanger(plan);
    const loop = { server, changer, admin: agent.admin, changeTimeoutMs: 10_000, gapMs: 20, random: seededRandom(o.seed + 1) };
    const changesBefore = sampleSystem();
    const inAgent = await measureInAgent({ ...loop, count: o.changes, deadline: deadline - 60_000, progress: progressLine('in-agent', o.changes) });
    const outside = await measureFromOutside({ ...loop, count: o.outside, deadline: deadline - 45_000, progress: progressLine('outside', o.outside) });
    const idleDuringChanges = idleShare(changesBefore, sampleSystem());
    const rssBytes = readMemory(agent.process.pid).rssBytes;
    const afterWork = await observeAfterWork(agent);
    log(`after the changes: RSS ${mib(rssBytes)}, settled ${mib(afterWork.settled.rssBytes)}, heap used ${mib(afterWork.heapUsedBytes ?? 0)}`);
    const lastStart = await finishStart(agent, scaleStarts.pop() as AgentStart);
    scaleStarts.push(lastStart);
    for (const start of [...baselineStarts, ...scaleStarts]) {
      const issues = start.issues;
      if (issues !== null && issues.warnings + issues.errors > 0) log(`agent log issues: ${JSON.stringify(issues.byCode)}; first: ${issues.first.join('\n')}`);
    }

    const partial: Omit<DiscoveryResult, 'markdown'> = {
      startedAt,
      agentRevision: revision,
      machine,
      load: { loadAverage, idleDuringSyncs: median(syncIdle.filter(Number.isFinite)), idleDuringChanges },
      seed: o.seed,
      cluster,
      clusterLoadMs,
      baseline: { summary: summarizeStarts(baselineStarts), starts: baselineStarts },
      scale: { summary: summarizeStarts(scaleStarts), starts: scaleStarts },
      check,
      afterChanges: { rssBytes, ...afterWork },
      inAgent: { summary: summarizeLatency(inAgent.map((s) => s.agentMs)), samples: inAgent },
      outside: {
        summary: summarizeLatency(outside.samples.map((s) => s.seenMs)),
        lowerBound: summarizeLatency(outside.samples.map((s) => s.lastMissSentMs ?? 0)),
        agentSameChanges: summarizeLatency(outside.samples.map((s) => s.agentMs)),
        consistent: consistentSamples(outside.samples),
        samples: outside.samples,
        pollMs: summarizeLatency(outside.pollMs),
      },
    };
    const table = markdown(partial);
    const result: DiscoveryResult = { ...partial, markdown: table };
    const resultsDir = resolve(import.meta.dirname, 'results');
    mkdirSync(resultsDir, { recursive: true });
    const base = join(resultsDir, `discovery-${startedAt.replace(/[:.]/g, '-')}${o.quick ? '-quick' : ''}`);
    writeFileSync(`${base}.json`, `${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(`${base}.md`, table);
    console.log(table);
    log(`result written to ${base}.json and .md (${((performance.now() - started) / 1000).toFixed(0)} s)`);
  } finally {
    await cleanup();
  }
}

await main().catch((error: Error) => {
  log(`bench failed: ${error.stack ?? error.message}`);
  process.exitCode = 1;
});
// Everything started is stopped by now; stopProcess's grace timers would only keep the process waiting.
process.exit();
