// Event-loop time of one EndpointSlice change of a 10,000-endpoint Service, through the agent's real discovery path.
//
// `node bench/slice-change-cost.ts [--endpoints N] [--per-slice N] [--changes N] [--seed N] [--explicit]`
//
// Builds one gRPC Service of N endpoints in slices of --per-slice, through the real projection, ServiceIndex and
// EndpointRegistry, with the registry's subscribers wired as agent/agent-run.ts and agent/transparent-mode.ts wire
// them: the BalancerSet (outlier ejection on, a removed endpoint's hook as the relay's), the per-service endpoint
// metrics, and the interception destinations (the registry's address changes handed to the desired sets once per
// event-loop turn in the agent, then the sets pass planned against what the last one applied; here timed right
// after the event, as "deferred"). Then applies --changes single-slice changes (half flip one endpoint's ready
// condition, a quarter add an endpoint, a quarter remove one) and reports the synchronous time of each: the
// projection of the slice's JSON and the informer handler (ServiceIndex.applySlice → registry → subscribers), and
// the deferred destinations work and pass. Run once with the default policy (p2c-ewma) and once with round-robin.
// --explicit: as an agent without interception (no destinations subscriber).
// Not timed: the JSON parse of the watch stream (discovery/kube-api.ts), the state file's write (at most once a
// second), and starting `ipset restore` (a process per pass; passes within 5 ms are one).

import { PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { BalancerSet } from '../agent/balancer/balancer-set.ts';
import { DEFAULT_OUTLIER_POLICY } from '../agent/balancer/outlier-ejection.ts';
import { projectEndpointSlice, projectService } from '../agent/discovery/kube-projection.ts';
import { ServiceIndex } from '../agent/discovery/service-index.ts';
import type { CommandRunner } from '../agent/intercept/command-runner.ts';
import { type DestinationChange, DesiredSets } from '../agent/intercept/desired-sets.ts';
import { applyInterception } from '../agent/intercept/interception-pass.ts';
import type { Members } from '../agent/intercept/member-set.ts';
import { EndpointRegistry } from '../agent/registry/endpoint-registry.ts';
import { createMetrics } from '../agent/telemetry/metrics.ts';
import { followRegistry } from '../agent/telemetry/registry-series.ts';
import type { BalancerName } from '../agent/vocabulary/balancer-names.ts';
import { backgroundClock } from '../agent/vocabulary/clock.ts';
import { seededRandom } from '../test/support/seeded-random.ts';
import { numberOption } from './number-option.ts';

const { values } = parseArgs({
  options: {
    endpoints: { type: 'string' },
    'per-slice': { type: 'string' },
    changes: { type: 'string' },
    seed: { type: 'string' },
    explicit: { type: 'boolean' },
  },
});
const EXPLICIT = values.explicit ?? false;
const ENDPOINTS = numberOption(values.endpoints, 10_000, 'endpoints', { min: 1, max: 1_000_000, integer: true });
const PER_SLICE = numberOption(values['per-slice'], 100, 'per-slice', { min: 1, max: 1000, integer: true });
const CHANGES = numberOption(values.changes, 200, 'changes', { min: 10, max: 100_000, integer: true });
const SEED = numberOption(values.seed, 1, 'seed', { min: 0, max: 2 ** 31, integer: true });
const WARMUP = 50;
const NAMESPACE = 'bench';
const SERVICE = 'big';
const PORT = 50051;

interface RawEndpoint {
  addresses: string[];
  conditions: { ready: boolean; serving: boolean; terminating: boolean };
}

interface RawSlice {
  name: string;
  version: number;
  endpoints: RawEndpoint[];
}

function ipOf(n: number): string {
  return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}

/** The EndpointSlice JSON as the API server sends it (the fields the projection reads). */
function sliceJson(slice: RawSlice): unknown {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: slice.name,
      namespace: NAMESPACE,
      resourceVersion: String(slice.version),
      labels: { 'kubernetes.io/service-name': SERVICE },
    },
    addressType: 'IPv4',
    ports: [{ name: 'grpc', port: PORT, protocol: 'TCP' }],
    endpoints: slice.endpoints.map((e) => ({ addresses: e.addresses, conditions: { ...e.conditions } })),
  };
}

function serviceJson(): unknown {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: SERVICE, namespace: NAMESPACE, resourceVersion: '1' },
    spec: { clusterIP: '10.96.0.50', clusterIPs: ['10.96.0.50'], ports: [{ name: 'grpc', port: PORT, protocol: 'TCP', targetPort: PORT }] },
  };
}

interface Figures {
  median: number;
  p99: number;
  max: number;
}

function figures(ms: number[]): Figures {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  return { median: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] };
}

function show(name: string, f: Figures): string {
  return `${name.padEnd(30)} median ${f.median.toFixed(3)} ms   p99 ${f.p99.toFixed(3)} ms   max ${f.max.toFixed(3)} ms`;
}

