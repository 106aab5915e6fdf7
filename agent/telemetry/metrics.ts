// The agent's Prometheus metrics in its own prom-client Registry: plain-number accumulators on the hot path, read at scrape.

import { collectDefaultMetrics, Counter, Gauge, type Metric, Registry } from 'prom-client';
import { ERROR_CODES, type ErrorCode } from '../vocabulary/errors.ts';
import type { EndpointCounts, EndpointState } from '../registry/endpoint-counts.ts';
import type { BuildInfo } from '../vocabulary/build-info.ts';
import { parseServiceKey } from '../vocabulary/service-key.ts';

/**
 * Why accumulators: prom-client's `.labels(...)` handles still hash and validate the label set on every `inc()`,
 * a few hundred nanoseconds the relay would pay per request. A RequestMetrics handle is bound once per
 * (service, endpoint) and counts into typed arrays; prom-client copies the totals out when Prometheus scrapes.
 */

/** Seconds; from sub-millisecond (a relay hop on one node) to the long tail of slow RPCs. */
export const REQUEST_DURATION_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

/** The service label of requests whose target matched no service: one value, so unknown names stay unbounded no more. */
export const UNKNOWN_SERVICE = 'unknown';
/** The endpoint label of requests that ended before an endpoint was chosen (unknown target, no endpoint). */
export const NO_ENDPOINT = 'none';

/**
 * A service key (`namespace/name:port`) as three labels, so that queries can select a namespace or sum a Service's
 * ports; the service "unknown" (no service matched) has only a name. `dst_` (the destination), and `dst_endpoint` for
 * the endpoint: Prometheus' Kubernetes service discovery gives every scraped series `namespace`, `service`, `pod` and
 * `endpoint` labels of its own (the agent's), which would rename ours to `exported_*`.
 */
export interface ServiceLabels {
  dst_namespace: string;
  dst_service: string;
  dst_port: string;
}

export function serviceLabels(key: string): ServiceLabels {
  const parts = parseServiceKey(key);
  return parts === null ? { dst_namespace: '', dst_service: key, dst_port: '' } : { dst_namespace: parts.namespace, dst_service: parts.name, dst_port: String(parts.port) };
}

/** grpc_code takes the 17 values of the gRPC specification; anything else a backend sends is counted as UNKNOWN (2). */
const GRPC_CODE_COUNT = 17;
const GRPC_UNKNOWN = 2;

const ENDPOINT_STATES: readonly EndpointState[] = ['ready', 'terminating', 'not_ready'];

export type StaticReloadResult = 'success' | 'failure';

/** What the balancers say of each service's endpoints at scrape time (the shape of their describe()). */
export interface EndpointsView {
  key: string;
  endpoints: ReadonlyArray<{ address: string; inFlight: number }>;
}

/** Per-service latency buckets (non-cumulative counts; made cumulative at scrape). */
class DurationAccumulator {
  readonly buckets = new Float64Array(REQUEST_DURATION_BUCKETS.length);
  sum = 0;
  count = 0;

  /** A new accumulator holding what all of these observed (rendered at scrape; the originals go on counting). */
  static sum(accumulators: readonly DurationAccumulator[]): DurationAccumulator {
    const total = new DurationAccumulator();
    for (const each of accumulators) {
      total.sum += each.sum;
      total.count += each.count;
      for (let i = 0; i < total.buckets.length; i++) total.buckets[i] += each.buckets[i];
    }
    return total;
  }

  observe(seconds: number): void {
    this.sum += seconds;
    this.count++;
    const bounds = REQUEST_DURATION_BUCKETS;
    for (let i = 0; i < bounds.length; i++) {
      if (seconds <= bounds[i]) {
        this.buckets[i]++;
        return;
      }
    }
  }
}

/** Hot-path handle for one (service, endpoint): keep it on the endpoint's state and call record() per request. */
export class RequestMetrics {
  readonly service: string;
  readonly endpoint: string;
  /** Index: gRPC status code. */
  readonly countsByStatus = new Float64Array(GRPC_CODE_COUNT);
  private readonly duration: DurationAccumulator;
  /** Time to the endpoint's response headers, per endpoint: what a streaming RPC's total duration cannot say. */
  readonly responseStart = new DurationAccumulator();

  constructor(service: string, endpoint: string, duration: DurationAccumulator) {
    this.service = service;
    this.endpoint = endpoint;
    this.duration = duration;
  }

  record(grpcStatus: number, durationSeconds: number): void {
    this.count(grpcStatus);
    this.duration.observe(durationSeconds);
  }

  recordResponseStart(seconds: number): void {
    this.responseStart.observe(seconds);
  }

