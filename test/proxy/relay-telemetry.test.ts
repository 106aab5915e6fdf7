// RelayTelemetry on its own, with the real metrics registry and a recording logger: request counts and durations by
// service and endpoint, error counts, which errors are logged at debug level, and upstream connection states.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EMPTY_PICKER } from '../../agent/balancer/picker.ts';
import { Stream } from '../../agent/http2/stream.ts';
import { type DownstreamHttp2, Exchange } from '../../agent/proxy/exchange.ts';
import { RelayTelemetry } from '../../agent/proxy/relay-telemetry.ts';
import type { Logger } from '../../agent/telemetry/logger.ts';
import { type AgentMetrics, serviceLabels, createMetrics } from '../../agent/telemetry/metrics.ts';
import type { UpstreamConnection, UpstreamState } from '../../agent/upstream/upstream-connection.ts';
import type { UpstreamPool } from '../../agent/upstream/upstream-pool.ts';
import { GrpcStatus } from '../../agent/vocabulary/errors.ts';

const SERVICE = 'default/greeter:50051';
const ENDPOINT = '10.1.2.3:50051';

/** The non-zero series of the exposition whose name starts with `prefix`, as "name{labels}" → value. */
async function series(metrics: AgentMetrics, prefix: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const line of (await metrics.registry.metrics()).split('\n')) {
    if (!line.startsWith(prefix)) continue;
    const space = line.lastIndexOf(' ');
    const value = Number(line.slice(space + 1));
    if (value !== 0) out[line.slice(0, space)] = value;
  }
  return out;
}

/** The request duration's sum and count for `service`. */
async function duration(metrics: AgentMetrics, service: string): Promise<[sum: number, count: number]> {
  const all = await series(metrics, 'meshlite_request_duration_seconds_');
  const { dst_namespace: namespace, dst_service: name, dst_port: port } = serviceLabels(service);
  const labels = `{dst_namespace="${namespace}",dst_service="${name}",dst_port="${port}"}`;
  return [all[`meshlite_request_duration_seconds_sum${labels}`] ?? 0, all[`meshlite_request_duration_seconds_count${labels}`] ?? 0];
}

type Logged = Array<[level: string, fields: Record<string, unknown>, message: string]>;

/** A logger that records every line, whatever the level, and says debug is enabled when `debug` is. */
function recordingLogger(logged: Logged, debug: boolean): Logger {
  const at = (level: string) => (fields: Record<string, unknown>, message: string) => void logged.push([level, fields, message]);
  return {
    isLevelEnabled: (level: string) => level !== 'debug' && level !== 'trace' ? true : debug,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
  } as unknown as Logger;
}

function setup(debug = true) {
  const metrics = createMetrics({ processMetrics: false });
  const logged: Logged = [];
  let now = 0;
  const telemetry = new RelayTelemetry(metrics, recordingLogger(logged, debug), () => now);
  const setNow = (ms: number) => {
    now = ms;
  };
  return { metrics, logged, telemetry, setNow };
}

function exchangeAt(startedAt: number, pooled = true): Exchange {
  const driver = { onUpstreamReady() {}, onUpstreamFailed() {}, onDeadline() {} };
  const exchange = new Exchange(driver, {} as DownstreamHttp2, new Stream<Exchange>(1, true, 65_535, 65_535), { key: SERVICE, picker: EMPTY_PICKER }, [], startedAt);
  if (pooled) exchange.pool = { address: ENDPOINT } as unknown as UpstreamPool<Exchange>;
  return exchange;
}

const pool = { address: ENDPOINT, connectFailures: 1 } as unknown as UpstreamPool<Exchange>;
const connectionIn = (state: UpstreamState) => ({ state }) as unknown as UpstreamConnection<Exchange>;

