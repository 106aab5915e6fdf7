// Chaos scenario 5: a service's only backend goes away for 2 s (it stops as a gRPC server in a terminating pod does,
// then a new one listens on the same address) while clients call it with 5 s deadlines. Pass: every RPC succeeds —
// the agent holds the requests that arrive meanwhile and sends them once the backend is back — and the first success
// comes ≤ 500 ms after it listens again.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type BackendProcess, spawnBackend } from '../../lab/grpc-backend-process.ts';
import { makeEchoClient, unary } from '../../lab/grpc-peers.ts';
import { waitFor } from '../../lab/wait-for.ts';
import { startAgent } from '../support/agent-process.ts';
import { chaosScale } from './chaos-scale.ts';

/** The backend's fixed address: the one that comes back must be the one the agent knows. */
const BACKEND_PORT = 16401;
const AUTHORITY = 'restarts.default.svc.cluster.local:50051';
const OUTAGE_MS = 2_000;
const DEADLINE_MS = 5_000;

test('the only backend down for 2 s under load with 5 s deadlines: every RPC succeeds, the first ≤ 500 ms after it is back', { timeout: 180_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'meshlite-chaos-restart-'));
  const file = join(dir, 'services.yaml');
  writeFileSync(file, `services:\n  - name: restarts\n    namespace: default\n    port: 50051\n    endpoints:\n      - address: 127.0.0.1:${BACKEND_PORT}\n`);
  let backend: BackendProcess = await spawnBackend('before', { port: BACKEND_PORT });
  const agent = await startAgent(['--discovery', 'static', '--static-file', file]);
  const client = makeEchoClient(agent.listen, { 'grpc.default_authority': AUTHORITY });
  const outages = chaosScale(1, 3);
  const concurrency = chaosScale(8, 32);
  let running = true;
  let succeeded = 0;
  const failures: string[] = [];
  /** Completion times (performance.now()) of successful RPCs. */
  const successes: number[] = [];
  const workers = Array.from({ length: concurrency }, async () => {
    while (running) {
      try {
        await unary(client, Buffer.from('restart'), { timeoutMs: DEADLINE_MS });
        succeeded++;
        successes.push(performance.now());
      } catch (error) {
        failures.push((error as Error).message);
      }
    }
  });
  const firstSuccessAfterBack: number[] = [];
  try {
    await waitFor(() => succeeded >= 200, { timeoutMs: 30_000, message: 'load flowing' });
    for (let outage = 0; outage < outages; outage++) {
      await backend.stop();
      // The outage itself: its length is the scenario, not a wait for something to happen.
      await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
      backend = await spawnBackend(`after-${outage}`, { port: BACKEND_PORT });
      const backAt = performance.now();
      await waitFor(() => successes.some((at) => at >= backAt), { timeoutMs: DEADLINE_MS, message: 'a success after the backend came back' });
      const first = (successes.find((at) => at >= backAt) as number) - backAt;
      firstSuccessAfterBack.push(first);
      const before = succeeded;
      await waitFor(() => succeeded >= before + 200, { timeoutMs: 30_000, message: 'load flowing again' });
    }
  } finally {
    running = false;
    await Promise.all(workers);
    client.close();
    assert.equal(await agent.stop(), 0);
    await backend.kill();
    rmSync(dir, { recursive: true, force: true });
  }
  t.diagnostic(`${succeeded} RPCs succeeded, ${failures.length} failed; first success after the backend was back: ${firstSuccessAfterBack.map((ms) => `${Math.round(ms)} ms`).join(', ')}`);
  assert.deepEqual(failures, []);
  for (const ms of firstSuccessAfterBack) assert.ok(ms <= 500, `first success ${Math.round(ms)} ms after the backend was back`);
});