  /** A request the agent refused before relaying it: counted by status, and kept out of the latency histogram,
   *  where an instant refusal would read as a fast success. */
  count(grpcStatus: number): void {
    const index = grpcStatus >= 0 && grpcStatus < GRPC_CODE_COUNT ? grpcStatus | 0 : GRPC_UNKNOWN;
    this.countsByStatus[index]++;
  }
}

/** Why a request went to another endpoint unseen by its client (the relay's TransparentRetryReason). */
export type RetryReason = 'connect_failed' | 'refused_stream';
const RETRY_REASONS: readonly RetryReason[] = ['connect_failed', 'refused_stream'];

interface ServiceEntry {
  readonly labels: ServiceLabels;
  readonly retries: Record<RetryReason, number>;
  readonly duration: DurationAccumulator;
  readonly endpoints: Map<string, RequestMetrics>;
  endpointCounts: EndpointCounts | null;
}

/**
 * One service's totals since the agent started, copied out (the dashboard keeps the previous reading and shows the
 * difference): requests by gRPC status per endpoint, and the duration histogram's non-cumulative buckets.
 */
export interface ServiceReading {
  key: string;
  endpoints: Array<{ address: string; byStatus: number[] }>;
  durationBuckets: number[];
  durationCount: number;
}

/** What prom-client's registry reads from a metric when it renders the exposition. */
interface MetricValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

export class AgentMetrics {
  readonly registry = new Registry();
  private readonly services = new Map<string, ServiceEntry>();
  private readonly errorCounts = new Map<ErrorCode, number>(ERROR_CODES.map((code) => [code, 0]));
  private readonly upstreamByEndpoint = new Map<string, Map<string, number>>();
  private downstream = 0;
  private readonly staticReloads: Counter<'result'>;
  private endpointsView: () => readonly EndpointsView[] = () => [];

  private readonly endpointLabel: boolean;