async function run(policy: BalancerName): Promise<void> {
  const random = seededRandom(SEED);
  const registry = new EndpointRegistry();
  let drained = 0;
  const balancers = new BalancerSet(registry, {
    defaultBalancer: policy,
    hooks: { onEndpointRemoved: () => drained++ },
    outliers: { policy: DEFAULT_OUTLIER_POLICY, clock: backgroundClock },
  });
  // As agent/agent-run.ts subscribes the per-service endpoint metrics.
  const metrics = createMetrics({ processMetrics: false });
  followRegistry(registry, metrics);
  // As agent/transparent-mode.ts follows the registry: the address changes collected, handed to the desired sets once
  // per turn (here right after the event, as "deferred"), and the sets pass the interception manager then runs,
  // planned against what the last pass applied; its `ipset restore` answered at once (not timed: another process).
  const desired = new DesiredSets([4]);
  let pending: DestinationChange[] = [];
  let applied: ReadonlyMap<string, Members> | undefined;
  let restored = 0;
  const runner: CommandRunner = async () => {
    restored++;
    return { code: 0, stdout: '', stderr: '' };
  };
  if (!EXPLICIT) registry.subscribeAddresses((ip, port, claimed) => pending.push({ ip, port, claimed }));
  const recomputeDestinations = async (): Promise<void> => {
    if (pending.length === 0) return;
    desired.changeDestinations(pending);
    pending = [];
    const snapshot = desired.snapshot();
    await applyInterception({ runner, backend: 'nft', families: [{ family: 4, nodeIP: '10.0.0.1' }], proxyPort: 15001, failMode: 'open', desired: snapshot, rules: false, assumed: applied ?? new Map() });
    applied = snapshot;
  };
  const index = new ServiceIndex(registry);

  const slices: RawSlice[] = [];
  for (let i = 0; i * PER_SLICE < ENDPOINTS; i++) {
    const endpoints: RawEndpoint[] = [];
    for (let n = i * PER_SLICE; n < Math.min(ENDPOINTS, (i + 1) * PER_SLICE); n++) {
      endpoints.push({ addresses: [ipOf(n)], conditions: { ready: true, serving: true, terminating: false } });
    }
    slices.push({ name: `${SERVICE}-${i}`, version: 1, endpoints });
  }
  const built = performance.now();
  index.applyService(projectService(serviceJson()));
  for (const slice of slices) index.applySlice(projectEndpointSlice(sliceJson(slice)));
  await recomputeDestinations();
  const buildMs = performance.now() - built;
  const key = `${NAMESPACE}/${SERVICE}:${PORT}`;
  const listed = registry.get(key)?.endpoints.length ?? 0;

  // Garbage collections inside a change's time are part of it (the event loop waits for them): reported apart.
  const collections: Array<{ start: number; end: number }> = [];
  const gcObserver = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) collections.push({ start: entry.startTime, end: entry.startTime + entry.duration });
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  const intervals: Array<{ start: number; end: number }> = [];
  let nextIp = ENDPOINTS;
  const handler: number[] = [];
  const projection: number[] = [];
  const deferred: number[] = [];
  const total: number[] = [];
  const byKind: Record<string, number[]> = { 'ready flip': [], 'endpoint added': [], 'endpoint removed': [] };
  for (let c = 0; c < WARMUP + CHANGES; c++) {
    let kind: string;
    const slice = slices[Math.floor(random() * slices.length)];
    const draw = random();
    if (draw < 0.5 || (draw >= 0.75 && slice.endpoints.length <= 1)) {
      const endpoint = slice.endpoints[Math.floor(random() * slice.endpoints.length)];
      const ready = !endpoint.conditions.ready;
      endpoint.conditions = { ready, serving: ready, terminating: false };
      kind = 'ready flip';
    } else if (draw < 0.75) {
      slice.endpoints.push({ addresses: [ipOf(nextIp++)], conditions: { ready: true, serving: true, terminating: false } });
      kind = 'endpoint added';
    } else {
      slice.endpoints.splice(Math.floor(random() * slice.endpoints.length), 1);
      kind = 'endpoint removed';
    }
    slice.version++;
    const json = sliceJson(slice);
    const t0 = performance.now();
    const record = projectEndpointSlice(json);
    const t1 = performance.now();
    const changed = index.applySlice(record);
    const t2 = performance.now();
    await recomputeDestinations();
    const t3 = performance.now();
    if (changed.length !== 1) throw new Error(`change ${c} changed ${changed.length} keys`);
    if (c < WARMUP) continue;
    projection.push(t1 - t0);
    handler.push(t2 - t1);
    deferred.push(t3 - t2);
    total.push(t3 - t0);
    byKind[kind].push(t3 - t0);
    intervals.push({ start: t0, end: t3 });
  }
  // Let the observer deliver the last entries.
  await new Promise((resolve) => setTimeout(resolve, 50));
  gcObserver.disconnect();
  const gcInChange = intervals.map(({ start, end }) => {
    let ms = 0;
    for (const gc of collections) ms += Math.max(0, Math.min(end, gc.end) - Math.max(start, gc.start));
    return ms;
  });
  const balancer = balancers.get(key);
  const view = balancer?.describe();
  const eligible = view?.endpoints.filter((e) => e.eligible).length ?? 0;
  console.log(`\npolicy ${policy}: ${listed} endpoints in ${slices.length} slices, built in ${buildMs.toFixed(0)} ms; ${CHANGES} changes after ${WARMUP} warm-up`);
  console.log(show('projection (JSON → record)', figures(projection)));
  console.log(show('informer handler (index → all)', figures(handler)));
  console.log(show('deferred (destinations, pass)', figures(deferred)));
  console.log(show('total event-loop time', figures(total)));
  console.log(show('  of which garbage collection', figures(gcInChange)));
  console.log(show('  without garbage collection', figures(total.map((ms, i) => ms - gcInChange[i]))));
  for (const [kind, ms] of Object.entries(byKind)) if (ms.length > 0) console.log(show(`  of which ${kind} (${ms.length})`, figures(ms)));
  console.log(`after: ${view?.endpoints.length ?? 0} listed, ${eligible} eligible, ${drained} removed hooks, ${desired.snapshot().get('meshlite-dsts-v4')?.size ?? 0} destinations, ${restored} set updates`);
  balancers.close();
}

console.log(`slice-change-cost: node ${process.version}, ${ENDPOINTS} endpoints, ${PER_SLICE} per slice, seed ${SEED}${EXPLICIT ? ', explicit mode (no interception)' : ''}`);
for (const policy of ['p2c-ewma', 'round-robin'] as const) await run(policy);
