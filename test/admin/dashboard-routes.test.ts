// The dashboard's data on the admin server: one frame as JSON, frames as server-sent events while the page reads,
// the stream's end when the page leaves, and a server that closes with streams open.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createAdminServer } from '../../agent/admin/admin-server.ts';
import { DashboardSampler } from '../../agent/admin/dashboard-sampler.ts';
import { createLogger } from '../../agent/telemetry/logger.ts';
import { createMetrics } from '../../agent/telemetry/metrics.ts';
import { waitFor } from '../../lab/wait-for.ts';
import { FakeTimers } from '../support/fake-timers.ts';

const KEY = 'shop/cart:8080';

async function setup() {
  const clock = new FakeTimers();
  const metrics = createMetrics({ processMetrics: false });
  const sampler = new DashboardSampler({
    clock,
    wallClockMs: () => clock.now(),
    readings: () => metrics.readings(),
    services: () => [{ key: KEY, balancer: 'round-robin', endpoints: [{ address: '10.0.0.1:8080', ready: true, serving: true, terminating: false, eligible: true, inFlight: 2, latencyMs: 1, backingOff: false, ejected: false }] }],
    agent: () => ({ readiness: { ready: true }, version: '0.1.0', node: 'node-a', rssBytes: 1, eventLoopDelayMs: 0 }),
  });
  const app = createAdminServer({
    logger: createLogger('silent'),
    registry: metrics.registry,
    readiness: () => ({ ready: true }),
    debugEndpoints: () => ({}),
    dashboard: sampler,
  });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  return { clock, metrics, sampler, app, base };
}

/** Reads server-sent events from a streaming response: each `data:` line, parsed. */
function eventReader(body: ReadableStream<Uint8Array>) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  return async (): Promise<{ services: Array<{ requestsPerSecond: number; endpoints: Array<{ inFlight: number }> }> }> => {
    for (;;) {
      const end = buffered.indexOf('\n\n');
      if (end >= 0) {
        const event = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        assert.ok(event.startsWith('data: '), event);
        return JSON.parse(event.slice('data: '.length));
      }
      const { value, done } = await reader.read();
      if (done) throw new Error('the stream ended');
      buffered += decoder.decode(value, { stream: true });
    }
  };
}

describe('dashboard routes', () => {
  it('/dashboard/data answers one frame as JSON', async () => {
    const { app, base, metrics } = await setup();
    try {
      metrics.requestMetrics(KEY, '10.0.0.1:8080').record(0, 0.001);
      const response = await fetch(`${base}/dashboard/data`);
      assert.equal(response.status, 200);
      const frame = (await response.json()) as { services: Array<{ name: string; byStatus: Record<string, number>; endpoints: Array<{ inFlight: number }> }>; agent: { node: string } };
      assert.equal(frame.agent.node, 'node-a');
      assert.equal(frame.services[0].name, 'cart');
      assert.deepEqual(frame.services[0].byStatus, { '0': 1 });
      assert.equal(frame.services[0].endpoints[0].inFlight, 2);
    } finally {
      await app.close();
    }
  });

  it('/dashboard/events sends a frame at once and one each second; the page leaving ends the watch', async () => {
    const { app, base, clock, sampler, metrics } = await setup();
    try {
      const abort = new AbortController();
      const response = await fetch(`${base}/dashboard/events`, { signal: abort.signal });
      assert.equal(response.status, 200);
      assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
      const next = eventReader(response.body as ReadableStream<Uint8Array>);
      await next();
      for (let i = 0; i < 7; i++) metrics.requestMetrics(KEY, '10.0.0.1:8080').record(0, 0.001);
      clock.advance(1000);
      assert.equal((await next()).services[0].requestsPerSecond, 7);
      assert.equal(sampler.watchers, 1);
      abort.abort();
      await waitFor(() => sampler.watchers === 0, { timeoutMs: 5_000, message: 'the watch ended with the page' });
      assert.equal(clock.activeCount, 0);
    } finally {
      await app.close();
    }
  });

  it('closing the server ends the open streams (it does not wait for the page)', async () => {
    const { app, base, sampler } = await setup();
    const response = await fetch(`${base}/dashboard/events`);
    const next = eventReader(response.body as ReadableStream<Uint8Array>);
    await next();
    await app.close();
    await assert.rejects(next(), /the stream ended/);
    assert.equal(sampler.watchers, 0);
  });
});