  constructor(options: MetricsOptions = {}) {
    const registers = [this.registry];
    this.endpointLabel = options.endpointLabel ?? true;
    if (options.buildInfo !== undefined) {
      const info = new Gauge({
        name: 'meshlite_build_info',
        help: 'Always 1: the agent version and the Node.js running it, as labels.',
        labelNames: ['version', 'nodejs'],
        registers,
      });
      info.set({ version: options.buildInfo.version, nodejs: options.buildInfo.nodejs }, 1);
    }
    new Counter({
      name: 'meshlite_requests_total',
      help: 'Requests relayed (or answered by the agent), by service (namespace, name, port), endpoint and gRPC status code.',
      labelNames: this.endpointLabel ? ['dst_namespace', 'dst_service', 'dst_port', 'dst_endpoint', 'grpc_code'] : ['dst_namespace', 'dst_service', 'dst_port', 'grpc_code'],
      registers,
      collect: rebuiltFrom<Counter<'dst_namespace' | 'dst_service' | 'dst_port' | 'dst_endpoint' | 'grpc_code'>>((counter) => {
        for (const entry of this.services.values()) {
          for (const [endpoint, counts] of this.countsPerEndpoint(entry)) {
            for (let code = 0; code < counts.length; code++) {
              if (counts[code] === 0) continue;
              const grpc_code = String(code);
              counter.inc(endpoint === null ? { ...entry.labels, grpc_code } : { ...entry.labels, dst_endpoint: endpoint, grpc_code }, counts[code]);
            }
          }
        }
      }),
    });
    this.registry.registerMetric(this.durationHistogram() as unknown as Metric);
    this.registry.registerMetric(this.responseStartHistogram() as unknown as Metric);
    new Gauge({
      name: 'meshlite_upstream_connections',
      help: 'Upstream HTTP/2 connections, by endpoint and connection state.',
      labelNames: this.endpointLabel ? ['dst_endpoint', 'state'] : ['state'],
      registers,
      collect: rebuiltFrom<Gauge<'dst_endpoint' | 'state'>>((gauge) => {
        for (const [endpoint, states] of this.upstreamByEndpoint) {
          for (const [state, value] of states) {
            if (this.endpointLabel) gauge.set({ dst_endpoint: endpoint, state }, value);
            else gauge.inc({ state }, value);
          }
        }
      }),
    });
    new Gauge({
      name: 'meshlite_downstream_connections',
      help: 'Client connections open on the proxy listener.',
      registers,
      collect: rebuiltFrom<Gauge>((gauge) => gauge.set(this.downstream)),
    });
    new Counter({
      name: 'meshlite_agent_errors_total',
      help: 'Errors the agent produced, by error code (see docs/errors.md).',
      labelNames: ['code'],
      registers,
      collect: rebuiltFrom<Counter<'code'>>((counter) => {
        for (const [code, value] of this.errorCounts) counter.inc({ code }, value);
      }),
    });
    this.staticReloads = new Counter({
      name: 'meshlite_static_reloads_total',
      help: 'Reloads of the static discovery file after an edit, by result.',
      labelNames: ['result'],
      registers,
    });
    for (const result of ['success', 'failure'] as const) this.staticReloads.inc({ result }, 0);
    new Gauge({
      name: 'meshlite_endpoints',
      help: 'Endpoints known per service, by eligibility: ready, terminating (still serving), not_ready.',
      labelNames: ['dst_namespace', 'dst_service', 'dst_port', 'state'],
      registers,
      collect: rebuiltFrom<Gauge<'dst_namespace' | 'dst_service' | 'dst_port' | 'state'>>((gauge) => {
        for (const entry of this.services.values()) {
          if (entry.endpointCounts === null) continue;
          for (const state of ENDPOINT_STATES) {
            gauge.set({ ...entry.labels, state }, entry.endpointCounts[state]);
          }
        }
      }),
    });
    new Counter({
      name: 'meshlite_transparent_retries_total',
      help: 'Requests sent again to another endpoint, unseen by the client: the connect failed, or the endpoint refused the stream.',
      labelNames: ['dst_namespace', 'dst_service', 'dst_port', 'reason'],
      registers,
      collect: rebuiltFrom<Counter<'dst_namespace' | 'dst_service' | 'dst_port' | 'reason'>>((counter) => {
        for (const entry of this.services.values()) {
          for (const reason of RETRY_REASONS) if (entry.retries[reason] > 0) counter.inc({ ...entry.labels, reason }, entry.retries[reason]);
        }
      }),
    });
    new Gauge({
      name: 'meshlite_endpoint_in_flight',
      help: 'Requests in flight to each endpoint of a service, as its balancer counts them.',
      labelNames: this.endpointLabel ? ['dst_namespace', 'dst_service', 'dst_port', 'dst_endpoint'] : ['dst_namespace', 'dst_service', 'dst_port'],
      registers,
      collect: rebuiltFrom<Gauge<'dst_namespace' | 'dst_service' | 'dst_port' | 'dst_endpoint'>>((gauge) => {
        for (const view of this.endpointsView()) {
          const labels = serviceLabels(view.key);
          if (this.endpointLabel) {
            for (const endpoint of view.endpoints) gauge.set({ ...labels, dst_endpoint: endpoint.address }, endpoint.inFlight);
          } else {
            gauge.set(labels, view.endpoints.reduce((sum, endpoint) => sum + endpoint.inFlight, 0));
          }
        }
      }),
    });
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** The handle for (service, endpoint), created once and cached; pass NO_ENDPOINT / UNKNOWN_SERVICE when apt. */
  requestMetrics(service: string, endpoint: string): RequestMetrics {
    const entry = this.serviceEntry(service);
    let handle = entry.endpoints.get(endpoint);
    if (handle === undefined) {
      handle = new RequestMetrics(service, endpoint, entry.duration);
      entry.endpoints.set(endpoint, handle);
    }
    return handle;
  }

  countTransparentRetry(service: string, reason: RetryReason): void {
    this.serviceEntry(service).retries[reason]++;
  }

  /** Every service's totals, copied (see ServiceReading); the unknown service included. */
  readings(): ServiceReading[] {
    const readings: ServiceReading[] = [];
    for (const [key, entry] of this.services) {
      readings.push({
        key,
        endpoints: [...entry.endpoints.values()].map((handle) => ({ address: handle.endpoint, byStatus: Array.from(handle.countsByStatus) })),
        durationBuckets: Array.from(entry.duration.buckets),
        durationCount: entry.duration.count,
      });
    }
    return readings;
  }

  /** Where meshlite_endpoint_in_flight comes from: asked at each scrape. */
  followEndpoints(view: () => readonly EndpointsView[]): void {
    this.endpointsView = view;
  }

  countError(code: ErrorCode): void {
    this.errorCounts.set(code, (this.errorCounts.get(code) ?? 0) + 1);
  }

  countStaticReload(result: StaticReloadResult): void {
    this.staticReloads.inc({ result });
  }

  downstreamOpened(): void {
    this.downstream++;
  }

  downstreamClosed(): void {
    this.downstream--;
  }

  /** An upstream connection moved between states; `from` is null for a new one, `to` null once it is gone. */
  upstreamConnectionMoved(endpoint: string, from: string | null, to: string | null): void {
    let states = this.upstreamByEndpoint.get(endpoint);
    if (states === undefined) {
      states = new Map();
      this.upstreamByEndpoint.set(endpoint, states);
    }
    if (from !== null) states.set(from, (states.get(from) ?? 0) - 1);
    if (to !== null) states.set(to, (states.get(to) ?? 0) + 1);
    let open = 0;
    for (const value of states.values()) open += value;
    // An endpoint with no connection left drops its series, so removed pods do not linger in the exposition.
    if (open === 0) this.upstreamByEndpoint.delete(endpoint);
  }

  /** Sets meshlite_endpoints for a service: its endpoints by state (the registry keeps them). */
  setServiceEndpoints(service: string, counts: EndpointCounts): void {
    this.serviceEntry(service).endpointCounts = { ...counts };
  }

  /** Drops the series of an endpoint that left a service (bounded cardinality as pods come and go). */
  forgetEndpoint(service: string, endpoint: string): void {
    this.services.get(service)?.endpoints.delete(endpoint);
  }

  /** Drops every series of a service that is gone. */
  forgetService(service: string): void {
    this.services.delete(service);
  }

  private serviceEntry(service: string): ServiceEntry {
    let entry = this.services.get(service);
    if (entry === undefined) {
      entry = { labels: serviceLabels(service), retries: { connect_failed: 0, refused_stream: 0 }, duration: new DurationAccumulator(), endpoints: new Map(), endpointCounts: null };
      this.services.set(service, entry);
    }
    return entry;
  }

  private durationHistogram() {
    return renderedHistogram(
      'meshlite_request_duration_seconds',
      'Time from request headers to the end of the response, by service.',
      () => [...this.services.values()].map((entry) => ({ labels: { ...entry.labels }, accumulator: entry.duration })),
    );
  }

  /** Each endpoint's counts by status, or (without the endpoint label) one sum for the service, keyed null. */
  private countsPerEndpoint(entry: ServiceEntry): Array<[string | null, Float64Array]> {
    if (this.endpointLabel) return [...entry.endpoints.values()].map((handle) => [handle.endpoint, handle.countsByStatus]);
    const sum = new Float64Array(GRPC_CODE_COUNT);
    for (const handle of entry.endpoints.values()) for (let code = 0; code < sum.length; code++) sum[code] += handle.countsByStatus[code];
    return [[null, sum]];
  }

  private responseStartHistogram() {
    return renderedHistogram(
      'meshlite_endpoint_response_start_seconds',
      "Time from request headers to the endpoint's response headers (first response byte), by service and endpoint.",
      () => {
        const rows: Array<{ labels: Record<string, string>; accumulator: DurationAccumulator }> = [];
        for (const entry of this.services.values()) {
          if (this.endpointLabel) {
            for (const handle of entry.endpoints.values()) rows.push({ labels: { ...entry.labels, dst_endpoint: handle.endpoint }, accumulator: handle.responseStart });
          } else {
            rows.push({ labels: { ...entry.labels }, accumulator: DurationAccumulator.sum([...entry.endpoints.values()].map((handle) => handle.responseStart)) });
          }
        }
        return rows;
      },
    );
  }
}

/**
 * prom-client has no way to load pre-counted buckets into its Histogram, so this object renders a histogram from
 * accumulators itself, in the shape the registry reads from its own metrics (`get()` → name, help, type, values).
 * Rows with no observation are left out.
 */
function renderedHistogram(name: string, help: string, rows: () => Array<{ labels: Record<string, string>; accumulator: DurationAccumulator }>) {
  return {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    reset: () => {
      for (const { accumulator } of rows()) {
        accumulator.buckets.fill(0);
        accumulator.sum = 0;
        accumulator.count = 0;
      }
    },
    get: async () => {
      const values: MetricValue[] = [];
      for (const { labels, accumulator } of rows()) {
        const { buckets, sum, count } = accumulator;
        if (count === 0) continue;
        let cumulative = 0;
        for (let i = 0; i < buckets.length; i++) {
          cumulative += buckets[i];
          values.push({ labels: { le: REQUEST_DURATION_BUCKETS[i], ...labels }, value: cumulative, metricName: `${name}_bucket` });
        }
        values.push({ labels: { le: '+Inf', ...labels }, value: count, metricName: `${name}_bucket` });
        values.push({ labels: { ...labels }, value: sum, metricName: `${name}_sum` });
        values.push({ labels: { ...labels }, value: count, metricName: `${name}_count` });
      }
      return { name, help, type: 'histogram', values, aggregator: 'sum' };
    },
  };
}

/** A prom-client collect() that rebuilds a metric from the accumulators: reset, then write the current totals. */
function rebuiltFrom<M extends { reset(): void }>(fill: (metric: M) => void): (this: M) => void {
  return function (this: M) {
    this.reset();
    fill(this);
  };
}

export interface MetricsOptions {
  /** Node.js process metrics (CPU, memory, event loop); default true. */
  processMetrics?: boolean;
  /** Exported as meshlite_build_info when given. */
  buildInfo?: BuildInfo;
  /** Series per endpoint (default true), or summed per service: see --metrics-endpoint-label. */
  endpointLabel?: boolean;
}

export function createMetrics(options: MetricsOptions = {}): AgentMetrics {
  return new AgentMetrics(options);
}
