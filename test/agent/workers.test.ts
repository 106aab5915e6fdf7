// The agent as users run it with --workers 2: connections spread over both threads, one discovery feeds both (a
// live edit under load), /metrics adds both up exactly, a drain covers both, bad values are refused.

import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type AgentProcess, runAgentExpectingFailure, startAgent } from '../support/agent-process.ts';
import { type EchoServiceClient, type GrpcServerHandle, makeEchoClient, META, startGrpcServer, unary } from '../../lab/grpc-peers.ts';
import { waitFor } from '../../lab/wait-for.ts';

const AUTHORITY = 'greeter.default.svc.cluster.local:50051';
/** Fixed, for the upgrade test: a second agent binds the first one's port (SO_REUSEPORT). */
const UPGRADE_PORT = 18431;
let dir = '';
let backends: GrpcServerHandle[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mlw-workers-'));
  backends = await Promise.all([1, 2, 3].map((i) => startGrpcServer({ id: `w${i}` })));
});

after(async () => {
  await Promise.all(backends.map((b) => b.close()));
  rmSync(dir, { recursive: true, force: true });
});

function staticFile(endpoints: readonly GrpcServerHandle[], terminating: readonly GrpcServerHandle[] = []): string {
  const lines = ['services:', '  - name: greeter', '    namespace: default', '    port: 50051', '    endpoints:'];
  for (const backend of endpoints) lines.push(`      - address: 127.0.0.1:${backend.port}`);
  for (const backend of terminating) lines.push(`      - address: 127.0.0.1:${backend.port}`, '        terminating: true');
  return `${lines.join('\n')}\n`;
}

function writeAtomically(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

async function scrape(agent: AgentProcess): Promise<string> {
  const response = await fetch(`http://${agent.admin}/metrics`);
  assert.equal(response.status, 200);
  return response.text();
}

/** The sum of every series of `name` whose labels match `labels` (a regular expression over the label text). */
function total(exposition: string, name: string, labels = /.*/): number {
  let sum = 0;
  for (const line of exposition.split('\n')) {
    const match = new RegExp(`^${name}(?:\\{(.*)\\})? (\\S+)$`).exec(line);
    if (match !== null && labels.test(match[1] ?? '')) sum += Number(match[2]);
  }
  return sum;
}

function acceptedPerWorker(exposition: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const match of exposition.matchAll(/^meshlite_worker_connections_accepted_total\{worker="(\d+)"\} (\d+)$/gm)) counts.set(match[1], Number(match[2]));
  return counts;
}

/** Waits until `read()` stays the same for 300 ms (calls in flight when an endpoint left, finishing), within 10 s. */
async function waitForSteady(read: () => number): Promise<number> {
  let last = read();
  let since = Date.now();
  await waitFor(
    () => {
      const now = read();
      if (now !== last) {
        last = now;
        since = Date.now();
      }
      return Date.now() - since >= 300;
    },
    { timeoutMs: 10_000, message: 'count steady' },
  );
  return last;
}

/** `channels` clients, each with its own connection (no shared subchannel pool), calling in loops until stopped. */
function load(target: string, channels: number) {
  const clients: EchoServiceClient[] = Array.from({ length: channels }, () =>
    makeEchoClient(target, { 'grpc.default_authority': AUTHORITY, 'grpc.use_local_subchannel_pool': 1 }),
  );
  const counts = { ok: 0, failed: 0, errors: [] as string[] };
  let running = true;
  const loops = clients.map(async (client) => {
    while (running && counts.ok + counts.failed < 200_000) {
      try {
        await unary(client, Buffer.from('w'), { metadata: { [META.delayMs]: '2' } });
        counts.ok++;
      } catch (error) {
        counts.failed++;
        if (counts.errors.length < 5) counts.errors.push((error as Error).message);
      }
    }
  });
  return {
    counts,
    async stop(): Promise<void> {
      running = false;
      await Promise.all(loops);
      for (const client of clients) client.close();
    },
  };
}

