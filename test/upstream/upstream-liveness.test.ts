// A backend frozen (SIGSTOP) under traffic through the real agent: its in-flight RPCs end UNAVAILABLE within 5 s
// (the upstream PING keepalive), the connections the agent opens to it afterwards never become ready (no SETTINGS:
// its kernel still accepts TCP), RPCs for a service that has another backend go there, and those for a service that
// has only the frozen one end by their deadline at the latest instead of hanging.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { type BackendProcess, spawnBackend } from '../../lab/grpc-backend-process.ts';
import { META, makeEchoClient, serverStream, unary } from '../../lab/grpc-peers.ts';
import { waitFor } from '../../lab/wait-for.ts';
import { type AgentProcess, startAgent } from '../support/agent-process.ts';

const SOLO = 'solo.default.svc.cluster.local:50061';
const PAIR = 'pair.default.svc.cluster.local:50062';
const DEADLINE_MS = 5_000;

interface Outcome {
  service: 'solo' | 'pair';
  startedAt: number;
  endedAt: number;
  code: number;
  servedBy: string;
}

function staticFile(frozen: number, healthy: number): string {
  return [
    'services:',
    '  - name: solo',
    '    namespace: default',
    '    port: 50061',
    '    endpoints:',
    `      - address: 127.0.0.1:${frozen}`,
    '  - name: pair',
    '    namespace: default',
    '    port: 50062',
    '    balancer: round-robin',
    '    endpoints:',
    `      - address: 127.0.0.1:${frozen}`,
    `      - address: 127.0.0.1:${healthy}`,
    '',
  ].join('\n');
}

