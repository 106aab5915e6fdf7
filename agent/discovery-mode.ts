// Wiring of discovery: the static file or the Kubernetes API feeding the registry and the opted-in pods, and what main
// needs of either once it runs.

import type { Config } from './config.ts';
import type { KubeApi } from './discovery/kube-api.ts';
import type { ChangeToPicker } from './discovery/kubernetes-source.ts';
import { LastKnownView } from './discovery/last-known-view.ts';
import { type OptInIndex, staticPodRecords } from './discovery/opt-in-index.ts';
import { ServiceIndex } from './discovery/service-index.ts';
import { StateFile, nodeStateFileAccess } from './discovery/state-file.ts';
import { SyncGate } from './discovery/sync-gate.ts';
import type { CniIpClaims } from './enrollment/cni-ip-claims.ts';
import type { EndpointRegistry } from './registry/endpoint-registry.ts';
import { DiscoveryMetrics } from './telemetry/discovery-metrics.ts';
import type { Logger } from './telemetry/logger.ts';
import type { AgentMetrics } from './telemetry/metrics.ts';
import { realClock } from './vocabulary/clock.ts';
import type { ErrorCode } from './vocabulary/errors.ts';

/** Retries against an API server in trouble: quick at first, then no more than one attempt per informer every 10 s. */
const KUBE_BACKOFF = { initialMs: 250, maxMs: 10_000 };
/** A LIST of a large cluster's EndpointSlices takes seconds; a minute without an answer is an outage. */
const KUBE_LIST_TIMEOUT_MS = 60_000;
/** API servers send a bookmark about once a minute; a watch silent for longer than this is reopened. */
const KUBE_WATCH_IDLE_TIMEOUT_MS = 90_000;

/** What main needs of either discovery source once it runs. */
export interface RunningDiscovery {
  status(): unknown;
  stop(): void;
  /** Null with static discovery. */
  kubeApi: KubeApi | null;
  /** The last endpoint change's trip to the picker; always null with static discovery (no trigger times). */
  latestChangeToPicker(): ChangeToPicker | null;
}

/** What either source feeds and reports to. */
export interface DiscoveryDeps {
  config: Config;
  registry: EndpointRegistry;
  /** This node's pods, through the CNI's IP claims. */
  optIn: CniIpClaims;
  /** Who of them is enrolled (what the state file keeps). */
  index: OptInIndex;
  metrics: AgentMetrics;
  logger: Logger;
  /** Given, before the first snapshot is awaited, what the source reports of itself (for /readyz). */
  reportStatus: (status: () => unknown) => void;
}

export async function startStaticDiscovery(deps: DiscoveryDeps): Promise<RunningDiscovery> {
  const { config, registry, optIn, metrics, logger } = deps;
  // Loaded here, not above: its YAML parser costs an agent on Kubernetes discovery about 13 MiB resident.
  const { StaticSource, nodeFileAccess } = await import('./discovery/static-source.ts');
  const source = new StaticSource({
    path: config.staticFile,
    files: nodeFileAccess,
    timers: realClock,
    logger,
    metrics,
    onSnapshot: (snapshot) => {
      registry.replaceAll(snapshot.services);
      optIn.replacePods(staticPodRecords(snapshot.pods, optIn.nodeName));
    },
  });
  let loaded = false;
  deps.reportStatus(() => ({ state: loaded ? 'synced' : 'loading' }));
  await source.load();
  loaded = true;
  return { status: () => ({ state: 'synced' }), stop: () => source.stop(), kubeApi: null, latestChangeToPicker: () => null };
}

export async function startKubernetesDiscovery(deps: DiscoveryDeps): Promise<RunningDiscovery> {
  const { config, registry, optIn, metrics, logger } = deps;
  const startedAt = realClock.now();
  // Loaded here, not above: an agent on static discovery has no reason to pay for the client.
  const { createKubeApi, loadKubeConfig } = await import('./discovery/kube-api.ts');
  const { KubernetesSource } = await import('./discovery/kubernetes-source.ts');
  const api = createKubeApi(loadKubeConfig(config.kubeconfig));
  // With a state file, the informers' first view is held until it is complete (it may replace the file's).
  const gate = config.stateFile === null ? null : new SyncGate({ registry, optIn, logger });
  const source = new KubernetesSource({
    api,
    nodeName: config.nodeName,
    services: new ServiceIndex(gate ?? registry),
    optIn: gate ?? optIn,
    metrics: Object.assign(new DiscoveryMetrics(metrics.registry), { countError: (code: ErrorCode) => metrics.countError(code) }),
    logger,
    timers: realClock,
    wallClockMs: Date.now,
    random: Math.random,
    backoff: KUBE_BACKOFF,
    listTimeoutMs: KUBE_LIST_TIMEOUT_MS,
    watchIdleTimeoutMs: KUBE_WATCH_IDLE_TIMEOUT_MS,
  });
  if (config.stateFile === null || gate === null) {
    deps.reportStatus(() => source.status());
    await source.start();
    return { status: () => source.status(), stop: () => source.stop(), kubeApi: api, latestChangeToPicker: () => source.latestChangeToPicker };
  }
  const lastKnown = new LastKnownView({
    stateFile: new StateFile({ path: config.stateFile, files: nodeStateFileAccess, nodeName: config.nodeName, tempSuffix: String(process.pid) }),
    gate,
    registry,
    optIn,
    index: deps.index,
    nodeName: config.nodeName,
    timers: realClock,
    wallClockMs: Date.now,
    logger,
    countError: (code) => metrics.countError(code),
  });
  const status = (): unknown => lastKnown.status(source.status());
  deps.reportStatus(status);
  const synced = source.start();
  await lastKnown.start({ startedAt, synced, failing: source.whenFailing() });
  return {
    status,
    stop: () => {
      lastKnown.stop();
      source.stop();
    },
    kubeApi: api,
    latestChangeToPicker: () => source.latestChangeToPicker,
  };
}