describe('RelayTelemetry.onExchangeFinished', () => {
  it('counts the request under its service, endpoint and status, with its duration in seconds, and logs nothing', async () => {
    const { metrics, logged, telemetry, setNow } = setup();
    setNow(1250);
    telemetry.onExchangeFinished(exchangeAt(1000), GrpcStatus.OK, null, '');
    assert.deepEqual(await series(metrics, 'meshlite_requests_total'), {
      [`meshlite_requests_total{dst_namespace="default",dst_service="greeter",dst_port="50051",dst_endpoint="${ENDPOINT}",grpc_code="0"}`]: 1,
    });
    assert.deepEqual(await duration(metrics, SERVICE), [0.25, 1]);
    assert.deepEqual(await series(metrics, 'meshlite_agent_errors_total'), {});
    assert.deepEqual(logged, []);
  });

  it('counts a request that never had an endpoint under endpoint "none"', async () => {
    const { metrics, telemetry, setNow } = setup();
    setNow(40);
    telemetry.onExchangeFinished(exchangeAt(30, false), GrpcStatus.UNAVAILABLE, 'ML_NO_ENDPOINT', `no ready endpoint for ${SERVICE}`);
    assert.deepEqual(await series(metrics, 'meshlite_requests_total'), {
      'meshlite_requests_total{dst_namespace="default",dst_service="greeter",dst_port="50051",dst_endpoint="none",grpc_code="14"}': 1,
    });
    assert.deepEqual(await duration(metrics, SERVICE), [0.01, 1]);
  });

  it('counts an agent-made error by its code and logs it at debug level with service and status', async () => {
    const { metrics, logged, telemetry, setNow } = setup(true);
    setNow(2000);
    telemetry.onExchangeFinished(exchangeAt(1000), GrpcStatus.DEADLINE_EXCEEDED, 'ML_DEADLINE', 'deadline exceeded in meshlite');
    assert.deepEqual(await series(metrics, 'meshlite_agent_errors_total'), { 'meshlite_agent_errors_total{code="ML_DEADLINE"}': 1 });
    assert.deepEqual(await duration(metrics, SERVICE), [1, 1]);
    assert.deepEqual(logged, [['debug', { code: 'ML_DEADLINE', service: SERVICE, grpcStatus: 4 }, 'deadline exceeded in meshlite']]);
  });

  it('counts an error without building its log line when debug logging is off', async () => {
    const { metrics, logged, telemetry } = setup(false);
    telemetry.onExchangeFinished(exchangeAt(0), GrpcStatus.UNAVAILABLE, 'ML_UPSTREAM_CONNECTION_LOST', `connection to ${ENDPOINT} lost`);
    assert.deepEqual(await series(metrics, 'meshlite_agent_errors_total'), { 'meshlite_agent_errors_total{code="ML_UPSTREAM_CONNECTION_LOST"}': 1 });
    assert.deepEqual(logged, []);
  });

  it('counts a cancellation but does not log it, even at debug level', async () => {
    const { metrics, logged, telemetry } = setup(true);
    telemetry.onExchangeFinished(exchangeAt(0), GrpcStatus.CANCELLED, 'ML_CLIENT_CANCELLED', 'cancelled by the client');
    assert.deepEqual(await series(metrics, 'meshlite_agent_errors_total'), { 'meshlite_agent_errors_total{code="ML_CLIENT_CANCELLED"}': 1 });
    assert.deepEqual(await series(metrics, 'meshlite_requests_total'), {
      [`meshlite_requests_total{dst_namespace="default",dst_service="greeter",dst_port="50051",dst_endpoint="${ENDPOINT}",grpc_code="1"}`]: 1,
    });
    assert.deepEqual(logged, []);
  });

  it('logs statuses on either side of CANCELLED', () => {
    const { logged, telemetry } = setup(true);
    telemetry.onExchangeFinished(exchangeAt(0), GrpcStatus.OK, 'ML_UPSTREAM_RESET', 'zero');
    telemetry.onExchangeFinished(exchangeAt(0), GrpcStatus.UNKNOWN, 'ML_UPSTREAM_RESET', 'two');
    assert.deepEqual(logged, [
      ['debug', { code: 'ML_UPSTREAM_RESET', service: SERVICE, grpcStatus: 0 }, 'zero'],
      ['debug', { code: 'ML_UPSTREAM_RESET', service: SERVICE, grpcStatus: 2 }, 'two'],
    ]);
  });
});

describe('RelayTelemetry.onTransparentRetry', () => {
  it("counts the retry under the exchange's service and the reason", async () => {
    const { metrics, telemetry } = setup();
    telemetry.onTransparentRetry(exchangeAt(1000), 'refused_stream');
    assert.deepEqual(await series(metrics, 'meshlite_transparent_retries_total'), {
      'meshlite_transparent_retries_total{dst_namespace="default",dst_service="greeter",dst_port="50051",reason="refused_stream"}': 1,
    });
  });
});

