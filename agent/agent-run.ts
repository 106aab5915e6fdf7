// Wiring only: discovery → registry → balancers → relay → listener and admin, then signals and drain. main.ts loads
// this module once the settings are read and the probe thread runs.

import { AgentReadiness } from './admin/agent-readiness.ts';
import { startHealthEndpoints } from './admin/health-endpoints.ts';
import type { ServiceBalancerView } from './balancer/service-balancer.ts';
import { ConfigError, metricsAddresses, type Config } from './config.ts';
import type { ProbeThread } from './admin/probe-thread.ts';
import type { InterceptionView } from './intercept/interception-manager.ts';
import { ensureListenerMigration, type ListenerMigration, nodeSysctlAccess } from './drain/listener-migration.ts';
import { AgentShutdown } from './drain/agent-shutdown.ts';
import { CniIpClaims } from './enrollment/cni-ip-claims.ts';
import { enrolledOrLoopback } from './enrollment/source-policy.ts';
import { OptInIndex } from './discovery/opt-in-index.ts';
import { startKubernetesDiscovery, startStaticDiscovery } from './discovery-mode.ts';
import type { ChangeToPicker } from './discovery/kubernetes-source.ts';
import { runCommand } from './intercept/command-runner.ts';
import { uninstall } from './intercept/uninstall.ts';
import { startTransparentMode } from './transparent-mode.ts';
import { MeshliteError } from './vocabulary/errors.ts';
import { listeningOrFail } from './vocabulary/listen-failure.ts';
import { formatHostPort } from './vocabulary/host-port.ts';
import { nodeIPsToListenOn } from './proxy/listener.ts';
import { EndpointRegistry } from './registry/endpoint-registry.ts';
import { createLogger, type Logger } from './telemetry/logger.ts';
import { RecentLines } from './telemetry/recent-lines.ts';
import { interceptedPods } from './admin/dashboard-frame.ts';
import { createMetrics, type ServiceReading } from './telemetry/metrics.ts';
import { followRegistry } from './telemetry/registry-series.ts';
import { backgroundClock, realClock } from './vocabulary/clock.ts';
import { availableParallelism } from 'node:os';
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { DashboardSampler } from './admin/dashboard-sampler.ts';
import { readBuildInfo } from './vocabulary/build-info.ts';
import { createDataPlane } from './data-plane.ts';
import { limitShare } from './workers/limit-share.ts';
import { WorkerFleet } from './workers/worker-fleet.ts';
import { autoWorkerCount, cgroupCpuMax } from './workers/worker-count.ts';

/** --workers as a number: `auto` is what the container's CPU limit allows (workers/worker-count.ts). */
function workerThreads(config: Config): number {
  if (config.workers !== 'auto') return config.workers;
  const read = (path: string): string | null => {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return null;
    }
  };
  return autoWorkerCount(cgroupCpuMax(read), availableParallelism());
}

