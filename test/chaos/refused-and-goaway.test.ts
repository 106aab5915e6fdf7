// Chaos scenario 9: upstream REFUSED_STREAM and GOAWAY(n) mid-load. Two of three node:http2 backends decline streams
// the two ways HTTP/2 proves a request was not processed — one answers every 5th stream with RST_STREAM(REFUSED_STREAM),
// the other sends GOAWAY with a last-stream-id below streams it already received, every 150 ms — and the third serves
// everything (refusing-backend.ts). (One backend doing both is declined five times in a row now and then and ejected as
// an outlier for 5 s, 10 s, 20 s…: the scenario would then run without it.)
// Every RPC carries its id, and each backend logs every attempt by id. Pass: each declined attempt is sent once more,
// to another endpoint; each RPC is processed exactly once, so the backends' processed count equals the client's
// successes (no duplicates); no RPC fails (the clean backend could always have served it).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import { makeEchoClient, unary } from '../../lab/grpc-peers.ts';
import { startAgent } from '../support/agent-process.ts';
import { chaosScale } from './chaos-scale.ts';
import { type Attempt, RPC_ID_HEADER, type RefusingBackend, startRefusingBackend } from './refusing-backend.ts';

const AUTHORITY = 'refusing.default.svc.cluster.local:50051';
const RPCS = chaosScale(6_000, 60_000);
const CONCURRENCY = 32;
const DEADLINE_MS = 5_000;

async function retriesByReason(admin: string): Promise<Record<string, number>> {
  const text = await (await fetch(`http://${admin}/metrics`)).text();
  const retries: Record<string, number> = {};
  for (const match of text.matchAll(/^meshlite_transparent_retries_total\{[^}]*reason="([^"]+)"[^}]*\} (\d+)$/gm)) retries[match[1]] = Number(match[2]);
  return retries;
}

