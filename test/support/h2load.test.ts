// Proves the h2load wrapper: parsing a known summary, and a real run against a node:http2 server.

import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { parseH2loadOutput, runH2load } from './h2load.ts';

describe('h2load', () => {
  it('parses a summary', () => {
    const out = [
      'finished in 42.63ms, 2345.88 req/s, 52.28KB/s',
      'requests: 100 total, 100 started, 99 done, 98 succeeded, 2 failed, 1 errored, 0 timeout',
      'status codes: 97 2xx, 0 3xx, 1 4xx, 0 5xx',
      '                     min         max         mean         sd        +/- sd',
      'time for request:      382us     18.07ms      2.97ms      1.2s    92.00%',
    ].join('\n');
    const r = parseH2loadOutput(out);
    assert.equal(r.durationMs, 42.63);
    assert.equal(r.requestsPerSecond, 2345.88);
    assert.deepEqual(r.requests, {
      total: 100,
      started: 100,
      done: 99,
      succeeded: 98,
      failed: 2,
      errored: 1,
      timeout: 0,
    });
    assert.deepEqual(r.status, { '2xx': 97, '3xx': 0, '4xx': 1, '5xx': 0 });
    assert.deepEqual(r.timeForRequest, { minUs: 382, maxUs: 18_070, meanUs: 2_970, sdUs: 1_200_000 });
    assert.throws(() => parseH2loadOutput('nothing'), /no finished line/);
  });

  it('runs against a node:http2 server', async () => {
    const server = http2.createServer();
    let streams = 0;
    server.on('stream', (stream) => {
      streams++;
      stream.respond({ ':status': 200 });
      stream.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const url = `http://127.0.0.1:${port}/`;
      const r = await runH2load({ url, requests: 100, clients: 2, maxConcurrentStreams: 4 });
      assert.equal(r.requests.succeeded, 100);
      assert.equal(r.status['2xx'], 100);
      assert.equal(streams, 100);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
