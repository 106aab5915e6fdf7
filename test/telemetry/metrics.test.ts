// The agent's metrics: own registry, cached hot-path handles, exact exposition of every meshlite_* series.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { register as globalRegistry } from 'prom-client';
import { ERROR_CODES } from '../../agent/vocabulary/errors.ts';
import type { EndpointSpec } from '../../agent/registry/endpoint.ts';
import { populatedMetrics } from '../support/populated-metrics.ts';
import { type AgentMetrics, createMetrics, NO_ENDPOINT, serviceLabels, UNKNOWN_SERVICE } from '../../agent/telemetry/metrics.ts';
import { countEndpoints } from '../../agent/registry/endpoint-counts.ts';

/** The exposition as "name{labels}" → value, for the series whose name starts with `prefix`. */
async function series(metrics: AgentMetrics, prefix: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const line of (await metrics.registry.metrics()).split('\n')) {
    if (!line.startsWith(prefix)) continue;
    const space = line.lastIndexOf(' ');
    out.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return out;
}

function endpoint(address: string, ready: boolean, serving: boolean, terminating: boolean): EndpointSpec {
  const [host, port] = address.split(':');
  return { address, host, port: Number(port), ready, serving, terminating };
}

const SVC = 'default/greeter:50051';

describe('createMetrics', () => {
  it('uses its own registry, never the global one, so two agents in one process do not collide', async () => {
    const a = createMetrics({ processMetrics: false });
    const b = createMetrics({ processMetrics: false });
    assert.notEqual(a.registry, b.registry);
    assert.notEqual(a.registry, globalRegistry);
    assert.equal(globalRegistry.getSingleMetric('meshlite_requests_total'), undefined);
    a.countError('ML_NO_ENDPOINT');
    assert.equal((await series(b, 'meshlite_agent_errors_total')).get('meshlite_agent_errors_total{code="ML_NO_ENDPOINT"}'), 0);
  });

  it('includes the process metrics unless asked not to', async () => {
    assert.match(await createMetrics().registry.metrics(), /^process_cpu_seconds_total /m);
    assert.doesNotMatch(await createMetrics({ processMetrics: false }).registry.metrics(), /process_cpu_seconds_total/);
  });

  it('exports meshlite_build_info = 1 with the version and Node.js, only when given', async () => {
    const withInfo = await createMetrics({ processMetrics: false, buildInfo: { version: '9.8.7', nodejs: 'v24.9.0' } }).registry.metrics();
    assert.match(withInfo, /^meshlite_build_info\{version="9\.8\.7",nodejs="v24\.9\.0"\} 1$/m);
    assert.doesNotMatch(await createMetrics({ processMetrics: false }).registry.metrics(), /meshlite_build_info/);
  });

  it('labels a service by namespace, name and port; "unknown" by its name alone', () => {
    assert.deepEqual(serviceLabels('shop/cart:8080'), { dst_namespace: 'shop', dst_service: 'cart', dst_port: '8080' });
    assert.deepEqual(serviceLabels(UNKNOWN_SERVICE), { dst_namespace: '', dst_service: 'unknown', dst_port: '' });
  });

  it('reports in-flight requests per endpoint from the balancers, asked at each scrape', async () => {
    const metrics = createMetrics({ processMetrics: false });
    let inFlight = 3;
    metrics.followEndpoints(() => [{ key: 'shop/cart:8080', endpoints: [{ address: '10.0.0.1:8080', inFlight }, { address: '10.0.0.2:8080', inFlight: 0 }] }]);
    const read = async () => (await metrics.registry.metrics()).split('\n').filter((line) => line.startsWith('meshlite_endpoint_in_flight{'));
    assert.deepEqual(await read(), [
      'meshlite_endpoint_in_flight{dst_namespace="shop",dst_service="cart",dst_port="8080",dst_endpoint="10.0.0.1:8080"} 3',
      'meshlite_endpoint_in_flight{dst_namespace="shop",dst_service="cart",dst_port="8080",dst_endpoint="10.0.0.2:8080"} 0',
    ]);
    inFlight = 1;
    assert.equal((await read())[0], 'meshlite_endpoint_in_flight{dst_namespace="shop",dst_service="cart",dst_port="8080",dst_endpoint="10.0.0.1:8080"} 1');
  });

  it('counts transparent retries per service and reason, and forgets them with the service', async () => {
    const metrics = createMetrics({ processMetrics: false });
    metrics.countTransparentRetry('shop/cart:8080', 'connect_failed');
    metrics.countTransparentRetry('shop/cart:8080', 'connect_failed');
    metrics.countTransparentRetry('shop/cart:8080', 'refused_stream');
    const read = async () => (await metrics.registry.metrics()).split('\n').filter((line) => line.startsWith('meshlite_transparent_retries_total{'));
    assert.deepEqual(await read(), [
      'meshlite_transparent_retries_total{dst_namespace="shop",dst_service="cart",dst_port="8080",reason="connect_failed"} 2',
      'meshlite_transparent_retries_total{dst_namespace="shop",dst_service="cart",dst_port="8080",reason="refused_stream"} 1',
    ]);
    metrics.forgetService('shop/cart:8080');
    assert.deepEqual(await read(), []);
  });

  it('renders the time to first response byte per endpoint, and only for endpoints that answered', async () => {
    const metrics = createMetrics({ processMetrics: false });
    metrics.requestMetrics('shop/cart:8080', '10.0.0.1:8080').recordResponseStart(0.002);
    metrics.requestMetrics('shop/cart:8080', '10.0.0.2:8080').record(0, 1);
    const lines = (await metrics.registry.metrics()).split('\n').filter((line) => line.startsWith('meshlite_endpoint_response_start_seconds'));
    const labels = 'dst_namespace="shop",dst_service="cart",dst_port="8080",dst_endpoint="10.0.0.1:8080"';
    assert.ok(lines.includes(`meshlite_endpoint_response_start_seconds_bucket{le="0.001",${labels}} 0`), lines.join('\n'));
    assert.ok(lines.includes(`meshlite_endpoint_response_start_seconds_bucket{le="0.0025",${labels}} 1`));
    assert.ok(lines.includes(`meshlite_endpoint_response_start_seconds_bucket{le="+Inf",${labels}} 1`));
    assert.ok(lines.includes(`meshlite_endpoint_response_start_seconds_count{${labels}} 1`));
    assert.ok(!lines.some((line) => line.includes('10.0.0.2:8080')), 'no series for an endpoint that never answered');
  });

  it('hands out one cached handle per (service, endpoint)', () => {
    const metrics = createMetrics({ processMetrics: false });
    const handle = metrics.requestMetrics(SVC, '10.0.0.1:50051');
    assert.equal(metrics.requestMetrics(SVC, '10.0.0.1:50051'), handle);
    assert.notEqual(metrics.requestMetrics(SVC, '10.0.0.2:50051'), handle);
  });

  it('counts requests by service, endpoint and gRPC code, bounding codes to the 17 of the spec', async () => {
    const metrics = createMetrics({ processMetrics: false });
    const a = metrics.requestMetrics(SVC, '10.0.0.1:50051');
    a.record(0, 0.001);
    a.record(0, 0.001);
    a.record(14, 0.001);
    a.record(99, 0.001); // a backend's made-up code counts as UNKNOWN
    metrics.requestMetrics(UNKNOWN_SERVICE, NO_ENDPOINT).record(14, 0);
    assert.deepEqual(
      await series(metrics, 'meshlite_requests_total'),
      new Map([
        [`meshlite_requests_total{dst_namespace="default",dst_service="greeter",dst_port="50051",dst_endpoint="10.0.0.1:50051",grpc_code="0"}`, 2],
        [`meshlite_requests_total{dst_namespace="default",dst_service="greeter",dst_port="50051",dst_endpoint="10.0.0.1:50051",grpc_code="2"}`, 1],
        [`meshlite_requests_total{dst_namespace="default",dst_service="greeter",dst_port="50051",dst_endpoint="10.0.0.1:50051",grpc_code="14"}`, 1],
        ['meshlite_requests_total{dst_namespace="",dst_service="unknown",dst_port="",dst_endpoint="none",grpc_code="14"}', 1],
      ]),
    );
    // Scraping twice does not double anything.
    assert.equal((await series(metrics, 'meshlite_requests_total')).get(`meshlite_requests_total{dst_namespace="default",dst_service="greeter",dst_port="50051",dst_endpoint="10.0.0.1:50051",grpc_code="0"}`), 2);
  });

  it('renders the duration histogram per service with cumulative buckets, sum and count', async () => {
    const metrics = createMetrics({ processMetrics: false });
    metrics.requestMetrics(SVC, '10.0.0.1:50051').record(0, 0.0004);
    metrics.requestMetrics(SVC, '10.0.0.2:50051').record(0, 0.003);
    metrics.requestMetrics(SVC, '10.0.0.2:50051').record(0, 60);
    const s = await series(metrics, 'meshlite_request_duration_seconds');
    const bucket = (le: string) => s.get(`meshlite_request_duration_seconds_bucket{le="${le}",dst_namespace="default",dst_service="greeter",dst_port="50051"}`);
    assert.equal(bucket('0.0005'), 1);
    assert.equal(bucket('0.0025'), 1);
    assert.equal(bucket('0.005'), 2);
    assert.equal(bucket('30'), 2);
    assert.equal(bucket('+Inf'), 3);
    assert.equal(s.get(`meshlite_request_duration_seconds_count{dst_namespace="default",dst_service="greeter",dst_port="50051"}`), 3);
    assert.ok(Math.abs((s.get(`meshlite_request_duration_seconds_sum{dst_namespace="default",dst_service="greeter",dst_port="50051"}`) ?? 0) - 60.0034) < 1e-9);
    const text = await metrics.registry.metrics();
    assert.match(text, /^# TYPE meshlite_request_duration_seconds histogram$/m);
    assert.match(text, /^# HELP meshlite_request_duration_seconds /m);
  });

  it('exposes every error code from the start, and counts them', async () => {
    const metrics = createMetrics({ processMetrics: false });
    metrics.countError('ML_CONNECT_FAILED');
    metrics.countError('ML_CONNECT_FAILED');
    const s = await series(metrics, 'meshlite_agent_errors_total');
    assert.equal(s.size, ERROR_CODES.length);
    assert.equal(s.get('meshlite_agent_errors_total{code="ML_CONNECT_FAILED"}'), 2);
    assert.equal(s.get('meshlite_agent_errors_total{code="ML_DEADLINE"}'), 0);
  });

  it('counts static reloads by result', async () => {
    const metrics = createMetrics({ processMetrics: false });
    metrics.countStaticReload('failure');
    assert.deepEqual(
      await series(metrics, 'meshlite_static_reloads_total'),
      new Map([
        ['meshlite_static_reloads_total{result="success"}', 0],
        ['meshlite_static_reloads_total{result="failure"}', 1],
      ]),
    );
  });

  it('tracks upstream connections by state, dropping an endpoint with none left', async () => {
    const metrics = createMetrics({ processMetrics: false });
    metrics.upstreamConnectionMoved('10.0.0.1:50051', null, 'connecting');
    metrics.upstreamConnectionMoved('10.0.0.1:50051', 'connecting', 'ready');
    metrics.upstreamConnectionMoved('10.0.0.1:50051', null, 'connecting');
    metrics.upstreamConnectionMoved('10.0.0.2:50051', null, 'connecting');
    assert.deepEqual(
      await series(metrics, 'meshlite_upstream_connections'),
      new Map([
        ['meshlite_upstream_connections{dst_endpoint="10.0.0.1:50051",state="connecting"}', 1],
        ['meshlite_upstream_connections{dst_endpoint="10.0.0.1:50051",state="ready"}', 1],
        ['meshlite_upstream_connections{dst_endpoint="10.0.0.2:50051",state="connecting"}', 1],
      ]),
    );
    metrics.upstreamConnectionMoved('10.0.0.2:50051', 'connecting', 'closed');
    metrics.upstreamConnectionMoved('10.0.0.2:50051', 'closed', null);
    const after = await series(metrics, 'meshlite_upstream_connections');
    assert.equal([...after.keys()].some((k) => k.includes('10.0.0.2')), false);
  });

  it('tracks downstream connections', async () => {
    const metrics = createMetrics({ processMetrics: false });
    metrics.downstreamOpened();
    metrics.downstreamOpened();
    metrics.downstreamClosed();
    assert.equal((await series(metrics, 'meshlite_downstream_connections')).get('meshlite_downstream_connections'), 1);
  });

  it('counts endpoints per service by eligibility', async () => {
    const metrics = createMetrics({ processMetrics: false });
    metrics.setServiceEndpoints(
      SVC,
      countEndpoints([
        endpoint('10.0.0.1:50051', true, true, false),
        endpoint('10.0.0.2:50051', true, true, false),
        endpoint('10.0.0.3:50051', false, true, true),
        endpoint('10.0.0.4:50051', false, false, false),
        endpoint('10.0.0.5:50051', false, false, true),
      ]),
    );
    assert.deepEqual(
      await series(metrics, 'meshlite_endpoints'),
      new Map([
        [`meshlite_endpoints{dst_namespace="default",dst_service="greeter",dst_port="50051",state="ready"}`, 2],
        [`meshlite_endpoints{dst_namespace="default",dst_service="greeter",dst_port="50051",state="terminating"}`, 1],
        [`meshlite_endpoints{dst_namespace="default",dst_service="greeter",dst_port="50051",state="not_ready"}`, 2],
      ]),
    );
  });

  it('forgets an endpoint and a service, so churn does not grow the exposition', async () => {
    const metrics = createMetrics({ processMetrics: false });
    metrics.requestMetrics(SVC, '10.0.0.1:50051').record(0, 0.001);
    metrics.requestMetrics(SVC, '10.0.0.2:50051').record(0, 0.001);
    metrics.setServiceEndpoints(SVC, countEndpoints([endpoint('10.0.0.2:50051', true, true, false)]));
    metrics.forgetEndpoint(SVC, '10.0.0.1:50051');
    const requests = await series(metrics, 'meshlite_requests_total');
    assert.deepEqual([...requests.keys()], [`meshlite_requests_total{dst_namespace="default",dst_service="greeter",dst_port="50051",dst_endpoint="10.0.0.2:50051",grpc_code="0"}`]);
    metrics.forgetService(SVC);
    assert.equal((await series(metrics, 'meshlite_requests_total')).size, 0);
    assert.equal((await series(metrics, 'meshlite_request_duration_seconds')).size, 0);
    assert.equal((await series(metrics, 'meshlite_endpoints')).size, 0);
  });
});

describe('series bounds', () => {
  /** Every service with `endpoints` endpoints, each having answered with every gRPC code, connections in every state. */
  async function exposition(services: number, endpoints: number, endpointLabel: boolean): Promise<string[]> {
    const metrics = populatedMetrics({ services, endpoints, endpointLabel });
    return (await metrics.registry.metrics()).split('\n').filter((line) => line.startsWith('meshlite_'));
  }

  /** Series that exist once per agent, whatever the fleet: error codes, build info, downstream, static reloads. */
  const fixed = (lines: string[]) => lines.filter((line) => /^meshlite_(agent_errors_total|build_info|downstream_connections|static_reloads_total)/.test(line)).length;

  it('with 1000 services of 3 endpoints: at most 39 series per endpoint and 23 per service, as --metrics-endpoint-label says', async () => {
    const lines = await exposition(1000, 3, true);
    const perFleet = lines.length - fixed(lines);
    assert.ok(perFleet <= 1000 * 23 + 3000 * 39, `${perFleet} series`);
    // Every kind the bound counts is there: the bound is not met by leaving series out.
    assert.equal(perFleet, 1000 * 23 + 3000 * 39);
  });

  it('with the endpoint label off: 59 series per service and 3 for upstream connections, however many endpoints', async () => {
    const lines = await exposition(1000, 3, false);
    assert.equal(lines.length - fixed(lines), 1000 * 59 + 3);
    assert.ok(!lines.some((line) => line.includes('endpoint=')), 'no endpoint label anywhere');
    const wide = await exposition(10, 50, false);
    assert.equal(wide.length - fixed(wide), 10 * 59 + 3);
    assert.ok(wide.includes('meshlite_endpoint_in_flight{dst_namespace="ns0",dst_service="svc0",dst_port="50051"} 50'));
    assert.ok(wide.includes('meshlite_requests_total{dst_namespace="ns0",dst_service="svc0",dst_port="50051",grpc_code="0"} 50'));
  });
});