async function run(config: Config, logger: Logger, probes: ProbeThread | null, recent: RecentLines): Promise<void> {
  // The wiring's own lines (start, ready, stop) as component "agent"; each part logs through its own child.
  const log = logger.child({ component: 'agent' });
  const build = readBuildInfo();
  const metrics = createMetrics({ processMetrics: true, buildInfo: build, endpointLabel: config.metricsEndpointLabel });
  const registry = new EndpointRegistry();
  // This node's opted-in pods (IP → pod): interception's source set and the listener's source check. Discovery
  // feeds it through the CNI IP claims, which hold the IPs the CNI plugin reported until the pod's status has them.
  const index = new OptInIndex(config.nodeName);
  const optIn = new CniIpClaims(index);
  // Set once the shutdown exists: a closed client connection may be the last one a drain waits for.
  let closedConnections = (): void => {};
  // --workers: the main thread serves the proxy port as worker 0; with more, each extra thread runs a data plane of
  // its own, fed from this registry (docs/architecture.md, More than one core). 1: no thread is started.
  const threads = workerThreads(config);
  let mainAccepted = 0;
  const { balancers, relay, listener, clientLimits } = createDataPlane({
    config: limitShare(config, threads),
    registry,
    metrics,
    logger,
    sourceAllowed: config.intercept ? enrolledOrLoopback(index) : undefined,
    onConnectionClosed: () => closedConnections(),
    onConnectionOpened: threads > 1 ? () => mainAccepted++ : undefined,
  });
  // Until the agent serves, a failed thread ends the start (exit 1); once it serves, the shutdown drains the rest.
  let workerFailed = (reason: string): void => {
    log.fatal({ code: 'ML_WORKER_EXITED', err: reason }, 'meshlite failed to start: a worker thread failed');
    process.exit(1);
  };
  const fleet =
    threads > 1
      ? new WorkerFleet({
          threads: threads - 1,
          config: limitShare(config, threads),
          registry,
          optIn: index,
          mainListener: listener,
          mainMetrics: metrics,
          mainAccepted: () => mainAccepted,
          logger,
          countError: (code) => metrics.countError(code),
          onFailure: (reason) => workerFailed(reason),
          onOpenChanged: () => closedConnections(),
          recentLine: (line) => recent.write(line),
          workerEntry: new URL('./data-plane-worker.ts', import.meta.url),
        })
      : null;
  followRegistry(registry, metrics);
  // Health first: /healthz answers from the start (liveness must not restart an agent that waits for an API server
  // it cannot fix), /readyz says which phase the start is in. Both addresses are shared with SO_REUSEPORT, as the
  // proxy port is, so the agent an upgrade starts beside the old one binds them too; a start that fails here fails
  // before the agent joins the proxy port or takes the CNI socket.
  const readiness = new AgentReadiness();
  // Transparent mode starts later; until then (and in explicit mode) the dashboard shows no interception.
  let interception = (): InterceptionView | null => null;
  // Kubernetes discovery measures each endpoint change's trip to the picker once it runs.
  let changeToPicker = (): ChangeToPicker | null => null;
  probes?.follow(() => readiness.answer());
  readiness.onPhaseChange(() => probes?.refresh());
  if (probes !== null && config.probeSocket !== null) await listeningOrFail('probes', config.probeSocket, probes.listening);
  const endpoints = await startHealthEndpoints({
    admin: config.admin,
    metrics: metricsAddresses(config),
    logger,
    registry: fleet?.metrics ?? metrics.registry,
    readiness: () => readiness.answer(),
    // With --workers above 1, every thread's balancers and counts (as of each thread's latest view, 250 ms at most).
    debugEndpoints: () => ({ services: fleet?.services(balancers.describe()) ?? balancers.describe() }),
    dashboard: dashboardSampler({
      readings: () => fleet?.readings(metrics.readings()) ?? metrics.readings(),
      services: () => fleet?.services(balancers.describe()) ?? balancers.describe(),
      backingOff: (address) => relay.pools.inBackoff(address) || (fleet?.backingOff(address) ?? false),
      changeToPicker: () => changeToPicker(),
      index,
      recent,
      readiness: () => readiness.answer(),
      interception: () => interception(),
      version: build.version,
      node: config.nodeName,
    }),
  });
  const { adminUrl, metricsUrls } = endpoints;
  log.info({ admin: adminUrl, metrics: metricsUrls, probeSocket: config.probeSocket }, 'meshlite starting: health and metrics endpoints listening');
  // A signal before the agent serves (during a long API outage, say) has nothing to drain: exit at once, cleanly.
  const stopBeforeServing = (signal: string): void => {
    log.info({ signal, phase: readiness.phase }, 'meshlite stopped before it served');
    process.exit(0);
  };
  process.once('SIGTERM', stopBeforeServing);
  process.once('SIGINT', stopBeforeServing);

  // A node setting: changed only by an agent that manages the node's network (transparent mode, the DaemonSet's).
  if (config.intercept) {
    reportListenerMigration(await ensureListenerMigration(nodeSysctlAccess).catch((error: Error) => ({ state: 'off' as const, reason: error.message })), logger, metrics);
  }

  // The proxy listens only once discovery has a view (synced, or the last known one from the state file): with
  // reusePort, a new agent that listened earlier would take connections from the old one during an upgrade and
  // answer them with "unknown target".
  const reportStatus = (status: () => unknown): void => readiness.reportDiscovery(status);
  const discoveryDeps = { config, registry, optIn, index, metrics, logger, reportStatus };
  const discovery =
    config.discovery === 'kubernetes' ? await startKubernetesDiscovery(discoveryDeps) : await startStaticDiscovery(discoveryDeps);
  changeToPicker = () => discovery.latestChangeToPicker();
  readiness.enter('listening');

  clientLimits.startIdleSweep(() => listener.connections);
  const { host, port } = config.listen;
  const proxyAddress = await listeningOrFail('proxy', formatHostPort(host, port), listener.listen(host, port));
  // Interception redirects to each node IP at this port (IPv6 too on a dual-stack node): serve those --listen misses.
  const proxyAddresses = [{ host, port: proxyAddress.port }];
  for (const host of config.intercept ? nodeIPsToListenOn(config.listen.host, config.nodeIPs) : []) {
    const also = { host, port: proxyAddress.port };
    await listeningOrFail('proxy', formatHostPort(also.host, also.port), listener.listen(also.host, also.port));
    proxyAddresses.push(also);
  }
  // The other threads bind the port the main thread got (--listen may say port 0); the agent is ready once all do.
  if (fleet !== null) await listeningOrFail('proxy', formatHostPort(host, proxyAddress.port), fleet.listen(proxyAddresses));
  if (config.intercept) readiness.enter('interception');
  const transparent = config.intercept
    ? await startTransparentMode({
        config,
        proxyPort: proxyAddress.port,
        registry,
        index,
        ipClaims: optIn,
        kubeApi: discovery.kubeApi,
        logger,
        metrics,
        timers: realClock,
      })
    : null;

  if (transparent !== null) interception = () => transparent.describe();
  readiness.enter('serving');
  log.info(
    {
      listen: formatHostPort(proxyAddress.address, proxyAddress.port),
      listening: listener.state.state === 'listening' ? listener.state.addresses : [],
      admin: adminUrl,
      metrics: metricsUrls,
      services: balancers.size,
      balancer: config.balancer,
      discovery: config.discovery,
      intercept: config.intercept,
      workers: threads,
      version: build.version,
      node: config.nodeName,
    },
    'meshlite ready',
  );

  const shutdown = new AgentShutdown({
    listener: fleet ?? listener,
    markNotReady: () => {
      readiness.enter('draining');
      endpoints.drain();
      // The listener stops accepting now: if no new agent serves, fail open lets the pods reach their Services.
      transparent?.stopRefreshing();
    },
    stopRest: async () => {
      await fleet?.stop();
      await transparent?.stop();
      discovery.stop();
      relay.close();
      balancers.close();
      await endpoints.close();
      await probes?.close();
    },
    clock: realClock,
    drainTimeoutMs: config.drainTimeoutMs,
    logger: logger.child({ component: 'drain' }),
    countError: (code) => metrics.countError(code),
  });
  closedConnections = () => shutdown.connectionClosed();
  // A failed worker thread: serving on at reduced capacity would hide it, so the agent drains what the other threads
  // hold and exits 1, and the kubelet restarts it (fail open covers the node's pods meanwhile).
  let failed = false;
  workerFailed = () => {
    failed = true;
    if (!shutdown.drain.started) void shutdown.run('worker thread failed').then(() => process.exit(1));
  };
  const onSignal = (signal: string): void => {
    if (shutdown.drain.started) {
      // A second signal: stop waiting.
      shutdown.force(signal);
      process.exit(1);
    }
    // Stopped: the process ends now, whatever handle a library may still hold open.
    void shutdown.run(signal).then(() => process.exit(failed ? 1 : 0));
  };
  process.off('SIGTERM', stopBeforeServing);
  process.off('SIGINT', stopBeforeServing);
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
}