describe('RelayTelemetry.onResponseStarted', () => {
  it("records the time to the endpoint's response headers under the exchange's endpoint", async () => {
    const { metrics, telemetry, setNow } = setup();
    setNow(1004);
    telemetry.onResponseStarted(exchangeAt(1000));
    const counts = await series(metrics, 'meshlite_endpoint_response_start_seconds_count');
    assert.deepEqual(Object.values(counts), [1]);
    assert.match(Object.keys(counts)[0], /dst_endpoint="/);
  });
});

describe('RelayTelemetry.onRequestRejected', () => {
  it('counts the request under service "unknown" and endpoint "none", keeps it out of the latency histogram, counts and logs the error', async () => {
    const { metrics, logged, telemetry, setNow } = setup(true);
    setNow(5000);
    telemetry.onRequestRejected(GrpcStatus.UNAVAILABLE, 'ML_UNKNOWN_TARGET', 'unknown target nowhere:1');
    assert.deepEqual(await series(metrics, 'meshlite_requests_total'), { 'meshlite_requests_total{dst_namespace="",dst_service="unknown",dst_port="",dst_endpoint="none",grpc_code="14"}': 1 });
    assert.deepEqual(await series(metrics, 'meshlite_request_duration_seconds'), {}, 'a refusal is no 0-second request in the latency histogram');
    assert.deepEqual(await series(metrics, 'meshlite_agent_errors_total'), { 'meshlite_agent_errors_total{code="ML_UNKNOWN_TARGET"}': 1 });
    assert.deepEqual(logged, [['debug', { code: 'ML_UNKNOWN_TARGET', service: 'unknown', grpcStatus: 14 }, 'unknown target nowhere:1']]);
  });

  it('does not log a rejection when debug logging is off', async () => {
    const { metrics, logged, telemetry } = setup(false);
    telemetry.onRequestRejected(GrpcStatus.INTERNAL, 'ML_BAD_TIMEOUT', 'invalid grpc-timeout');
    assert.deepEqual(await series(metrics, 'meshlite_agent_errors_total'), { 'meshlite_agent_errors_total{code="ML_BAD_TIMEOUT"}': 1 });
    assert.deepEqual(logged, []);
  });
});

describe('RelayTelemetry.onUpstreamConnectionState', () => {
  const connections = (metrics: AgentMetrics) => series(metrics, 'meshlite_upstream_connections');

  it('moves the connection between state gauges as it connects and becomes ready, logging nothing', async () => {
    const { metrics, logged, telemetry } = setup();
    telemetry.onUpstreamConnectionState(pool, connectionIn({ state: 'connecting', since: 0 }), null);
    assert.deepEqual(await connections(metrics), { [`meshlite_upstream_connections{dst_endpoint="${ENDPOINT}",state="connecting"}`]: 1 });
    telemetry.onUpstreamConnectionState(pool, connectionIn({ state: 'ready', since: 1 }), 'connecting');
    assert.deepEqual(await connections(metrics), { [`meshlite_upstream_connections{dst_endpoint="${ENDPOINT}",state="ready"}`]: 1 });
    telemetry.onUpstreamConnectionState(pool, connectionIn({ state: 'draining', since: 2 }), 'ready');
    assert.deepEqual(await connections(metrics), { [`meshlite_upstream_connections{dst_endpoint="${ENDPOINT}",state="draining"}`]: 1 });
    assert.deepEqual(logged, []);
  });

  it('counts and warns about a connection that closed while connecting, and drops it from the gauges', async () => {
    const { metrics, logged, telemetry } = setup();
    telemetry.onUpstreamConnectionState(pool, connectionIn({ state: 'connecting', since: 0 }), null);
    telemetry.onUpstreamConnectionState(pool, connectionIn({ state: 'closed', since: 3, error: 'connect ECONNREFUSED' }), 'connecting');
    assert.deepEqual(await connections(metrics), {});
    assert.deepEqual(await series(metrics, 'meshlite_agent_errors_total'), { 'meshlite_agent_errors_total{code="ML_CONNECT_FAILED"}': 1 });
    assert.deepEqual(logged, [['warn', { code: 'ML_CONNECT_FAILED', endpoint: ENDPOINT, err: 'connect ECONNREFUSED', failures: 1 }, 'upstream connect failed']]);
  });

  it('of failures in a row, warns about the 1st, 2nd, 4th, 8th…, and counts every one', async () => {
    const { metrics, logged, telemetry } = setup();
    for (let failures = 1; failures <= 9; failures++) {
      const failing = { address: ENDPOINT, connectFailures: failures } as unknown as UpstreamPool<Exchange>;
      telemetry.onUpstreamConnectionState(failing, connectionIn({ state: 'closed', since: failures, error: 'connect ECONNREFUSED' }), 'connecting');
    }
    assert.deepEqual(await series(metrics, 'meshlite_agent_errors_total'), { 'meshlite_agent_errors_total{code="ML_CONNECT_FAILED"}': 9 });
    assert.deepEqual(logged.map(([, fields]) => (fields as { failures: number }).failures), [1, 2, 4, 8]);
  });

  it('warns about a failed connect even without a reason', async () => {
    const { metrics, logged, telemetry } = setup();
    telemetry.onUpstreamConnectionState(pool, connectionIn({ state: 'connecting', since: 0 }), null);
    telemetry.onUpstreamConnectionState(pool, connectionIn({ state: 'closed', since: 3, error: null }), 'connecting');
    assert.deepEqual(await series(metrics, 'meshlite_agent_errors_total'), { 'meshlite_agent_errors_total{code="ML_CONNECT_FAILED"}': 1 });
    assert.deepEqual(logged, [['warn', { code: 'ML_CONNECT_FAILED', endpoint: ENDPOINT, err: null, failures: 1 }, 'upstream connect failed']]);
  });

  it('logs at info a connection that closed with an error after connecting, without counting an error', async () => {
    for (const previous of ['ready', 'draining']) {
      const { metrics, logged, telemetry } = setup();
      telemetry.onUpstreamConnectionState(pool, connectionIn({ state: 'connecting', since: 0 }), null);
      telemetry.onUpstreamConnectionState(pool, connectionIn({ state: 'ready', since: 1 }), 'connecting');
      if (previous === 'draining') telemetry.onUpstreamConnectionState(pool, connectionIn({ state: 'draining', since: 2 }), 'ready');
      telemetry.onUpstreamConnectionState(pool, connectionIn({ state: 'closed', since: 3, error: 'read ECONNRESET' }), previous);
      assert.deepEqual(await connections(metrics), {}, previous);
      assert.deepEqual(await series(metrics, 'meshlite_agent_errors_total'), {}, previous);
      assert.deepEqual(logged, [['info', { endpoint: ENDPOINT, err: 'read ECONNRESET' }, 'upstream connection closed']], previous);
    }
  });

  it('logs nothing for a connection that closed cleanly after connecting', async () => {
    const { metrics, logged, telemetry } = setup();
    telemetry.onUpstreamConnectionState(pool, connectionIn({ state: 'connecting', since: 0 }), null);
    telemetry.onUpstreamConnectionState(pool, connectionIn({ state: 'ready', since: 1 }), 'connecting');
    telemetry.onUpstreamConnectionState(pool, connectionIn({ state: 'closed', since: 3, error: null }), 'ready');
    assert.deepEqual(await connections(metrics), {});
    assert.deepEqual(await series(metrics, 'meshlite_agent_errors_total'), {});
    assert.deepEqual(logged, []);
  });

  it('keeps the gauges of other connections to the endpoint', async () => {
    const { metrics, telemetry } = setup();
    telemetry.onUpstreamConnectionState(pool, connectionIn({ state: 'connecting', since: 0 }), null);
    telemetry.onUpstreamConnectionState(pool, connectionIn({ state: 'connecting', since: 0 }), null);
    telemetry.onUpstreamConnectionState(pool, connectionIn({ state: 'ready', since: 1 }), 'connecting');
    telemetry.onUpstreamConnectionState(pool, connectionIn({ state: 'closed', since: 2, error: null }), 'connecting');
    assert.deepEqual(await connections(metrics), { [`meshlite_upstream_connections{dst_endpoint="${ENDPOINT}",state="ready"}`]: 1 });
  });
});
