// Chaos scenario 6: rapid reset (CVE-2023-44487). One client opens and resets streams at 100k a second — whole unary
// requests, each followed by RST_STREAM(CANCEL) — through the real agent to grpc-js backends. The agent answers
// GOAWAY(ENHANCE_YOUR_CALM) within a second, fewer than 1000 of those requests reach the backends, and another client's
// RPCs on the same upstream connections all succeed meanwhile. The full form repeats the attack from fresh connections.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type GrpcServerHandle, makeEchoClient, startGrpcServer, unary } from '../../lab/grpc-peers.ts';
import { type AgentProcess, startAgent } from '../support/agent-process.ts';
import { chaosScale } from './chaos-scale.ts';
import { RawHttp2Client, processCpuMs, rapidResetBatch } from './raw-http2-client.ts';

const AUTHORITY = 'greeter.default.svc.cluster.local:50051';
/** HEADERS+RST_STREAM pairs per second from the attacker. */
const RATE_PER_SECOND = 100_000;
/** How long one attack may run if nothing stops it. */
const ATTACK_MS = 1000;
/**
 * Pairs per attack: 20 ms of the rate, 4 times the limit's burst. The attacker then stops writing and reads: the agent
 * resets a connection it closes with input unread, and a write after that reset fails and makes Node drop the socket
 * with the GOAWAY still unread (an attacker does not care; the test must see the GOAWAY).
 */
const PAIRS_PER_ATTACK = 2_000;
/** Attacks, each from a fresh connection once the previous one was sent away. */
const ROUNDS = chaosScale(1, 10);
/** The other client: unary RPCs in flight at once. */
const OTHER_CONCURRENCY = 8;
const ENHANCE_YOUR_CALM = 0xb;

function staticFile(backends: GrpcServerHandle[]): string {
  const lines = ['services:', '  - name: greeter', '    namespace: default', '    port: 50051', '    balancer: round-robin', '    endpoints:'];
  for (const backend of backends) lines.push(`      - address: 127.0.0.1:${backend.port}`);
  return `${lines.join('\n')}\n`;
}

const backendCalls = (backends: GrpcServerHandle[]): number => backends.reduce((total, backend) => total + backend.calls.count, 0);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Unary RPCs from a well-behaved client until `stop`; each success is exactly one call at a backend. */
function otherClient(agent: AgentProcess) {
  const client = makeEchoClient(agent.listen, { 'grpc.default_authority': AUTHORITY });
  const result = { ok: 0, failed: [] as string[] };
  let running = true;
  const workers = Array.from({ length: OTHER_CONCURRENCY }, async (_, worker) => {
    for (let i = 0; running; i++) {
      const request = Buffer.from(`other-${worker}-${i}`);
      try {
        const { message } = await unary(client, request, { timeoutMs: 5_000 });
        if (message.equals(request)) result.ok++;
        else result.failed.push('response is not the request');
      } catch (error) {
        result.failed.push(String((error as Error).message));
      }
    }
  });
  return {
    result,
    stop: async () => {
      running = false;
      await Promise.all(workers);
      client.close();
    },
  };
}

interface AttackResult {
  /** Pairs handed to the socket before the agent's GOAWAY arrived. */
  sent: number;
  goawayCode: number | null;
  goawayAfterMs: number | null;
  lastStreamId: number | null;
  debug: string;
  /** Frames received by type, and the socket's error if any: what the attacker saw. */
  seen: string;
}

/** One attacker connection: paced HEADERS+DATA+RST_STREAM triples until GOAWAY, close, PAIRS_PER_ATTACK or ATTACK_MS. */
async function attack(agent: AgentProcess): Promise<AttackResult> {
  const client = await RawHttp2Client.connect(agent.listen);
  let socketError = '';
  client.socket.on('error', (error) => {
    socketError = error.message;
  });
  const started = performance.now();
  let sent = 0;
  let nextStreamId = 1;
  while (!client.done && sent < PAIRS_PER_ATTACK && performance.now() - started < ATTACK_MS) {
    const due = Math.min(PAIRS_PER_ATTACK, Math.floor(((performance.now() - started) * RATE_PER_SECOND) / 1000));
    const count = Math.min(due - sent, 5000);
    if (count > 0 && client.write(rapidResetBatch(AUTHORITY, nextStreamId, count))) {
      sent += count;
      nextStreamId += 2 * count;
    }
    await client.pace(2);
  }
  await client.until(() => client.done, 2000, 'GOAWAY or close').catch(() => {});
  client.close();
  const goaway = client.goaway;
  return {
    sent,
    goawayCode: goaway?.code ?? null,
    goawayAfterMs: goaway === null ? null : goaway.at - started,
    lastStreamId: goaway?.lastStreamId ?? null,
    debug: goaway?.debug ?? '',
    seen: `frames by type ${JSON.stringify([...client.received])}${socketError === '' ? '' : `, ${socketError}`}`,
  };
}

