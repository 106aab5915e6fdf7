// What the balancer hears from each attempt, on its own: one report per attempt (failure, cancel or latency measured
// from the upstream stream's opening), none once the exchange let go of its endpoint.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EndpointLoad } from '../../agent/balancer/endpoint-load.ts';
import { EMPTY_PICKER } from '../../agent/balancer/picker.ts';
import { Stream } from '../../agent/http2/stream.ts';
import { type DownstreamHttp2, Exchange } from '../../agent/proxy/exchange.ts';
import { reportCancel, reportFailure, reportLatency } from '../../agent/proxy/latency-feedback.ts';

/** An endpoint that records each report with its arguments. */
function recordingEndpoint(reports: string[]): EndpointLoad {
  return {
    address: '10.1.2.3:50051',
    onFailure(...args: unknown[]) {
      reports.push(`failure(${args.join(', ')})`);
    },
    onCancel(...args: unknown[]) {
      reports.push(`cancel(${args.join(', ')})`);
    },
    onFinish(...args: unknown[]) {
      reports.push(`finish(${args.join(', ')})`);
    },
  } as unknown as EndpointLoad;
}

function setup(startedAt = 100) {
  const reports: string[] = [];
  const driver = { onUpstreamReady() {}, onUpstreamFailed() {}, onDeadline() {} };
  const route = { key: 'default/greeter:50051', picker: EMPTY_PICKER };
  const exchange = new Exchange(driver, {} as DownstreamHttp2, new Stream<Exchange>(1, true, 65_535, 65_535), route, [], startedAt);
  exchange.endpoint = recordingEndpoint(reports);
  return { reports, exchange };
}

describe('reportFailure', () => {
  it('charges the endpoint a failure once and lets go of it', () => {
    const { reports, exchange } = setup();
    reportFailure(exchange);
    assert.deepEqual(reports, ['failure()']);
    assert.equal(exchange.endpoint, null);
    reportFailure(exchange);
    reportCancel(exchange);
    reportLatency(exchange, 500);
    assert.deepEqual(reports, ['failure()'], 'no second report for the attempt');
  });

  it('does nothing without an endpoint', () => {
    const { reports, exchange } = setup();
    exchange.endpoint = null;
    reportFailure(exchange);
    assert.deepEqual(reports, []);
    assert.equal(exchange.endpoint, null);
  });
});

describe('reportCancel', () => {
  it('tells the endpoint the attempt was cancelled, once, and lets go of it', () => {
    const { reports, exchange } = setup();
    reportCancel(exchange);
    assert.deepEqual(reports, ['cancel()']);
    assert.equal(exchange.endpoint, null);
    reportCancel(exchange);
    reportFailure(exchange);
    assert.deepEqual(reports, ['cancel()']);
  });

  it('does nothing without an endpoint', () => {
    const { reports, exchange } = setup();
    exchange.endpoint = null;
    reportCancel(exchange);
    assert.deepEqual(reports, []);
    assert.equal(exchange.endpoint, null);
  });
});

describe('reportLatency', () => {
  it('reports the time since the upstream stream opened, in nanoseconds, once, and lets go of the endpoint', () => {
    const { reports, exchange } = setup(100);
    exchange.upstreamStartedAt = 130;
    reportLatency(exchange, 175.5);
    assert.deepEqual(reports, ['finish(45500000)']);
    assert.equal(exchange.endpoint, null);
    reportLatency(exchange, 900);
    reportFailure(exchange);
    assert.deepEqual(reports, ['finish(45500000)']);
  });

  it('counts from the request arrival when no upstream stream was opened', () => {
    const { reports, exchange } = setup(100);
    assert.equal(exchange.upstreamStartedAt, 0);
    reportLatency(exchange, 175);
    assert.deepEqual(reports, ['finish(75000000)']);
  });

  it('counts from an upstream stream opened at the smallest positive time', () => {
    const { reports, exchange } = setup(0);
    exchange.upstreamStartedAt = 1;
    reportLatency(exchange, 3);
    assert.deepEqual(reports, ['finish(2000000)']);
  });

  it('reports a zero latency when the attempt finished the moment it started', () => {
    const { reports, exchange } = setup(100);
    exchange.upstreamStartedAt = 250;
    reportLatency(exchange, 250);
    assert.deepEqual(reports, ['finish(0)']);
  });

  it('does nothing without an endpoint', () => {
    const { reports, exchange } = setup();
    exchange.endpoint = null;
    reportLatency(exchange, 500);
    assert.deepEqual(reports, []);
    assert.equal(exchange.endpoint, null);
  });
});
