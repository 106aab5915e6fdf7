// Chaos scenario 8: a Deployment's life under load — scale 3 → 6, a rolling restart of every backend (a new one up
// before an old one goes), scale 6 → 1 — at ≥ 1000 RPC/s. Each backend leaves the way a pod does: its endpoint is
// first marked `terminating: true` (what the EndpointSlice says once the pod is deleted), the pod gets SIGTERM at the
// same time (grpc-go's GracefulStop: the listener closes, GOAWAY, in-flight calls finish), and the endpoint is removed
// once the process has exited. The backends are grpc-go servers: they start in milliseconds and cost little CPU, so the
// two cores go to the load and the agent rather than to starting a dozen Node processes. Pass: 0 non-OK RPCs.

import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { type GoServerHandle, grpcGoUnavailable, startGoServer } from '../../lab/grpc-go-peers.ts';
import { makeEchoClient, unary } from '../../lab/grpc-peers.ts';
import { waitFor } from '../../lab/wait-for.ts';
import { type AgentProcess, startAgent } from '../support/agent-process.ts';
import { chaosScale } from './chaos-scale.ts';

const AUTHORITY = 'rolling.default.svc.cluster.local:50051';
const DEADLINE_MS = 5_000;
const CONCURRENCY = 48;
/** RPCs that complete between two steps: load keeps flowing through every state of the Deployment. */
const RPCS_BETWEEN_STEPS = chaosScale(1_000, 5_000);
/** Each round: 3 → 6, rolling restart of all 6, 6 → 1 (and back to 3 for the next round). */
const ROUNDS = chaosScale(1, 3);

interface Member {
  backend: GoServerHandle;
  address: string;
  terminating: boolean;
}

function writeAtomically(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

function serviceFile(members: readonly Member[]): string {
  const lines = ['services:', '  - name: rolling', '    namespace: default', '    port: 50051', '    endpoints:'];
  for (const member of members) {
    lines.push(`      - address: ${member.address}`);
    if (member.terminating) lines.push('        terminating: true');
  }
  return `${lines.join('\n')}\n`;
}

/** meshlite_requests_total of the service by endpoint (all codes). */
async function requestsByEndpoint(agent: AgentProcess): Promise<Map<string, number>> {
  const text = await (await fetch(`http://${agent.admin}/metrics`)).text();
  const counts = new Map<string, number>();
  for (const match of text.matchAll(/^meshlite_requests_total\{[^}]*dst_endpoint="([^"]+)"[^}]*\} (\d+)$/gm)) {
    counts.set(match[1], (counts.get(match[1]) ?? 0) + Number(match[2]));
  }
  return counts;
}

