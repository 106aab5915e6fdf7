// The admin servers over real HTTP on 127.0.0.1: health, readiness from the function given, metrics, debug JSON.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type AdminServer, createAdminServer, createMetricsServer, type Readiness } from '../../agent/admin/admin-server.ts';
import { createLogger } from '../../agent/telemetry/logger.ts';
import { createMetrics } from '../../agent/telemetry/metrics.ts';

describe('admin server', () => {
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger('info', { write: (line: string) => void logs.push(JSON.parse(line)) });
  const metrics = createMetrics({ processMetrics: false });
  let readiness: Readiness = { ready: false, reason: 'discovery has not delivered its first snapshot' };
  let debugCalls = 0;
  let app: AdminServer;
  let base: string;

  before(async () => {
    app = createAdminServer({
      logger,
      registry: metrics.registry,
      readiness: () => readiness,
      debugEndpoints: () => {
        debugCalls++;
        return { services: [{ key: 'default/greeter:50051', endpoints: [{ address: '10.0.0.1:50051', eligible: true, inFlight: 3 }] }] };
      },
    });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await app.close();
  });

  it('answers /healthz with 200 while the process runs', async () => {
    const response = await fetch(`${base}/healthz`);
    assert.equal(response.status, 200);
    assert.equal(await response.text(), 'ok\n');
    assert.equal(response.headers.get('cache-control'), 'no-store');
  });

  it('answers /readyz from the readiness function: 503 with the reason, then 200', async () => {
    readiness = { ready: false, reason: 'discovery has not delivered its first snapshot' };
    const notReady = await fetch(`${base}/readyz`);
    assert.equal(notReady.status, 503);
    assert.deepEqual(await notReady.json(), readiness);
    readiness = { ready: true };
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { ready: true });
  });

  it("serves the agent's registry on /metrics in the Prometheus text format", async () => {
    metrics.requestMetrics('default/greeter:50051', '10.0.0.1:50051').record(0, 0.002);
    const response = await fetch(`${base}/metrics`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), metrics.registry.contentType);
    const text = await response.text();
    assert.match(text, /^meshlite_requests_total\{dst_namespace="default",dst_service="greeter",dst_port="50051",dst_endpoint="10\.0\.0\.1:50051",grpc_code="0"\} 1$/m);
    assert.match(text, /^# TYPE meshlite_request_duration_seconds histogram$/m);
  });

  it('serves /debug/endpoints as JSON from the function given, fresh on each request', async () => {
    const callsBefore = debugCalls;
    const response = await fetch(`${base}/debug/endpoints`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
    assert.deepEqual(await response.json(), {
      services: [{ key: 'default/greeter:50051', endpoints: [{ address: '10.0.0.1:50051', eligible: true, inFlight: 3 }] }],
    });
    await fetch(`${base}/debug/endpoints`);
    assert.equal(debugCalls, callsBefore + 2);
  });

  it('answers unknown paths with 404 and logs no line per request', async () => {
    const response = await fetch(`${base}/nope`);
    assert.equal(response.status, 404);
    await response.text();
    assert.deepEqual(
      logs.filter((l) => l.msg === 'incoming request' || l.msg === 'request completed'),
      [],
    );
  });
});

describe('metrics server', () => {
  it('serves /metrics and nothing else', async () => {
    const metrics = createMetrics({ processMetrics: false });
    const app = createMetricsServer({ logger: createLogger('silent'), registry: metrics.registry });
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const response = await fetch(`${base}/metrics`);
      assert.equal(response.status, 200);
      assert.match(await response.text(), /^# TYPE meshlite_agent_errors_total counter$/m);
      for (const path of ['/healthz', '/readyz', '/debug/endpoints']) {
        const other = await fetch(`${base}${path}`);
        assert.equal(other.status, 404, path);
        await other.text();
      }
    } finally {
      await app.close();
    }
  });

  it('keeps connections alive until the agent drains, then closes each after its answer', async () => {
    const connections = { closing: false };
    const app = createMetricsServer({ logger: createLogger('silent'), registry: createMetrics({ processMetrics: false }).registry, connections });
    try {
      const before = await app.inject({ method: 'GET', url: '/metrics' });
      assert.notEqual(before.headers.connection, 'close');
      connections.closing = true;
      const draining = await app.inject({ method: 'GET', url: '/metrics' });
      assert.equal(draining.statusCode, 200);
      assert.equal(draining.headers.connection, 'close');
    } finally {
      await app.close();
    }
  });
});