test('--workers 2: 40 connections spread over both threads, a live edit reaches both, /metrics totals equal the client counts; 0 failed', async () => {
  const file = join(dir, 'spread.yaml');
  const [b1, b2, b3] = backends;
  writeFileSync(file, staticFile([b1, b2]));
  const agent = await startAgent(['--discovery', 'static', '--static-file', file, '--workers', '2']);
  const start = [b1, b2, b3].map((backend) => backend.calls.count);
  const traffic = load(agent.listen, 40);
  try {
    assert.equal(agent.logs.find((line) => line.msg === 'meshlite ready')?.workers, 2);
    await waitFor(() => traffic.counts.ok > 400, { timeoutMs: 20_000, message: 'load running' });
    const accepted = acceptedPerWorker(await scrape(agent));
    assert.deepEqual([...accepted.keys()], ['0', '1']);
    assert.equal(accepted.get('0')! + accepted.get('1')!, 40, `one connection per channel: ${JSON.stringify([...accepted])}`);
    // The kernel hashes connections over the two listening sockets: 40 all on one would be 2 × 2^-40.
    assert.ok(accepted.get('0')! > 0 && accepted.get('1')! > 0, `both threads accepted: ${JSON.stringify([...accepted])}`);

    // One discovery, both threads: b1 terminates and b3 joins. A thread that missed the edit would go on sending b1
    // calls over its connections; none may reach it once its in-flight ones are done.
    const before = b3.calls.count;
    writeAtomically(file, staticFile([b2, b3], [b1]));
    await waitFor(() => b3.calls.count > before + 200, { timeoutMs: 10_000, message: 'the new endpoint gets calls' });
    const gone = await waitForSteady(() => b1.calls.count);
    const at = traffic.counts.ok;
    await waitFor(() => traffic.counts.ok > at + 1000, { timeoutMs: 20_000, message: 'load goes on' });
    assert.equal(b1.calls.count, gone, 'the terminating endpoint got new calls');
    const series = await scrape(agent);
    assert.match(series, new RegExp(`meshlite_requests_total\\{[^}]*dst_endpoint="127\\.0\\.0\\.1:${b3.port}"`));
  } catch (error) {
    await traffic.stop();
    await agent.stop();
    throw error;
  }
  await traffic.stop();
  try {
    // The client's count, exactly, as Prometheus reads the agent: every thread's requests, each once.
    assert.deepEqual(traffic.counts.errors, []);
    assert.equal(traffic.counts.failed, 0);
    const [toB1, toB2, toB3] = [b1, b2, b3].map((backend, i) => backend.calls.count - start[i]);
    assert.equal(toB1 + toB2 + toB3, traffic.counts.ok, 'every call reached a backend once');
    const expected = traffic.counts.ok;
    await waitFor(async () => total(await scrape(agent), 'meshlite_requests_total', /grpc_code="0"/) === expected, {
      timeoutMs: 5_000,
      message: `meshlite_requests_total = the client's ${expected}`,
    });
    const final = await scrape(agent);
    assert.equal(total(final, 'meshlite_requests_total'), expected, 'no other status counted');
    assert.equal(total(final, 'meshlite_requests_total', new RegExp(`dst_endpoint="127\\.0\\.0\\.1:${b1.port}"`)), toB1);
    assert.equal(total(final, 'meshlite_requests_total', new RegExp(`dst_endpoint="127\\.0\\.0\\.1:${b2.port}"`)), toB2);
    assert.equal(total(final, 'meshlite_requests_total', new RegExp(`dst_endpoint="127\\.0\\.0\\.1:${b3.port}"`)), toB3);
    // The latency histogram is per service: it keeps every call.
    assert.equal(total(final, 'meshlite_request_duration_seconds_count'), traffic.counts.ok);
    // Counted once, by the main thread, not once per thread.
    assert.equal(total(final, 'meshlite_endpoints', /state="ready"/), 2);
    assert.equal(total(final, 'meshlite_endpoints', /state="terminating"/), 1);
    // Closed by the clients: each thread counted its own closes.
    await waitFor(async () => total(await scrape(agent), 'meshlite_downstream_connections') === 0, { timeoutMs: 5_000, message: 'every connection closed' });
    // Process metrics once (the main thread's), not once per thread.
    assert.equal(final.match(/^# TYPE process_cpu_user_seconds_total /gm)?.length, 1);
  } finally {
    assert.equal(await agent.stop(), 0);
  }
});

test('--workers 2 drains both threads under load while a new agent takes over the port: 0 failed, exit 0', async () => {
  const file = join(dir, 'upgrade.yaml');
  writeFileSync(file, staticFile(backends));
  const args = ['--discovery', 'static', '--static-file', file, '--workers', '2', '--listen', `127.0.0.1:${UPGRADE_PORT}`];
  const old = await startAgent(args);
  const traffic = load(`127.0.0.1:${UPGRADE_PORT}`, 24);
  let next: AgentProcess | null = null;
  try {
    await waitFor(() => traffic.counts.ok > 300, { timeoutMs: 20_000, message: 'load through the old agent' });
    const accepted = acceptedPerWorker(await scrape(old));
    assert.ok(accepted.get('0')! > 0 && accepted.get('1')! > 0, `both threads of the old agent serve: ${JSON.stringify([...accepted])}`);
    next = await startAgent(args);
    const exited = await old.stop();
    assert.equal(exited, 0, 'the old agent drained and exited on its own');
    const drained = old.logs.find((line) => line.msg === 'meshlite stopped');
    assert.ok(drained !== undefined, 'the old agent logged its stop');
    assert.equal(old.logs.filter((line) => line.code === 'ML_DRAIN_TIMEOUT' || line.code === 'ML_WORKER_EXITED').length, 0);
    // Every channel reconnected to the new agent and calls on.
    const at = traffic.counts.ok;
    await waitFor(() => traffic.counts.ok > at + 500, { timeoutMs: 20_000, message: 'load through the new agent' });
    const served = await scrape(next);
    assert.equal(total(served, 'meshlite_downstream_connections'), 24, 'the 24 channels are on the new agent');
    const nextAccepted = acceptedPerWorker(served);
    assert.equal(nextAccepted.get('0')! + nextAccepted.get('1')!, 24);
  } finally {
    await traffic.stop();
    if (next !== null) assert.equal(await next.stop(), 0);
    await old.stop();
  }
  assert.deepEqual(traffic.counts.errors, []);
  assert.equal(traffic.counts.failed, 0);
});

test('--workers 1 starts no worker thread and serves as before', async () => {
  const file = join(dir, 'one.yaml');
  writeFileSync(file, staticFile(backends));
  const agent = await startAgent(['--discovery', 'static', '--static-file', file, '--workers', '1']);
  const client = makeEchoClient(agent.listen, { 'grpc.default_authority': AUTHORITY });
  try {
    assert.equal(agent.logs.find((line) => line.msg === 'meshlite ready')?.workers, 1);
    for (let i = 0; i < 10; i++) await unary(client, Buffer.from('one'));
    const series = await scrape(agent);
    assert.equal(total(series, 'meshlite_requests_total', /grpc_code="0"/), 10);
    assert.doesNotMatch(series, /meshlite_worker_connections_accepted_total/);
  } finally {
    client.close();
  }
  assert.equal(await agent.stop(), 0);
});

test('bad --workers values stop the agent at start with exit 2 and a message naming the setting', async () => {
  for (const value of ['0', '-1', '1.5', '65', 'many']) {
    const { code, stderr } = await runAgentExpectingFailure(['--discovery', 'static', '--static-file', join(dir, 'none.yaml'), '--workers', value]);
    assert.equal(code, 2, `--workers ${value}: ${stderr}`);
    assert.ok(stderr.includes(`invalid --workers: "${value}"; expected auto or an integer from 1 to 64`), stderr);
  }
});
