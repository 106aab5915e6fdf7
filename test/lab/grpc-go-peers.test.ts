// The grpc-go peers (lab/grpc-go-peers.ts) against grpc-js and through meshlite: a grpc-js client calls every method
// of the Go server and its steering metadata works; the Go client drives a grpc-js server; through the agent, Go
// clients' calls spread over three Go servers, and servers that send GOAWAY on MaxConnectionAge cost no call.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildGoPeers, type GoServerHandle, grpcGoUnavailable, runGoClient, startGoServer } from '../../lab/grpc-go-peers.ts';
import { bidi, clientStream, makeEchoClient, META, serverStream, startGrpcServer, unary } from '../../lab/grpc-peers.ts';
import { waitFor } from '../../lab/wait-for.ts';
import { startAgent } from '../support/agent-process.ts';

const skip = grpcGoUnavailable();
const AUTHORITY = 'greeter.default.svc.cluster.local:50051';
let dir = '';

before(
  async () => {
    if (skip !== false) return;
    dir = mkdtempSync(join(tmpdir(), 'meshlite-grpc-go-'));
    // A cold build compiles grpc-go itself; later runs find the binaries in the cache.
    await buildGoPeers();
  },
  { timeout: 240_000 },
);

after(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

function staticFile(servers: GoServerHandle[]): string {
  const file = join(dir, `services-${servers.map((server) => server.port).join('-')}.yaml`);
  const lines = ['services:', '  - name: greeter', '    namespace: default', '    port: 50051', '    balancer: round-robin', '    endpoints:'];
  for (const server of servers) lines.push(`      - address: 127.0.0.1:${server.port}`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

async function stopAll(servers: GoServerHandle[]): Promise<void> {
  await Promise.all(servers.map((server) => server.stop({ graceful: false })));
}

test('a grpc-js client calls a grpc-go server: all four kinds, echoed metadata, deadline, requested failure, cancellation counted', { skip, timeout: 30_000 }, async () => {
  const server = await startGoServer({ id: 'go-1' });
  const client = makeEchoClient(`127.0.0.1:${server.port}`);
  try {
    const one = await unary(client, Buffer.from('hello'), { timeoutMs: 5_000, metadata: { 'x-echo-color': 'blue' } });
    assert.equal(one.message.toString(), 'hello');
    assert.deepEqual(one.headers.get(META.servedBy), ['go-1']);
    assert.deepEqual(one.trailers.get(META.servedBy), ['go-1']);
    assert.deepEqual(one.headers.get('x-echo-color'), ['blue']);
    const left = Number(one.headers.get(META.deadlineLeftMs)[0]);
    assert.ok(left > 0 && left <= 5_000, `deadline left ${left} ms`);

    const bufs = [Buffer.from('a'), Buffer.from('bb'), Buffer.alloc(70_000, 7)];
    const summary = await clientStream(client, bufs);
    assert.deepEqual(
      { count: summary.count, bytes: summary.bytes, sha256: summary.sha256 },
      { count: 3, bytes: 70_003, sha256: createHash('sha256').update(Buffer.concat(bufs)).digest('hex') },
    );

    const streamed = await serverStream(client, 5, 12);
    assert.deepEqual(streamed.messages.map((m) => [m.length, m.readUInt32BE(0)]), [[12, 0], [12, 1], [12, 2], [12, 3], [12, 4]]);
    assert.deepEqual(streamed.headers.get(META.servedBy), ['go-1']);

    const echoed = await bidi(client, ['x', 'y', 'z'].map((s) => Buffer.from(s)), { metadata: { [META.delayMs]: '5' } });
    assert.deepEqual(echoed.messages.map(String), ['x', 'y', 'z']);

    await assert.rejects(unary(client, Buffer.from('no'), { metadata: { [META.failCode]: '9' } }), (err: { code: number; metadata: { get(k: string): unknown } }) => {
      assert.equal(err.code, 9);
      assert.deepEqual(err.metadata.get(META.servedBy), ['go-1']);
      return true;
    });
    // The server waits 10 s; the client's deadline ends the call after 200 ms, and the server counts it cancelled.
    await assert.rejects(unary(client, Buffer.from('slow'), { timeoutMs: 200, metadata: { [META.delayMs]: '10000' } }), { code: 4 });
    await waitFor(async () => (await server.stats()).cancelled === 1, { timeoutMs: 5_000, message: 'the Go server counts the cancelled call' });
    assert.deepEqual(await server.stats(), { calls: 6, cancelled: 1, inFlight: 0, connections: 1 });
  } finally {
    client.close();
    await server.stop({ graceful: false });
  }
});

test('stopping a grpc-go server: graceful lets an in-flight call finish, hard fails it at once', { skip, timeout: 30_000 }, async () => {
  const servers = [await startGoServer({ id: 'soft' }), await startGoServer({ id: 'hard' })];
  const clients = servers.map((server) => makeEchoClient(`127.0.0.1:${server.port}`));
  try {
    const slow = { timeoutMs: 10_000, metadata: { [META.delayMs]: '500' } };
    const [soft, hard] = clients.map((client) => unary(client, Buffer.from('slow'), slow));
    await waitFor(async () => (await servers[0].stats()).inFlight === 1 && (await servers[1].stats()).inFlight === 1, {
      timeoutMs: 5_000,
      message: 'both calls in flight',
    });
    const stopping = [servers[0].stop({ graceful: true }), servers[1].stop({ graceful: false })];
    const [softEnd, hardEnd] = await Promise.allSettled([soft, hard]);
    assert.equal(softEnd.status === 'fulfilled' && softEnd.value.message.toString(), 'slow', String((softEnd as PromiseRejectedResult).reason));
    assert.equal(hardEnd.status === 'rejected' && (hardEnd.reason as { code: number }).code, 14, 'UNAVAILABLE: the connection was closed');
    await Promise.all(stopping);
  } finally {
    for (const client of clients) client.close();
    await stopAll(servers);
  }
});

test('a grpc-go client drives a grpc-js server: unary and server stream, counts by status name and served-by', { skip, timeout: 30_000 }, async () => {
  const server = await startGrpcServer({ id: 'js-1' });
  try {
    const target = `127.0.0.1:${server.port}`;
    const unaries = await runGoClient({ target, count: 300, concurrency: 8 });
    assert.deepEqual(unaries.codes, { OK: 300 });
    assert.deepEqual(unaries.servedBy, { 'js-1': 300 });
    assert.equal(unaries.connections, 1, 'one ClientConn, one connection');
    assert.ok(unaries.latencyMs.p50 > 0 && unaries.latencyMs.p50 <= unaries.latencyMs.p99, JSON.stringify(unaries.latencyMs));

    const streams = await runGoClient({ target, kind: 'server-stream', count: 20, messages: 7, size: 32, concurrency: 4 });
    assert.deepEqual(streams.codes, { OK: 20 });
    assert.equal(streams.messages, 140);
    assert.equal(streams.incompleteStreams, 0);

    const failing = await runGoClient({ target, count: 5, metadata: { [META.failCode]: '14' } });
    assert.deepEqual(failing.codes, { UNAVAILABLE: 5 });
    assert.deepEqual(failing.servedBy, { 'js-1': 5 }, 'x-served-by read from a Trailers-Only answer');
    assert.deepEqual(failing.errors, ['UNAVAILABLE: requested failure 14']);
    assert.equal(server.calls.count, 325);
  } finally {
    await server.close();
  }
});

test('a grpc-go client through meshlite: calls spread over three grpc-go servers by :authority', { skip, timeout: 30_000 }, async () => {
  // 10 ms per call, as real handlers take time: with instant answers a server's latency is the loaded machine's
  // scheduling noise, and the latency-aware default balancer rightly avoids one that was descheduled for a while.
  const servers = await Promise.all(['go-a', 'go-b', 'go-c'].map((id) => startGoServer({ id, delayMs: 10 })));
  let agent: Awaited<ReturnType<typeof startAgent>> | undefined;
  try {
    agent = await startAgent(['--discovery', 'static', '--static-file', staticFile(servers)]);
    const run = await runGoClient({ target: agent.listen, authority: AUTHORITY, count: 3_000, concurrency: 16 });
    assert.deepEqual(run.codes, { OK: 3_000 }, run.errors.join('; '));
    assert.equal(run.connections, 1, 'one client connection, balanced per request');
    for (const server of servers) {
      const share = (run.servedBy[server.id] ?? 0) / 3_000;
      assert.ok(share > 0.25 && share < 0.42, `${server.id} served ${share} of the calls: ${JSON.stringify(run.servedBy)}`);
    }
    const calls = await Promise.all(servers.map(async (server) => (await server.stats()).calls));
    assert.equal(calls.reduce((sum, n) => sum + n, 0), 3_000);
    // grpc-go 1.33 closes its connection with a bare FIN, no GOAWAY: the agent must let it go, not count it open.
    await waitFor(async () => /^meshlite_downstream_connections 0$/m.test(await (await fetch(`http://${agent?.admin}/metrics`)).text()), {
      timeoutMs: 10_000,
      message: 'the grpc-go client connection, closed by FIN, gone from the agent',
    });
  } finally {
    await agent?.stop();
    await stopAll(servers);
  }
});

test('grpc-go servers send GOAWAY on MaxConnectionAge: a grpc-go client, directly and through meshlite, loses no call', { skip, timeout: 45_000 }, async () => {
  const aging = { maxConnectionAgeMs: 250, maxConnectionAgeGraceMs: 5_000 };
  const servers = await Promise.all(['age-a', 'age-b', 'age-c'].map((id) => startGoServer({ id, ...aging })));
  let agent: Awaited<ReturnType<typeof startAgent>> | undefined;
  try {
    // Directly: the peers themselves handle their GOAWAYs (the client reconnects, nothing fails).
    const direct = await runGoClient({ target: `127.0.0.1:${servers[0].port}`, count: 1_500, rate: 1_500, concurrency: 8 });
    assert.deepEqual(direct.codes, { OK: 1_500 }, direct.errors.join('; '));
    assert.ok(direct.connections >= 3, `the client reconnected after GOAWAYs: ${direct.connections} connections`);

    agent = await startAgent(['--discovery', 'static', '--static-file', staticFile(servers)]);
    const before = await Promise.all(servers.map(async (server) => (await server.stats()).connections));
    const run = await runGoClient({ target: agent.listen, authority: AUTHORITY, count: 4_000, rate: 2_000, concurrency: 16 });
    assert.deepEqual(run.codes, { OK: 4_000 }, run.errors.join('; '));
    assert.equal(Object.keys(run.servedBy).length, 3, JSON.stringify(run.servedBy));
    const afterRun = await Promise.all(servers.map(async (server) => (await server.stats()).connections));
    // Two seconds of traffic against a 250 ms age: each server sent the agent several GOAWAYs.
    for (const [i, server] of servers.entries()) {
      assert.ok(afterRun[i] - before[i] >= 3, `${server.id}: the agent opened ${afterRun[i] - before[i]} connections`);
    }
  } finally {
    await agent?.stop();
    await stopAll(servers);
  }
});