/** The dashboard's frames: the metrics, the balancers, and the agent's own state (its event loop's delay over each second). */
function dashboardSampler(sources: {
  readings: () => ServiceReading[];
  services: () => ServiceBalancerView[];
  backingOff: (address: string) => boolean;
  changeToPicker: () => ChangeToPicker | null;
  index: OptInIndex;
  recent: RecentLines;
  readiness: () => unknown;
  interception: () => InterceptionView | null;
  version: string;
  node: string;
}): DashboardSampler {
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  return new DashboardSampler({
    // Its timer never keeps the agent alive: the dashboard ends with the admin server.
    clock: backgroundClock,
    wallClockMs: Date.now,
    readings: () => sources.readings(),
    services: () => sources.services().map((service) => ({ ...service, endpoints: service.endpoints.map((endpoint) => ({ ...endpoint, backingOff: sources.backingOff(endpoint.address) })) })),
    pods: () => interceptedPods(sources.index.enrolled),
    events: () => sources.recent.events(),
    agent: () => {
      const delayMs = loopDelay.count > 0 ? loopDelay.percentile(99) / 1e6 : 0;
      loopDelay.reset();
      const change = sources.changeToPicker();
      return {
        readiness: sources.readiness(),
        version: sources.version,
        node: sources.node,
        rssBytes: process.memoryUsage.rss(),
        eventLoopDelayMs: delayMs,
        interception: sources.interception(),
        changeToPicker: change === null ? null : { ms: change.seconds * 1000, agoMs: Math.max(0, Date.now() - change.atMs) },
      };
    },
  });
}

