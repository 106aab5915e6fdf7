// One second of the dashboard, per service: what the balancers hold now and what the metrics counted since the last
// reading — rate, statuses, latency quantiles from the histogram's difference, and each endpoint's share of the
// requests against the even share, with the spread (largest share ÷ smallest) that says whether balancing works.

import type { EndpointView, ServiceBalancerView } from '../balancer/service-balancer.ts';
import { REQUEST_DURATION_BUCKETS, type ServiceReading, serviceLabels } from '../telemetry/metrics.ts';

/**
 * An endpoint and a service as their balancer describes them (ServiceBalancer.describe()), what a frame reads of them,
 * with what the relay knows of the endpoint's connections: whether a connect failure keeps it in backoff.
 */
export type BalancedEndpoint = Pick<EndpointView, 'address' | 'ready' | 'serving' | 'terminating' | 'eligible' | 'ejected' | 'inFlight' | 'latencyMs'> & { backingOff: boolean };
export type BalancedService = Pick<ServiceBalancerView, 'key' | 'balancer'> & { endpoints: BalancedEndpoint[] };

/**
 * `ready`: picked from. `backing off`: in the picker, but its last connect failed and the relay waits before the next
 * attempt, picking others meanwhile. `ejected`: out of the picker after failing request after request, until its
 * probation ends (balancer/outlier-ejection.ts). `draining`: terminating but still serving, finishing what it has, given nothing
 * new. `terminating`: terminating and no longer serving. `not ready`: neither ready nor terminating.
 */
export const ENDPOINT_DISPLAY_STATES = ['ready', 'backing off', 'ejected', 'draining', 'terminating', 'not ready'] as const;
export type EndpointDisplayState = (typeof ENDPOINT_DISPLAY_STATES)[number];

export interface EndpointFrame {
  address: string;
  state: EndpointDisplayState;
  /** Requests it finished in the interval. */
  requests: number;
  /** Its part of the service's requests in the interval, 0..1; null when the service had none. */
  share: number | null;
  inFlight: number;
  latencyMs: number;
}

export interface ServiceFrame {
  key: string;
  namespace: string;
  name: string;
  port: string;
  balancer: string;
  requestsPerSecond: number;
  /** Requests in the interval by gRPC status code (only codes seen). */
  byStatus: Record<string, number>;
  /** OK ÷ all, in the interval; null without requests. */
  successRate: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  endpointsByState: Record<EndpointDisplayState, number>;
  /** 1 ÷ the number of ready endpoints: the share each would have if balancing were even; null with none. */
  evenShare: number | null;
  /**
   * Largest share ÷ smallest among ready endpoints, in the interval; null below two ready endpoints or without
   * requests; Infinity is never sent: a ready endpoint that got nothing while others did makes `idleReady` > 0.
   */
  spread: number | null;
  idleReady: number;
  endpoints: EndpointFrame[];
}

export function endpointDisplayState(endpoint: BalancedEndpoint): EndpointDisplayState {
  if (endpoint.eligible) return endpoint.backingOff ? 'backing off' : 'ready';
  if (endpoint.ejected) return 'ejected';
  if (endpoint.terminating) return endpoint.serving ? 'draining' : 'terminating';
  return 'not ready';
}

/**
 * The q-quantile (0..1) of the observations a histogram's bucket differences hold, interpolated linearly inside
 * its bucket, as Prometheus' histogram_quantile does; in milliseconds. Null without observations; the last bound when
 * the quantile falls in the +Inf bucket.
 */
export function quantileMs(bounds: readonly number[], counts: readonly number[], total: number, q: number): number | null {
  if (total <= 0) return null;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < bounds.length; i++) {
    const inBucket = counts[i] ?? 0;
    if (below + inBucket >= rank && inBucket > 0) {
      const lower = i === 0 ? 0 : bounds[i - 1];
      return (lower + (bounds[i] - lower) * ((rank - below) / inBucket)) * 1000;
    }
    below += inBucket;
  }
  return bounds[bounds.length - 1] * 1000;
}

