// Memory per upstream connection: the agent (static discovery, round-robin, started as the image starts it) relays
// to one Service of N endpoints, each its own loopback address (127.0.1.1, 127.0.1.2, …) served by node:http2 in a
// process of its own, until it holds a connection to every endpoint; the RSS it gained, settled, divided by the
// connections it opened. A warm-up through a one-endpoint Service first, so that compiled code and the relay's first
// allocations are in the reading before.
//
// `node bench/upstream-connection-memory.ts [--endpoints N]` (default 1000). Run it under flock /tmp/meshlite-load.lock.

import { fork } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startAgent } from '../test/support/agent-process.ts';
import { numberOption } from './number-option.ts';
import { settledMemory } from './proc-memory.ts';

/** Every endpoint listens on this port, each on its own address. */
const BACKEND_PORT = 23051;
const SERVICE_PORT = 50051;
const MIB = 1024 * 1024;
const settle = { intervalMs: 250, window: 8, tolerance: 0.01, maxMs: 20_000 };

/** 127.0.1.1 to 127.0.1.250, then 127.0.2.1, …: never a .0 or .255. */
function endpointAddress(n: number): string {
  return `127.0.${1 + Math.floor(n / 250)}.${1 + (n % 250)}`;
}

if (process.argv[2] === '--backends') {
  // One h2c server per address, answering every call with an empty gRPC message and OK trailers.
  const count = Number(process.argv[3]);
  const servers: http2.Http2Server[] = [];
  const reply = Buffer.alloc(5);
  for (let n = 0; n < count; n++) {
    const server = http2.createServer();
    server.on('stream', (stream) => {
      stream.on('data', () => {});
      stream.on('end', () => {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(reply);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(BACKEND_PORT, endpointAddress(n), resolve);
    });
    servers.push(server);
  }
  process.send?.('ready');
  process.on('disconnect', () => process.exit(0));
} else {
  const { values } = parseArgs({ options: { endpoints: { type: 'string' } } });
  const endpoints = numberOption(values.endpoints, 1000, 'endpoints', { min: 10, max: 60_000, integer: true });
  const dir = mkdtempSync(join(tmpdir(), 'meshlite-upstream-memory-'));
  const backends = fork(new URL(import.meta.url).pathname, ['--backends', String(endpoints + 1)]);
  try {
    await new Promise((resolve, reject) => {
      backends.once('message', resolve);
      backends.once('exit', (code) => reject(new Error(`backends exited ${code}`)));
    });
    const file = join(dir, 'services.yaml');
    const wide = Array.from({ length: endpoints }, (_, n) => `      - address: ${endpointAddress(n + 1)}:${BACKEND_PORT}\n`).join('');
    writeFileSync(
      file,
      'services:\n' +
        `  - name: warm\n    namespace: default\n    port: ${SERVICE_PORT}\n    endpoints:\n      - address: ${endpointAddress(0)}:${BACKEND_PORT}\n` +
        `  - name: wide\n    namespace: default\n    port: ${SERVICE_PORT}\n    endpoints:\n${wide}`,
    );
    const agent = await startAgent(['--discovery', 'static', '--static-file', file, '--balancer', 'round-robin']);
    const pid = agent.child.pid as number;
    try {
      const client = http2.connect(`http://${agent.listen}`);
      const call = (service: string): Promise<string> =>
        new Promise((resolve, reject) => {
          const stream = client.request({
            ':method': 'POST',
            ':path': '/helloworld.Greeter/SayHello',
            ':authority': `${service}.default.svc.cluster.local:${SERVICE_PORT}`,
            'content-type': 'application/grpc',
            te: 'trailers',
          });
          let status = '';
          stream.on('trailers', (trailers) => {
            status = String(trailers['grpc-status']);
          });
          stream.on('data', () => {});
          stream.on('end', () => resolve(status));
          stream.on('error', reject);
          stream.end(Buffer.alloc(5));
        });
      const calls = async (service: string, count: number): Promise<number> => {
        let ok = 0;
        for (let sent = 0; sent < count; sent += 50) {
          const statuses = await Promise.all(Array.from({ length: Math.min(50, count - sent) }, () => call(service)));
          ok += statuses.filter((status) => status === '0').length;
        }
        return ok;
      };
      /** The V8 heap in use and the memory outside it (ArrayBuffers and native objects V8 knows of), from /metrics. */
      const heap = async (): Promise<{ heapUsed: number; external: number }> => {
        const text = await (await fetch(`http://${agent.admin}/metrics`)).text();
        const value = (name: string): number => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? Number.NaN);
        return { heapUsed: value('nodejs_heap_size_used_bytes'), external: value('nodejs_external_memory_bytes') };
      };
      const warmOk = await calls('warm', 3000);
      const before = await settledMemory(pid, settle);
      const heapBefore = await heap();
      // Round-robin: two rounds over the endpoints reach each one at least once, whatever the pick order.
      const wideOk = await calls('wide', 2 * endpoints);
      const metrics = await (await fetch(`http://${agent.admin}/metrics`)).text();
      const ready = [...metrics.matchAll(/^meshlite_upstream_connections\{[^}]*state="ready"[^}]*\} (\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
      const after = await settledMemory(pid, settle);
      const heapAfter = await heap();
      const opened = ready - 1;
      const perConnectionKiB = (bytes: number): number => +(bytes / opened / 1024).toFixed(1);
      process.stdout.write(
        `${JSON.stringify({
          endpoints,
          warmOk,
          wideOk,
          upstreamConnectionsReady: ready,
          rssBeforeMiB: +(before.rssBytes / MIB).toFixed(1),
          rssAfterMiB: +(after.rssBytes / MIB).toFixed(1),
          perUpstreamConnectionKiB: perConnectionKiB(after.rssBytes - before.rssBytes),
          ofWhichHeapUsedKiB: perConnectionKiB(heapAfter.heapUsed - heapBefore.heapUsed),
          ofWhichExternalKiB: perConnectionKiB(heapAfter.external - heapBefore.external),
          settled: before.stable && after.stable,
        })}\n`,
      );
      client.close();
    } finally {
      await agent.stop();
    }
  } finally {
    if (backends.connected) backends.disconnect();
    rmSync(dir, { recursive: true, force: true });
  }
}
