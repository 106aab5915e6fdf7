// One data plane: balancers over a registry → relay → proxy listener, with its limits and telemetry. The main thread
// builds one; each worker thread (data-plane-worker.ts) builds its own over its mirror of the registry.

import { BalancerSet } from './balancer/balancer-set.ts';
import { DEFAULT_OUTLIER_POLICY } from './balancer/outlier-ejection.ts';
import { type ClientLimitsWiring, wireClientLimits } from './client-limits-wiring.ts';
import type { Config } from './config.ts';
import { SourceRefusalLog } from './enrollment/source-policy.ts';
import { AuthorityParser } from './proxy/authority.ts';
import { BalancerRoutes } from './proxy/balancer-routes.ts';
import { ProxyListener } from './proxy/listener.ts';
import { isOriginalDestinationAvailable, originalDestinationOf } from './proxy/original-destination.ts';
import { Relay } from './proxy/relay.ts';
import { RelayTelemetry } from './proxy/relay-telemetry.ts';
import type { EndpointRegistry } from './registry/endpoint-registry.ts';
import type { Logger } from './telemetry/logger.ts';
import type { AgentMetrics } from './telemetry/metrics.ts';
import { backgroundClock, realClock } from './vocabulary/clock.ts';

const monotonicMs = (): number => realClock.now();

export interface DataPlaneDeps {
  config: Config;
  registry: EndpointRegistry;
  metrics: AgentMetrics;
  logger: Logger;
  /** Transparent mode: which sources are served (enrolledOrLoopback); undefined: every source (explicit mode). */
  sourceAllowed: ((ip: string) => boolean) | undefined;
  /** A client connection closed: a drain may be over. */
  onConnectionClosed(): void;
  /** A client connection was accepted (and its source allowed): the per-thread count of --workers. */
  onConnectionOpened?(): void;
}

export interface DataPlane {
  balancers: BalancerSet;
  routes: BalancerRoutes;
  relay: Relay;
  listener: ProxyListener;
  clientLimits: ClientLimitsWiring;
}

export function createDataPlane(deps: DataPlaneDeps): DataPlane {
  const { config, registry, metrics, logger } = deps;
  // The relay is created after the balancers, which call back into it when an endpoint leaves.
  let relay: Relay | null = null;
  const balancerLog = logger.child({ component: 'balancer' });
  const balancers = new BalancerSet(registry, {
    defaultBalancer: config.balancer,
    hooks: {
      onEndpointRemoved: (load) => relay?.drainEndpoint(load.address),
      onEndpointEjected: (load, key, forMs, failures) => {
        metrics.countError('ML_ENDPOINT_EJECTED');
        balancerLog.warn({ code: 'ML_ENDPOINT_EJECTED', service: key, endpoint: load.address, failures, forMs }, 'endpoint ejected: it failed request after request');
      },
    },
    // Ejections end by themselves; their timers never keep a stopping agent alive.
    outliers: { policy: DEFAULT_OUTLIER_POLICY, clock: backgroundClock },
  });
  const routes = new BalancerRoutes(balancers);
  metrics.followEndpoints(() => balancers.describe());
  relay = new Relay({
    routes,
    authority: new AuthorityParser(config.clusterDomain),
    clock: realClock,
    random: Math.random,
    connectTimeoutMs: config.connectTimeoutMs,
    maxConnectionsPerEndpoint: config.upstreamMaxConnections,
    streamHeadroom: 16,
    observer: new RelayTelemetry(metrics, logger.child({ component: 'relay' }), monotonicMs),
  });

  const proxyLog = logger.child({ component: 'listener' });
  const refusals = new SourceRefusalLog({ logger: proxyLog, countError: (code) => metrics.countError(code), now: monotonicMs, intervalMs: 60_000 });
  const clientLimits = wireClientLimits(config, proxyLog, (code) => metrics.countError(code));
  relay.downstreamHandler.limits = clientLimits.downstream;
  const listener = new ProxyListener({
    relay,
    routes,
    limits: clientLimits.listener,
    // Connections redirected by interception carry their original destination; direct ones (explicit mode) do not.
    originalDestination: isOriginalDestinationAvailable() ? originalDestinationOf : () => null,
    sniffTimeoutMs: config.sniffTimeoutMs,
    connectTimeoutMs: config.connectTimeoutMs,
    // Transparent mode serves only this node's opted-in pods (and loopback, which no pod can be); explicit mode all.
    sourceAllowed: deps.sourceAllowed,
    events: {
      onPassthroughError: (error, destination) => {
        metrics.countError('ML_PASSTHROUGH_FAILED');
        proxyLog.warn({ code: 'ML_PASSTHROUGH_FAILED', destination, err: error }, 'passthrough failed');
      },
      onOriginalDestinationError: (error) => {
        metrics.countError('ML_ORIGINAL_DST_FAILED');
        proxyLog.warn({ code: 'ML_ORIGINAL_DST_FAILED', err: error }, 'original destination unreadable');
      },
      onSourceRefused: (source) => refusals.refused(source),
      onConnectionLimit: (open) => clientLimits.onConnectionLimit(open),
      onConnectionOpened: () => {
        metrics.downstreamOpened();
        deps.onConnectionOpened?.();
      },
      onConnectionClosed: () => {
        metrics.downstreamClosed();
        deps.onConnectionClosed();
      },
    },
  });
  return { balancers, routes, relay, listener, clientLimits };
}