/** One line on how an upgrade's connections will be handed over; a warning with its code when they cannot be. */
function reportListenerMigration(migration: ListenerMigration, logger: Logger, metrics: ReturnType<typeof createMetrics>): void {
  const log = logger.child({ component: 'listener-migration' });
  if (migration.state === 'off') {
    metrics.countError('ML_LISTENER_MIGRATION_OFF');
    log.warn({ code: 'ML_LISTENER_MIGRATION_OFF', err: migration.reason }, 'net.ipv4.tcp_migrate_req is 0 and cannot be set here: an upgrade may reset connections queued on the old agent as it closes its listeners');
  } else if (migration.state === 'enabled') {
    log.info('net.ipv4.tcp_migrate_req set to 1: connections queued on a closing agent go to the next');
  } else if (migration.state === 'unsupported') {
    log.info('net.ipv4.tcp_migrate_req does not exist on this kernel (before 5.14): an upgrade may reset connections queued on the old agent as it closes');
  }
}

/** `meshlite uninstall`: every chain, rule and set the agent created, and nothing else; exit 1 if one stayed. */
export async function uninstallRules(config: Config): Promise<number> {
  const logger = createLogger(config.logLevel);
  try {
    const report = await uninstall({ runner: runCommand, logger, backend: config.iptablesBackend });
    for (const removed of report.removed) process.stdout.write(`removed ${removed}\n`);
    for (const unreadable of report.unreadable) process.stdout.write(`could not read ${unreadable}\n`);
    if (report.removed.length === 0) process.stdout.write('nothing of meshlite was installed\n');
    return 0;
  } catch (error) {
    const code = error instanceof MeshliteError ? error.code : 'ML_INTERNAL';
    logger.fatal({ code, err: error }, 'uninstall failed');
    process.stderr.write(`meshlite: uninstall failed: ${(error as Error).message}\n`);
    return 1;
  }
}

/** `meshlite check`: the preflight report (agent/preflight/), loaded only when asked for; exit 1 on any problem. */
export async function checkNode(settings: Config | ConfigError): Promise<number> {
  const { runCheckCommand } = await import('./preflight/check-command.ts');
  return runCheckCommand(settings, { runner: runCommand, env: process.env, pid: process.pid, write: (text) => process.stdout.write(text) });
}

/** Runs the agent until it has drained; a start-up failure ends the process with its error code. */
export async function startAgent(config: Config, probes: ProbeThread | null): Promise<void> {
  const recent = new RecentLines(50);
  const logger = createLogger(config.logLevel, undefined, recent);
  try {
    await run(config, logger, probes, recent);
  } catch (error) {
    // Every start-up failure we foresee (settings, static file, kubeconfig, a port in use) is a MeshliteError.
    const log = logger.child({ component: 'agent' });
    if (error instanceof MeshliteError) {
      log.fatal({ code: error.code }, error.message);
      process.stderr.write(`meshlite: ${error.message}\n`);
      process.exit(error instanceof ConfigError ? 2 : 1);
    }
    log.fatal({ code: 'ML_INTERNAL', err: error }, 'meshlite failed to start');
    process.exit(1);
  }
}
