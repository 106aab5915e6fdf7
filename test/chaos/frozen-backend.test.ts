// Chaos scenario 1: one of three backends freezes (SIGSTOP: its kernel still accepts connections, it answers nothing)
// under ≥ 1000 RPC/s with 5 s deadlines, with each balancer. Pass: the RPCs in flight on it end UNAVAILABLE within 5 s
// of the freeze (upstream keepalive), no new RPC goes to it from 5 s after the freeze on (outlier ejection, and a
// connection to it is never ready without the endpoint's SETTINGS), and no other RPC fails.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { type BackendProcess, spawnBackend } from '../../lab/grpc-backend-process.ts';
import { makeEchoClient, unary } from '../../lab/grpc-peers.ts';
import { waitFor } from '../../lab/wait-for.ts';
import { BALANCER_NAMES, type BalancerName } from '../../agent/vocabulary/balancer-names.ts';
import { type AgentProcess, startAgent } from '../support/agent-process.ts';
import { chaosScale } from './chaos-scale.ts';

const AUTHORITY = 'frozen.default.svc.cluster.local:50051';
const DEADLINE_MS = 5_000;
/** How long the backend stays frozen: past its first ejection's end, so a readmission on trial is part of it. */
const FROZEN_MS = 12_000;
const CONCURRENCY = 48;

/** meshlite_requests_total of one endpoint by gRPC code, and its in-flight gauge. */
async function endpointCounts(agent: AgentProcess, endpoint: string): Promise<{ byCode: Map<string, number>; inFlight: number }> {
  const text = await (await fetch(`http://${agent.admin}/metrics`)).text();
  const byCode = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('meshlite_requests_total{') || !line.includes(`dst_endpoint="${endpoint}"`)) continue;
    const code = /grpc_code="([^"]+)"/.exec(line)?.[1] ?? '?';
    byCode.set(code, (byCode.get(code) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  const inFlight = Number(new RegExp(`^meshlite_endpoint_in_flight\\{[^}]*dst_endpoint="${endpoint}"[^}]*\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return { byCode, inFlight };
}

const total = (byCode: Map<string, number>): number => [...byCode.values()].reduce((sum, count) => sum + count, 0);

/** npm test: round-robin, which keeps sending to the frozen endpoint until it is ejected (the hardest case). */
const balancers: readonly BalancerName[] = chaosScale(['round-robin'], BALANCER_NAMES);

for (const balancer of balancers) {
  test(`${balancer}: one of three backends frozen under ≥ 1000 RPC/s with 5 s deadlines — its RPCs end UNAVAILABLE within 5 s, none go to it after 5 s, no other fails`, { timeout: 120_000 }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'meshlite-chaos-frozen-'));
    const backends: BackendProcess[] = await Promise.all(['f1', 'f2', 'f3'].map((id) => spawnBackend(id)));
    const frozen = `127.0.0.1:${backends[0].port}`;
    const file = join(dir, 'services.yaml');
    const endpoints = backends.map((backend) => `      - address: 127.0.0.1:${backend.port}`).join('\n');
    writeFileSync(file, `services:\n  - name: frozen\n    namespace: default\n    port: 50051\n    balancer: ${balancer}\n    endpoints:\n${endpoints}\n`);
    const agent = await startAgent(['--discovery', 'static', '--static-file', file]);
    const client = makeEchoClient(agent.listen, { 'grpc.default_authority': AUTHORITY });
    let running = true;
    let completed = 0;
    const failures: Array<{ code: number; endedAt: number; details: string }> = [];
    const workers = Array.from({ length: CONCURRENCY }, async () => {
      while (running) {
        try {
          await unary(client, Buffer.from('frozen'), { timeoutMs: DEADLINE_MS });
        } catch (error) {
          const status = error as grpc.ServiceError;
          failures.push({ code: status.code, endedAt: performance.now(), details: status.details });
        }
        completed++;
      }
    });
    let frozenAt = 0;
    try {
      await waitFor(() => completed >= 2_000, { timeoutMs: 30_000, message: 'load flowing' });
      const rateFrom = { at: performance.now(), completed };
      await waitFor(() => performance.now() - rateFrom.at >= 2_000, { timeoutMs: 10_000, intervalMs: 50, message: 'two seconds of load' });
      const rate = ((completed - rateFrom.completed) * 1000) / (performance.now() - rateFrom.at);
      t.diagnostic(`${Math.round(rate)} RPC/s before the freeze`);
      assert.ok(rate >= 1000, `${Math.round(rate)} RPC/s: the scenario needs ≥ 1000`);
      const before = await endpointCounts(agent, frozen);
      assert.ok(total(before.byCode) > 0, 'the backend to freeze had its share');
      process.kill(backends[0].child.pid as number, 'SIGSTOP');
      frozenAt = performance.now();
      // Five seconds on: everything that was in flight on it has ended, and from now on it gets nothing new.
      await waitFor(() => performance.now() - frozenAt >= DEADLINE_MS, { timeoutMs: 10_000, intervalMs: 50, message: 'five seconds of freeze' });
      const atFive = await endpointCounts(agent, frozen);
      await waitFor(() => performance.now() - frozenAt >= FROZEN_MS, { timeoutMs: 20_000, intervalMs: 100, message: 'the rest of the freeze' });
      const atEnd = await endpointCounts(agent, frozen);
      const ended = new Map([...atFive.byCode].map(([code, count]) => [code, count - (before.byCode.get(code) ?? 0)]));
      t.diagnostic(`on the frozen endpoint within 5 s: ${JSON.stringify(Object.fromEntries(ended))}; in flight at 5 s: ${atFive.inFlight}; RPCs ended there from 5 s to ${FROZEN_MS / 1000} s: ${total(atEnd.byCode) - total(atFive.byCode)}`);
      t.diagnostic(`client failures: ${failures.length}, the last ${failures.length === 0 ? '-' : Math.round(Math.max(...failures.map((f) => f.endedAt)) - frozenAt)} ms after the freeze, of ${completed} RPCs`);
      assert.equal(atFive.inFlight, 0, 'nothing in flight on the frozen endpoint 5 s after the freeze');
      assert.equal(total(atEnd.byCode), total(atFive.byCode), 'no RPC ended on the frozen endpoint after 5 s: none was sent to it');
      for (const failure of failures) {
        assert.equal(failure.code, grpc.status.UNAVAILABLE, `a failure other than UNAVAILABLE: ${failure.details}`);
        assert.ok(failure.endedAt - frozenAt <= DEADLINE_MS, `a failure ${Math.round(failure.endedAt - frozenAt)} ms after the freeze: ${failure.details}`);
      }
      // Every client failure is one of the frozen endpoint's own RPCs (the agent counted them there, not OK).
      const frozenNotOk = total(ended) - (ended.get('0') ?? 0);
      assert.equal(failures.length, frozenNotOk, 'no other RPC failed');
    } finally {
      running = false;
      if (frozenAt > 0) process.kill(backends[0].child.pid as number, 'SIGCONT');
      await Promise.all(workers);
      client.close();
      assert.equal(await agent.stop(), 0);
      await Promise.all(backends.map((backend) => backend.kill()));
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
