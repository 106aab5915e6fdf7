// Wiring of transparent mode: the interception rules follow the registry and the opted-in pods; the CNI socket enrolls.

import type { Config } from './config.ts';
import { CniEnrollment, kubePodLookup } from './enrollment/enrollment.ts';
import { EnrollmentServer } from './enrollment/enrollment-server.ts';
import type { CniIpClaims } from './enrollment/cni-ip-claims.ts';
import type { KubeApi } from './discovery/kube-api.ts';
import type { OptInIndex } from './discovery/opt-in-index.ts';
import type { ErrorCode } from './vocabulary/errors.ts';
import { runCommand } from './intercept/command-runner.ts';
import { followDestinations } from './intercept/follow-destinations.ts';
import { InterceptMetrics } from './intercept/intercept-metrics.ts';
import { type InterceptionView, InterceptionManager } from './intercept/interception-manager.ts';
import type { EndpointRegistry } from './registry/endpoint-registry.ts';
import type { Logger } from './telemetry/logger.ts';
import type { AgentMetrics } from './telemetry/metrics.ts';

export interface TransparentModeDeps {
  config: Config;
  /** The port the proxy listener got (the DNAT target's port). */
  proxyPort: number;
  registry: EndpointRegistry;
  index: OptInIndex;
  ipClaims: CniIpClaims;
  /** Null with static discovery: the file's pods are all there is. */
  kubeApi: KubeApi | null;
  logger: Logger;
  metrics: AgentMetrics;
  timers: { now(): number; setTimeout(callback: () => void, ms: number): unknown; clearTimeout(handle: unknown): void };
}

export interface TransparentMode {
  /** Fail open: this agent no longer keeps its pods intercepted (it drains); another agent may. */
  stopRefreshing(): void;
  /** Leaves every rule and set in place: an agent restart or upgrade must not open a window without interception. */
  stop(): Promise<void>;
  /** The interception state, set sizes and last pass, for the dashboard. */
  describe(): InterceptionView;
}

/** Bound on a CNI ADD's wait for the rules: below the plugin's own 5 s, so that it gets an answer with a code. */
const CNI_APPLY_TIMEOUT_MS = 3000;
const CNI_LOOKUP_TIMEOUT_MS = 2000;

/** Installs the rules and sets, keeps them following discovery, then opens the CNI socket. */
export async function startTransparentMode(deps: TransparentModeDeps): Promise<TransparentMode> {
  const { config, registry, index, logger, metrics } = deps;
  const countError = (code: ErrorCode): void => metrics.countError(code);
  const manager = new InterceptionManager({
    runner: runCommand,
    logger,
    metrics: new InterceptMetrics(metrics.registry, countError),
    timers: deps.timers,
    nodeIPs: config.nodeIPs,
    proxyPort: deps.proxyPort,
    backend: config.iptablesBackend,
    reconcileIntervalMs: config.reconcileIntervalMs,
    failMode: config.failMode,
    random: Math.random,
  });
  followDestinations(registry, manager);
  // Pods synchronously: a CNI ADD waits on whenApplied() right after enrolling, and that wait must cover its IPs.
  index.subscribe(() => manager.setPods(index.enrolled.keys()));
  await manager.start();

  let server: EnrollmentServer | null = null;
  if (config.cniSocket !== null) {
    const enrollment = new CniEnrollment({
      ipClaims: deps.ipClaims,
      index,
      lookup: deps.kubeApi === null ? null : kubePodLookup(deps.kubeApi),
      interception: manager,
      timers: deps.timers,
      applyTimeoutMs: CNI_APPLY_TIMEOUT_MS,
      lookupTimeoutMs: CNI_LOOKUP_TIMEOUT_MS,
      logger,
      countError,
    });
    server = new EnrollmentServer({ path: config.cniSocket, enrollment, logger, countError, probeTimeoutMs: 1000 });
    await server.start();
  }
  return {
    stopRefreshing: () => manager.stopRefreshing(),
    describe: () => manager.describe(),
    stop: async () => {
      await server?.stop();
      await manager.stop();
    },
  };
}