test(`rapid reset at ${RATE_PER_SECOND / 1000}k/s: GOAWAY(ENHANCE_YOUR_CALM) within 1 s, < 1000 requests at the backends, other RPCs all succeed (${ROUNDS} attack(s))`, { timeout: 180_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'meshlite-rapid-reset-'));
  const backends = await Promise.all(['rr-1', 'rr-2', 'rr-3'].map((id) => startGrpcServer({ id })));
  let agent: AgentProcess | null = null;
  let other: ReturnType<typeof otherClient> | null = null;
  try {
    const file = join(dir, 'services.yaml');
    writeFileSync(file, staticFile(backends));
    agent = await startAgent(['--discovery', 'static', '--static-file', file]);
    other = otherClient(agent);
    // The other client is up and its upstream connections are open before the first attack.
    while (other.result.ok < 200 && other.result.failed.length === 0) await sleep(20);
    const pid = agent.child.pid as number;
    for (let round = 1; round <= ROUNDS; round++) {
      const callsBefore = backendCalls(backends);
      const okBefore = other.result.ok;
      const cpuBefore = processCpuMs(pid);
      const wallBefore = performance.now();
      const result = await attack(agent);
      // Requests of the attack still on their way to a backend arrive within this.
      await sleep(1000);
      const cpuMs = processCpuMs(pid) - cpuBefore;
      const wallMs = performance.now() - wallBefore;
      // Backend calls that are not the other client's successes came from the attack (the other client's in-flight
      // RPCs at either end make this off by at most OTHER_CONCURRENCY).
      const attackCalls = backendCalls(backends) - callsBefore - (other.result.ok - okBefore);
      t.diagnostic(
        `round ${round}: ${result.sent} HEADERS+RST_STREAM sent, GOAWAY ${result.goawayCode} after ${result.goawayAfterMs?.toFixed(1)} ms ` +
          `(last stream ${result.lastStreamId}, "${result.debug}"; ${result.seen}); ${attackCalls} of them reached the backends; ` +
          `agent CPU ${cpuMs.toFixed(0)} ms in ${wallMs.toFixed(0)} ms; other client ${other.result.ok - okBefore} RPCs OK`,
      );
      assert.equal(result.goawayCode, ENHANCE_YOUR_CALM, `round ${round}: GOAWAY(ENHANCE_YOUR_CALM)`);
      assert.ok((result.goawayAfterMs as number) < 1000, `round ${round}: GOAWAY after ${result.goawayAfterMs} ms`);
      assert.match(result.debug, /^rapid reset: /);
      assert.ok(attackCalls < 1000, `round ${round}: ${attackCalls} attack requests reached the backends`);
    }
    // Each closed attacker is counted, and logged once a minute at most (one line here, with the limit it passed).
    const metrics = await (await fetch(`http://${agent.admin}/metrics`)).text();
    assert.match(metrics, new RegExp(`^meshlite_agent_errors_total\\{code="ML_PEER_FLOOD"\\} ${ROUNDS}$`, 'm'));
    const floodLines = agent.logs.filter((line) => line.code === 'ML_PEER_FLOOD');
    assert.equal(floodLines.length, 1, 'one line per minute, not one per connection or frame');
    assert.match(String((floodLines[0].err as { message?: string } | undefined)?.message), /^rapid reset: /);
    await sleep(500);
    await other.stop();
    t.diagnostic(`other client: ${other.result.ok} RPCs OK, ${other.result.failed.length} failed`);
    assert.deepEqual(other.result.failed.slice(0, 5), [], 'every RPC of the other client succeeds');
    assert.ok(other.result.ok > 200);
    // The agent still serves a new client after the attacks.
    const after = makeEchoClient(agent.listen, { 'grpc.default_authority': AUTHORITY });
    const { message } = await unary(after, Buffer.from('after'), { timeoutMs: 5_000 });
    assert.equal(message.toString(), 'after');
    after.close();
  } finally {
    await other?.stop();
    await agent?.stop();
    await Promise.all(backends.map((backend) => backend.close()));
    rmSync(dir, { recursive: true, force: true });
  }
});
