// The agent as users run it, with static discovery: balancing, live edits of the file under load, bad files.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { startAgent, runAgentExpectingFailure } from '../support/agent-process.ts';
import { spawnBackend } from '../../lab/grpc-backend-process.ts';
import { type GrpcServerHandle, META, makeEchoClient, startGrpcServer, unary } from '../../lab/grpc-peers.ts';
import { waitFor } from '../../lab/wait-for.ts';

const AUTHORITY = 'greeter.default.svc.cluster.local:50051';
let dir = '';
let backends: GrpcServerHandle[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'meshlite-static-'));
  backends = await Promise.all([1, 2, 3, 4].map((i) => startGrpcServer({ id: `b${i}` })));
});

after(async () => {
  await Promise.all(backends.map((b) => b.close()));
  rmSync(dir, { recursive: true, force: true });
});

function staticFile(endpoints: Array<{ backend: GrpcServerHandle; terminating?: boolean }>, balancer?: string): string {
  const lines = ['services:', '  - name: greeter', '    namespace: default', '    port: 50051'];
  if (balancer !== undefined) lines.push(`    balancer: ${balancer}`);
  lines.push('    endpoints:');
  for (const { backend, terminating } of endpoints) {
    lines.push(`      - address: 127.0.0.1:${backend.port}`);
    if (terminating) lines.push('        terminating: true');
  }
  return `${lines.join('\n')}\n`;
}

/** Replaces the file the way editors and ConfigMap updates do: write aside, then rename over it. */
function writeAtomically(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

async function adminJson(admin: string, path: string): Promise<unknown> {
  const response = await fetch(`http://${admin}${path}`);
  return response.json();
}

test('3000 unary RPCs over one channel with the default balancer: each backend 1000 ± 25%, 0 failed', async (t) => {
  // Each backend in its own process, as pods are: backends sharing this process's event loop answer in a fixed
  // order, so one is really faster, and a latency-aware balancer rightly prefers it.
  const own = await Promise.all(['p1', 'p2', 'p3'].map((id) => spawnBackend(id)));
  const file = join(dir, 'p2c.yaml');
  const endpoints = own.map((b) => `      - address: 127.0.0.1:${b.port}`).join('\n');
  writeFileSync(file, `services:\n  - name: greeter\n    namespace: default\n    port: 50051\n    endpoints:\n${endpoints}\n`);
  const agent = await startAgent(['--discovery', 'static', '--static-file', file]);
  const client = makeEchoClient(agent.listen, { 'grpc.default_authority': AUTHORITY });
  try {
    const served = new Map<string, number>();
    let failed = 0;
    // Steady load: 16 calls in flight at all times, 3000 in all, as a busy client sends them. Each call takes the
    // backend 20 ms, as real handlers take time: with echo calls of microseconds, one backend process descheduled
    // for 100 ms on a busy two-core machine has a peak ~50 times the others', which peak EWMA rightly avoids for
    // seconds (CI saw 1265/712/1023); against 20 ms a 200 ms stall still kept every share within ±15% (SIGSTOP).
    const slowCall = { metadata: { [META.delayMs]: '20' } };
    let sent = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (sent < 3000) {
          sent++;
          try {
            const response = await unary(client, Buffer.from('p2c'), slowCall);
            const id = String(response.headers.get(META.servedBy)[0]);
            served.set(id, (served.get(id) ?? 0) + 1);
          } catch {
            failed++;
          }
        }
      }),
    );
    const counts = ['p1', 'p2', 'p3'].map((id) => served.get(id) ?? 0);
    t.diagnostic(`spread ${counts.join('/')}`);
    assert.equal(failed, 0);
    assert.equal(counts.reduce((a, b) => a + b, 0), 3000);
    for (const count of counts) assert.ok(Math.abs(count - 1000) <= 250, `spread ${counts.join('/')}`);
  } finally {
    client.close();
    assert.equal(await agent.stop(), 0);
    await Promise.all(own.map((b) => b.kill()));
  }
});