/** The ready upstream connections the agent holds to `endpoint`, from /metrics. */
async function readyConnections(agent: AgentProcess, endpoint: string): Promise<number> {
  const text = await (await fetch(`http://${agent.admin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('meshlite_upstream_connections{') && l.includes(`dst_endpoint="${endpoint}"`) && l.includes('state="ready"'));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

function codeOf(error: unknown): number {
  return (error as { code?: number }).code ?? -1;
}

test('a backend frozen under traffic: in-flight RPCs end UNAVAILABLE within 5 s; it never gets a ready connection again; RPCs go to the other backend or end by their deadline', { timeout: 90_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'meshlite-liveness-'));
  const backends: BackendProcess[] = [];
  let agent: AgentProcess | null = null;
  let frozenPid: number | undefined;
  const clients: grpc.Client[] = [];
  let running = true;
  const workers: Promise<void>[] = [];
  try {
    const frozen = await spawnBackend('frozen');
    const healthy = await spawnBackend('healthy');
    backends.push(frozen, healthy);
    const frozenEndpoint = `127.0.0.1:${frozen.port}`;
    const file = join(dir, 'services.yaml');
    writeFileSync(file, staticFile(frozen.port, healthy.port));
    agent = await startAgent(['--discovery', 'static', '--static-file', file]);
    const solo = makeEchoClient(agent.listen, { 'grpc.default_authority': SOLO });
    const pair = makeEchoClient(agent.listen, { 'grpc.default_authority': PAIR });
    clients.push(solo, pair);

    // Steady traffic on both services (paced: about 1000 RPC/s in all), so the frozen backend's connection is busy.
    const outcomes: Outcome[] = [];
    const worker = async (service: 'solo' | 'pair', client: grpc.Client): Promise<void> => {
      while (running) {
        const startedAt = performance.now();
        let code = 0;
        let servedBy = '';
        try {
          const result = await unary(client, Buffer.from('liveness'), { timeoutMs: DEADLINE_MS });
          servedBy = String(result.headers.get(META.servedBy)[0] ?? '');
        } catch (error) {
          code = codeOf(error);
        }
        outcomes.push({ service, startedAt, endedAt: performance.now(), code, servedBy });
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    };
    for (let i = 0; i < 3; i++) workers.push(worker('solo', solo), worker('pair', pair));
    await waitFor(() => outcomes.filter((o) => o.code === 0 && o.servedBy === 'frozen').length >= 200, {
      message: 'traffic through the backend that will freeze',
      timeoutMs: 20_000,
    });

    // RPCs the frozen backend holds when it stops: a server stream and unary calls, all answering only after 60 s.
    const held = { 'x-delay-ms': '60000' };
    const inFlight = [
      serverStream(solo, 3, 16, { timeoutMs: 30_000, metadata: held }),
      unary(solo, Buffer.from('held'), { timeoutMs: 30_000, metadata: held }),
      unary(solo, Buffer.from('held'), { timeoutMs: 30_000, metadata: held }),
    ].map((call) =>
      call.then(
        () => ({ code: 0, details: '', endedAt: performance.now() }),
        (error: unknown) => ({ code: codeOf(error), details: String((error as { details?: string }).details), endedAt: performance.now() }),
      ),
    );
    // Let them reach the backend (traffic keeps flowing meanwhile).
    await new Promise((resolve) => setTimeout(resolve, 300));

    frozenPid = frozen.child.pid as number;
    const frozeAt = performance.now();
    process.kill(frozenPid, 'SIGSTOP');

    const ended = await Promise.all(inFlight);
    const heldTimes = ended.map((e) => Math.round(e.endedAt - frozeAt));
    t.diagnostic(`held RPCs (server stream, 2 unary) ended after the freeze in ${heldTimes.join(', ')} ms with codes ${ended.map((e) => e.code).join(', ')}`);
    for (const e of ended) {
      assert.equal(e.code, grpc.status.UNAVAILABLE);
      // The agent's own answer for a lost connection (ML_UPSTREAM_CONNECTION_LOST), not a protocol fault.
      assert.equal(e.details, `connection to ${frozenEndpoint} lost`);
    }
    for (const ms of heldTimes) assert.ok(ms < 5_000, `a held RPC ended ${ms} ms after the freeze`);

    // Traffic that was in flight on the frozen backend when it stopped ends the same way.
    const caught = outcomes.filter((o) => o.startedAt < frozeAt && o.endedAt > frozeAt + 500);
    if (caught.length > 0) {
      t.diagnostic(`paced RPCs caught in flight: ${caught.length}, ended ${caught.map((o) => Math.round(o.endedAt - frozeAt)).join(', ')} ms after the freeze`);
    }
    for (const o of caught) {
      assert.equal(o.code, grpc.status.UNAVAILABLE);
      assert.ok(o.endedAt - frozeAt < 5_000, `an RPC in flight at the freeze ended ${Math.round(o.endedAt - frozeAt)} ms after it`);
    }

    // From now on the agent keeps trying the frozen backend: none of those connections may become ready.
    const detectedAt = performance.now();
    let readySeen = 0;
    while (performance.now() - detectedAt < 6_000) {
      readySeen = Math.max(readySeen, await readyConnections(agent, frozenEndpoint));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(readySeen, 0, 'a connection to the frozen backend was ready');
    running = false;
    await Promise.all(workers);

    const lost = agent.logs.filter((l) => l.msg === 'upstream connection closed' && l.endpoint === frozenEndpoint);
    const err = (l: Record<string, unknown>): string => String((l.err as { message?: string } | undefined)?.message ?? l.err);
    t.diagnostic(`the agent's word on the frozen backend: ${lost.map(err).join(' | ')}`);
    assert.ok(lost.some((l) => /endpoint silent: no answer to a PING/.test(err(l))), 'the keepalive closed the connection');
    const failedConnects = agent.logs.filter((l) => l.code === 'ML_CONNECT_FAILED' && l.endpoint === frozenEndpoint);
    assert.ok(failedConnects.length > 0, 'the agent tried the frozen backend again');
    assert.ok(failedConnects.every((l) => /no HTTP\/2 SETTINGS from the endpoint/.test(err(l))), `connects failed for want of SETTINGS: ${failedConnects.map(err).join(' | ')}`);

    // RPCs started once the loss is known: the pair goes to the healthy backend; solo ends by its deadline at the latest.
    const after = outcomes.filter((o) => o.startedAt > detectedAt);
    const pairAfter = after.filter((o) => o.service === 'pair');
    const soloAfter = after.filter((o) => o.service === 'solo');
    const slowest = (list: Outcome[]): number => Math.round(Math.max(0, ...list.map((o) => o.endedAt - o.startedAt)));
    t.diagnostic(`after detection: pair ${pairAfter.length} RPCs, ${pairAfter.filter((o) => o.code !== 0).length} failed, slowest ${slowest(pairAfter)} ms`);
    t.diagnostic(`after detection: solo ${soloAfter.length} RPCs, codes ${[...new Set(soloAfter.map((o) => o.code))].join(', ')}, slowest ${slowest(soloAfter)} ms`);
    assert.ok(pairAfter.length > 50);
    assert.deepEqual(pairAfter.filter((o) => o.code !== 0), [], 'every pair RPC after detection succeeds');
    assert.ok(pairAfter.every((o) => o.servedBy === 'healthy'));
    assert.ok(soloAfter.length > 0);
    for (const o of soloAfter) {
      assert.ok([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED].includes(o.code), `solo ended with ${o.code}`);
      assert.ok(o.endedAt - o.startedAt < DEADLINE_MS + 500, `a solo RPC took ${Math.round(o.endedAt - o.startedAt)} ms`);
    }
  } finally {
    running = false;
    if (frozenPid !== undefined) process.kill(frozenPid, 'SIGCONT');
    await Promise.allSettled(workers);
    for (const client of clients) client.close();
    await agent?.stop();
    for (const backend of backends) await backend.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});