test(`scale 3 → 6, a rolling restart of all backends, 6 → 1 (${ROUNDS} round(s)), each backend terminating then SIGTERM (GOAWAY) then removed, at ≥ 1000 RPC/s: 0 non-OK RPCs`, { skip: grpcGoUnavailable(), timeout: chaosScale(120_000, 600_000) }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'meshlite-chaos-rolling-'));
  const file = join(dir, 'services.yaml');
  let serial = 0;
  const members: Member[] = [];
  const spawnMember = async (): Promise<Member> => {
    const backend = await startGoServer({ id: `r${++serial}` });
    return { backend, address: `127.0.0.1:${backend.port}`, terminating: false };
  };
  const publish = (): void => writeAtomically(file, serviceFile(members));
  members.push(...(await Promise.all([spawnMember(), spawnMember(), spawnMember()])));
  publish();
  const agent = await startAgent(['--discovery', 'static', '--static-file', file]);
  const client = makeEchoClient(agent.listen, { 'grpc.default_authority': AUTHORITY });
  let running = true;
  let completed = 0;
  let succeeded = 0;
  const failures: string[] = [];
  const workers = Array.from({ length: CONCURRENCY }, async () => {
    while (running) {
      try {
        await unary(client, Buffer.from('rolling'), { timeoutMs: DEADLINE_MS });
        succeeded++;
      } catch (error) {
        const status = error as grpc.ServiceError;
        failures.push(`${grpc.status[status.code]}: ${status.details}`);
      }
      completed++;
    }
  });
  const steps: string[] = [];
  const loadFlows = async (what: string): Promise<void> => {
    const from = completed;
    await waitFor(() => completed >= from + RPCS_BETWEEN_STEPS, { timeoutMs: 30_000, message: `load flowing after ${what}` });
  };
  /** Adds fresh backends and waits until the agent sent each some requests. */
  const scaleUp = async (count: number): Promise<void> => {
    const added = await Promise.all(Array.from({ length: count }, spawnMember));
    members.push(...added);
    publish();
    await waitFor(async () => {
      const counts = await requestsByEndpoint(agent);
      return added.every((member) => (counts.get(member.address) ?? 0) > 0);
    }, { timeoutMs: 15_000, intervalMs: 50, message: `the agent balancing onto ${added.map((m) => m.address).join(', ')}` });
  };
  /** As Kubernetes deletes pods: endpoints marked terminating and SIGTERM at once; removed once the processes exited. */
  const terminate = async (leaving: readonly Member[]): Promise<void> => {
    for (const member of leaving) member.terminating = true;
    publish();
    await Promise.all(leaving.map((member) => member.backend.stop({ graceful: true })));
    for (const member of leaving) members.splice(members.indexOf(member), 1);
    publish();
  };
  let startedAt = 0;
  let stoppedAt = 0;
  let completedAtStart = 0;
  let steadyRate = 0;
  try {
    await waitFor(() => completed >= 2_000, { timeoutMs: 30_000, message: 'load flowing' });
    const steadyFrom = { at: performance.now(), completed };
    await waitFor(() => performance.now() - steadyFrom.at >= 2_000, { timeoutMs: 10_000, intervalMs: 50, message: 'two seconds of steady load' });
    steadyRate = ((completed - steadyFrom.completed) * 1000) / (performance.now() - steadyFrom.at);
    startedAt = performance.now();
    completedAtStart = completed;
    for (let round = 0; round < ROUNDS; round++) {
      if (members.length < 3) {
        await scaleUp(3 - members.length);
        await loadFlows('scaling back to 3');
      }
      await scaleUp(3);
      steps.push(`${round}: 3 → 6`);
      await loadFlows('3 → 6');
      for (const old of [...members]) {
        await scaleUp(1);
        await terminate([old]);
        await loadFlows(`restarting ${old.address}`);
      }
      steps.push(`${round}: rolling restart of 6`);
      await terminate(members.slice(1));
      steps.push(`${round}: 6 → 1`);
      await loadFlows('6 → 1');
    }
    stoppedAt = performance.now();
  } finally {
    running = false;
    await Promise.all(workers);
    client.close();
    assert.equal(await agent.stop(), 0);
    await Promise.all(members.map((member) => member.backend.stop({ graceful: false })));
    rmSync(dir, { recursive: true, force: true });
  }
  const rate = ((completed - completedAtStart) * 1000) / (stoppedAt - startedAt);
  t.diagnostic(`${steps.join('; ')}; ${serial} backends in all over ${((stoppedAt - startedAt) / 1000).toFixed(1)} s`);
  t.diagnostic(`${Math.round(rate)} RPC/s through the changes (${Math.round(steadyRate)} RPC/s with 3 steady backends before them); ${succeeded} RPCs OK, ${failures.length} not OK${failures.length === 0 ? '' : `: ${[...new Set(failures)].slice(0, 5).join(' | ')}`}`);
  assert.deepEqual(failures, [], 'no RPC ended non-OK');
  assert.ok(rate >= 1000, `${Math.round(rate)} RPC/s: the scenario needs ≥ 1000`);
});