test(`REFUSED_STREAM and GOAWAY(n) from two of three backends mid-load (${RPCS} RPCs): each declined attempt sent once more elsewhere, each RPC processed exactly once, none fails`, { timeout: chaosScale(120_000, 600_000) }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'meshlite-chaos-refused-'));
  const log: Attempt[] = [];
  const backends: RefusingBackend[] = await Promise.all([
    startRefusingBackend({ id: 'refuses', refuseEvery: 5 }, log),
    startRefusingBackend({ id: 'goaways', goawayEveryMs: 150 }, log),
    startRefusingBackend({ id: 'clean' }, log),
  ]);
  const file = join(dir, 'services.yaml');
  const endpoints = backends.map((backend) => `      - address: 127.0.0.1:${backend.port}`).join('\n');
  // Round-robin keeps the declining backends in the rotation (p2c-ewma steers away from them): the scenario is the
  // retries, not the balancing. No backend declines five attempts in a row, so none is ejected as an outlier.
  writeFileSync(file, `services:\n  - name: refusing\n    namespace: default\n    port: 50051\n    balancer: round-robin\n    endpoints:\n${endpoints}\n`);
  const agent = await startAgent(['--discovery', 'static', '--static-file', file]);
  const client = makeEchoClient(agent.listen, { 'grpc.default_authority': AUTHORITY });
  let next = 0;
  let succeeded = 0;
  const failures: string[] = [];
  const wrongEchoes: string[] = [];
  const startedAt = performance.now();
  let retries: Record<string, number> = {};
  const ejections: string[] = [];
  try {
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < RPCS) {
          const rpc = String(next++);
          try {
            const { message } = await unary(client, Buffer.from(`rpc-${rpc}`), { timeoutMs: DEADLINE_MS, metadata: { [RPC_ID_HEADER]: rpc } });
            succeeded++;
            if (message.toString() !== `rpc-${rpc}`) wrongEchoes.push(rpc);
          } catch (error) {
            const status = error as grpc.ServiceError;
            failures.push(`rpc ${rpc}: ${status.code} ${status.details}`);
          }
        }
      }),
    );
    retries = await retriesByReason(agent.admin);
    const byAddress = new Map(backends.map((backend) => [`127.0.0.1:${backend.port}`, backend.id]));
    for (const entry of agent.logs) {
      if (entry.code === 'ML_ENDPOINT_EJECTED') ejections.push(`${byAddress.get(String(entry.endpoint)) ?? entry.endpoint} for ${entry.forMs} ms`);
    }
  } finally {
    client.close();
    assert.equal(await agent.stop(), 0);
    await Promise.all(backends.map((backend) => backend.close()));
    rmSync(dir, { recursive: true, force: true });
  }
  const elapsedS = (performance.now() - startedAt) / 1000;

  // Every RPC's attempts in the order the backends decided them.
  const attempts = new Map<string, Attempt[]>();
  for (const attempt of log) {
    const list = attempts.get(attempt.rpc);
    if (list === undefined) attempts.set(attempt.rpc, [attempt]);
    else list.push(attempt);
  }
  const processedTwice: string[] = [];
  const neverProcessed: string[] = [];
  const retriedOnSameEndpoint: string[] = [];
  let declined = 0;
  for (const [rpc, list] of attempts) {
    const processed = list.filter((attempt) => attempt.outcome === 'processed').length;
    if (processed > 1) processedTwice.push(`${rpc}: ${list.map((a) => `${a.backend} ${a.outcome}`).join(', ')}`);
    if (processed === 0) neverProcessed.push(`${rpc}: ${list.map((a) => `${a.backend} ${a.outcome}`).join(', ')}`);
    for (let i = 0; i < list.length - 1; i++) {
      declined++;
      if (list[i + 1].backend === list[i].backend) retriedOnSameEndpoint.push(`${rpc}: ${list.map((a) => `${a.backend} ${a.outcome}`).join(', ')}`);
    }
    if (list.at(-1)?.outcome !== 'processed') declined++;
  }
  const processedTotal = backends.reduce((sum, backend) => sum + backend.counts.processed, 0);
  for (const backend of backends) t.diagnostic(`${backend.id}: ${JSON.stringify(backend.counts)}`);
  t.diagnostic(`${RPCS} RPCs in ${elapsedS.toFixed(1)} s (${Math.round(RPCS / elapsedS)} RPC/s): ${succeeded} OK, ${failures.length} failed${failures.length === 0 ? '' : ` (${failures.slice(0, 3).join(' | ')})`}; backends processed ${processedTotal}`);
  t.diagnostic(`${declined} attempts declined (refused or cut by a GOAWAY); the agent's transparent retries: ${JSON.stringify(retries)}; retried on the endpoint that declined: ${retriedOnSameEndpoint.length}${retriedOnSameEndpoint.length === 0 ? '' : ` (e.g. ${retriedOnSameEndpoint.slice(0, 3).join(' | ')})`}`);
  t.diagnostic(`outlier ejections: ${ejections.length === 0 ? 'none' : ejections.join(', ')}`);
  t.diagnostic(`processed twice: ${processedTwice.length}${processedTwice.length === 0 ? '' : ` (e.g. ${processedTwice.slice(0, 3).join(' | ')})`}; declined and never processed: ${neverProcessed.length}${neverProcessed.length === 0 ? '' : ` (e.g. ${neverProcessed.slice(0, 3).join(' | ')})`}`);
  // The scenario happened: both kinds of refusal, mid-load.
  assert.ok(backends[0].counts.refused > 0, 'REFUSED_STREAM was sent');
  assert.ok(backends[1].counts.cut > 0, 'GOAWAYs cut streams already sent');
  assert.deepEqual(failures, [], 'no RPC failed');
  assert.deepEqual(wrongEchoes, [], 'every RPC got its own answer');
  assert.deepEqual(processedTwice, [], 'no RPC processed twice');
  assert.equal(processedTotal, succeeded, "the backends' processed count equals the client's successes");
  assert.equal(attempts.size, RPCS, 'every RPC reached a backend');
  assert.deepEqual(retriedOnSameEndpoint, [], 'each declined attempt went to another endpoint');
  // Every declined attempt but an RPC's last was retried (more: a GOAWAY also cuts streams whose HEADERS reach the
  // backend after it, and a closing node:http2 session refuses new streams itself; the backend never sees those).
  assert.ok((retries.refused_stream ?? 0) >= declined - neverProcessed.length, 'the agent retried each declined attempt');
});