test('under load, a 4th endpoint gets traffic within 5 s of the edit; a terminating one gets no new RPCs; 0 failed', async (t) => {
  const file = join(dir, 'live.yaml');
  const [b1, b2, b3, b4] = backends;
  writeFileSync(file, staticFile([b1, b2, b3].map((backend) => ({ backend }))));
  const agent = await startAgent(['--discovery', 'static', '--static-file', file]);
  const client = makeEchoClient(agent.listen, { 'grpc.default_authority': AUTHORITY });
  let running = true;
  let failed = 0;
  let completed = 0;
  // Load: 16 concurrent loops of 20 ms calls, bounded by a flag and by a hard cap on calls.
  const loops = Array.from({ length: 16 }, async () => {
    while (running && completed < 20_000) {
      try {
        await unary(client, Buffer.from('live'), { metadata: { [META.delayMs]: '20' } });
      } catch {
        failed++;
      }
      completed++;
    }
  });
  try {
    await waitFor(() => completed > 200, { message: 'load running' });
    const fourthBefore = b4.calls.count;
    const edited = performance.now();
    writeAtomically(file, staticFile([b1, b2, b3, b4].map((backend) => ({ backend }))));
    await waitFor(() => b4.calls.count > fourthBefore, { timeoutMs: 10_000, message: '4th endpoint got traffic' });
    const reached = performance.now() - edited;
    t.diagnostic(`4th endpoint reached ${Math.round(reached)} ms after the edit`);
    // How soon is the behaviour here, so the figure stays; but through a whole agent process under load it is wall
    // clock, so the bound is generous. The source's own 1 s (poll 500 ms, settle 50 ms) is timed exactly on a fake
    // clock in test/discovery/static-source.test.ts.
    assert.ok(reached < 5000, `4th endpoint reached after ${Math.round(reached)} ms`);

    writeAtomically(file, staticFile([{ backend: b1, terminating: true }, { backend: b2 }, { backend: b3 }, { backend: b4 }]));
    const terminating = async (): Promise<{ eligible: boolean; inFlight: number } | undefined> => {
      const debug = (await adminJson(agent.admin, '/debug/endpoints')) as {
        services: Array<{ endpoints: Array<{ address: string; eligible: boolean; inFlight: number }> }>;
      };
      return debug.services[0].endpoints.find((e) => e.address === `127.0.0.1:${b1.port}`);
    };
    await waitFor(async () => (await terminating())?.eligible === false, { timeoutMs: 10_000, message: 'terminating endpoint left the picker' });
    // In-flight calls on it may still complete; once the agent has none left there, it gets nothing new.
    await waitFor(async () => (await terminating())?.inFlight === 0, { timeoutMs: 10_000, message: 'calls in flight on the terminating endpoint done' });
    // The same count, as Prometheus reads it.
    const scraped = await (await fetch(`http://${agent.admin}/metrics`)).text();
    assert.match(scraped, new RegExp(`^meshlite_endpoint_in_flight\\{[^}]*dst_endpoint="127\\.0\\.0\\.1:${b1.port}"\\} 0$`, 'm'));
    assert.match(scraped, /^meshlite_endpoint_in_flight\{dst_namespace="[^"]+",dst_service="[^"]+",dst_port="\d+",dst_endpoint="127\.0\.0\.1:\d+"\} \d+$/m);
    // And as the dashboard reads it: the terminating endpoint draining, the others ready, the agent's own state.
    const frame = (await adminJson(agent.admin, '/dashboard/data')) as {
      agent: { version: string; rssBytes: number };
      services: Array<{ balancer: string; endpoints: Array<{ address: string; state: string }> }>;
    };
    assert.ok(frame.agent.rssBytes > 0 && frame.agent.version !== '');
    const states = new Map(frame.services[0].endpoints.map((e) => [e.address, e.state]));
    assert.equal(states.get(`127.0.0.1:${b1.port}`), 'draining');
    assert.deepEqual([b2, b3, b4].map((b) => states.get(`127.0.0.1:${b.port}`)), ['ready', 'ready', 'ready']);
    const settled = b1.calls.count;
    const others = [b2, b3, b4].map((b) => b.calls.count);
    await waitFor(() => [b2, b3, b4].every((b, i) => b.calls.count > others[i] + 50), { message: 'load continues on the others' });
    assert.equal(b1.calls.count, settled, 'the terminating endpoint got new calls');
  } finally {
    running = false;
    await Promise.all(loops);
    client.close();
    assert.equal(await agent.stop(), 0);
  }
  assert.equal(failed, 0, `${failed} of ${completed} calls failed`);
});

test('a malformed file stops the agent at start with a message naming the field', async () => {
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, 'services:\n  - name: greeter\n    namespace: default\n    port: 70000\n    endpoints: []\n');
  const { code, stderr } = await runAgentExpectingFailure(['--discovery', 'static', '--static-file', file]);
  assert.notEqual(code, 0);
  assert.match(stderr, /services\[0\]\.port/);
});

test('a malformed edit at run time keeps the last good state and logs the error code', async () => {
  const file = join(dir, 'reload.yaml');
  writeFileSync(file, staticFile([{ backend: backends[0] }]));
  const agent = await startAgent(['--discovery', 'static', '--static-file', file]);
  const client = makeEchoClient(agent.listen, { 'grpc.default_authority': AUTHORITY });
  try {
    writeAtomically(file, 'services: [this is not: valid');
    await waitFor(() => agent.logs.some((l) => l.code === 'ML_STATIC_FILE_RELOAD_FAILED'), { message: 'reload error logged' });
    const response = await unary(client, Buffer.from('still'));
    assert.equal(response.message.toString(), 'still');
  } finally {
    client.close();
    assert.equal(await agent.stop(), 0);
  }
});

test('an unknown target gets UNAVAILABLE naming it, and the agent keeps serving', async () => {
  const file = join(dir, 'unknown.yaml');
  writeFileSync(file, staticFile([{ backend: backends[0] }]));
  const agent = await startAgent(['--discovery', 'static', '--static-file', file]);
  const wrong = makeEchoClient(agent.listen, { 'grpc.default_authority': 'other.default.svc:50051' });
  const right = makeEchoClient(agent.listen, { 'grpc.default_authority': AUTHORITY });
  try {
    await assert.rejects(unary(wrong, Buffer.from('x')), (error: grpc.ServiceError) => {
      assert.equal(error.code, grpc.status.UNAVAILABLE);
      assert.match(error.details, /other\.default\.svc:50051/);
      return true;
    });
    assert.equal((await unary(right, Buffer.from('ok'))).message.toString(), 'ok');
  } finally {
    wrong.close();
    right.close();
    assert.equal(await agent.stop(), 0);
  }
});