const difference = (now: readonly number[], before: readonly number[] | undefined): number[] => now.map((value, i) => value - (before?.[i] ?? 0));
const sum = (values: readonly number[]): number => values.reduce((total, value) => total + value, 0);

/** The frame of each balanced service from two readings `intervalS` apart (`previous` null: since the start). */
export function serviceFrames(previous: readonly ServiceReading[] | null, current: readonly ServiceReading[], services: readonly BalancedService[], intervalS: number): ServiceFrame[] {
  const before = new Map((previous ?? []).map((reading) => [reading.key, reading]));
  const now = new Map(current.map((reading) => [reading.key, reading]));
  return services.map((service) => {
    const reading = now.get(service.key);
    const last = before.get(service.key);
    const lastByEndpoint = new Map((last?.endpoints ?? []).map((endpoint) => [endpoint.address, endpoint.byStatus]));
    const byEndpoint = new Map((reading?.endpoints ?? []).map((endpoint) => [endpoint.address, difference(endpoint.byStatus, lastByEndpoint.get(endpoint.address))]));
    const byStatus: Record<string, number> = {};
    let total = 0;
    for (const counts of byEndpoint.values()) {
      counts.forEach((count, code) => {
        if (count <= 0) return;
        byStatus[String(code)] = (byStatus[String(code)] ?? 0) + count;
        total += count;
      });
    }
    const buckets = difference(reading?.durationBuckets ?? [], last?.durationBuckets);
    const observed = (reading?.durationCount ?? 0) - (last?.durationCount ?? 0);
    const endpoints: EndpointFrame[] = service.endpoints.map((endpoint) => {
      const requests = sum(byEndpoint.get(endpoint.address) ?? []);
      return {
        address: endpoint.address,
        state: endpointDisplayState(endpoint),
        requests,
        share: total > 0 ? requests / total : null,
        inFlight: endpoint.inFlight,
        latencyMs: endpoint.latencyMs,
      };
    });
    const ready = endpoints.filter((endpoint) => endpoint.state === 'ready');
    const endpointsByState = Object.fromEntries(ENDPOINT_DISPLAY_STATES.map((state) => [state, 0])) as Record<EndpointDisplayState, number>;
    for (const endpoint of endpoints) endpointsByState[endpoint.state]++;
    const readyShares = ready.map((endpoint) => endpoint.share ?? 0);
    const idleReady = total > 0 ? readyShares.filter((share) => share === 0).length : 0;
    const busy = readyShares.filter((share) => share > 0);
    const labels = serviceLabels(service.key);
    return {
      key: service.key,
      namespace: labels.dst_namespace,
      name: labels.dst_service,
      port: labels.dst_port,
      balancer: service.balancer,
      requestsPerSecond: intervalS > 0 ? total / intervalS : 0,
      byStatus,
      successRate: total > 0 ? (byStatus['0'] ?? 0) / total : null,
      p50Ms: quantileMs(REQUEST_DURATION_BUCKETS, buckets, observed, 0.5),
      p99Ms: quantileMs(REQUEST_DURATION_BUCKETS, buckets, observed, 0.99),
      endpointsByState,
      evenShare: ready.length > 0 ? 1 / ready.length : null,
      spread: ready.length >= 2 && busy.length >= 2 && idleReady === 0 ? Math.max(...busy) / Math.min(...busy) : null,
      idleReady,
      endpoints,
    };
  });
}

/** A pod this node's agent intercepts, with every IP it is enrolled under. */
export interface InterceptedPod {
  namespace: string;
  name: string;
  ips: string[];
}

/** The enrolled IPs (IP → pod) as one entry per pod, sorted by namespace and name. */
export function interceptedPods(enrolled: ReadonlyMap<string, { namespace: string; name: string }>): InterceptedPod[] {
  const pods = new Map<string, InterceptedPod>();
  for (const [ip, pod] of enrolled) {
    const key = `${pod.namespace}/${pod.name}`;
    const entry = pods.get(key) ?? { namespace: pod.namespace, name: pod.name, ips: [] };
    entry.ips.push(ip);
    pods.set(key, entry);
  }
  return [...pods.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, pod]) => pod);
}
