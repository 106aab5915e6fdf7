// Chaos scenario 2: grpc-go backends that send GOAWAY to every connection a second old (MaxConnectionAge 1 s, no
// MaxConnectionAgeGrace: a draining connection stays until its last stream ends) while streams stay open on every
// draining connection — bidi streams held for the whole test (minutes in the full form) and server streams held for
// seconds, opened all along so that each connection has some when its GOAWAY comes. Draining connections must not
// count toward the endpoint's connection limit (the agent closes them 10 min after the GOAWAY). Pass: every unary RPC
// of a grpc-go client succeeds (10k in the full form), no held stream breaks, and the backends saw each call once.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { type GoServerHandle, grpcGoUnavailable, runGoClient, startGoServer } from '../../lab/grpc-go-peers.ts';
import { echoService, makeEchoClient, META, serverStream } from '../../lab/grpc-peers.ts';
import { waitFor } from '../../lab/wait-for.ts';
import { startAgent } from '../support/agent-process.ts';
import { chaosScale } from './chaos-scale.ts';

const AUTHORITY = 'churn.default.svc.cluster.local:50051';
const MAX_CONNECTION_AGE_MS = 1_000;
/** Unary RPCs of the grpc-go client, and their rate: 10k over about 2.8 min in the full form. */
const UNARY_COUNT = chaosScale(2_000, 10_000);
const UNARY_RATE = chaosScale(200, 60);
/** Bidi streams opened first and held until the unary load has ended; each echoes a message every PING_EVERY_MS. */
const HELD_BIDI = chaosScale(4, 8);
const PING_EVERY_MS = 500;
/** Server streams opened one every SHORT_STREAM_EVERY_MS, each held SHORT_STREAM_HOLD_MS by the server (x-delay-ms). */
const SHORT_STREAM_EVERY_MS = 50;
const SHORT_STREAM_HOLD_MS = chaosScale(3_000, 5_000);
const SHORT_STREAM_MESSAGES = 3;

/** A bidi stream held open: sends a message every PING_EVERY_MS and counts the echoes that come back in order. */
function holdBidi(client: grpc.Client, index: number) {
  const call = client.makeBidiStreamRequest(echoService.BidiStream.path, (b: Buffer) => b, (b: Buffer) => b, new grpc.Metadata(), {});
  let sent = 0;
  let echoed = 0;
  const misordered: string[] = [];
  call.on('data', (message: Buffer) => {
    const expected = `held-${index}-${echoed}`;
    if (message.toString() !== expected) misordered.push(`${message.toString()} for ${expected}`);
    echoed++;
  });
  const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
  call.on('error', () => {});
  const send = (): void => {
    call.write(Buffer.from(`held-${index}-${sent++}`));
  };
  send();
  const timer = setInterval(send, PING_EVERY_MS);
  return {
    get sent() {
      return sent;
    },
    get echoed() {
      return echoed;
    },
    misordered,
    /** Clean-up after a failure: no more sends, the call cancelled. */
    abandon(): void {
      clearInterval(timer);
      call.cancel();
    },
    /** Stops sending, waits for the echo of everything sent, ends the call and resolves with its status. */
    async finish(): Promise<grpc.StatusObject> {
      clearInterval(timer);
      await waitFor(() => echoed >= sent, { timeoutMs: 10_000, message: `held stream ${index}'s last echoes` }).catch(() => {});
      call.end();
      return status;
    },
  };
}

test(`grpc-go backends with MaxConnectionAge 1 s (no grace) and streams open on every draining connection: 0 of ${UNARY_COUNT} unary RPCs fail, no held stream breaks`, { skip: grpcGoUnavailable(), timeout: chaosScale(120_000, 600_000) }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'meshlite-chaos-goaway-'));
  const backends: GoServerHandle[] = await Promise.all(['g1', 'g2', 'g3'].map((id) => startGoServer({ id, maxConnectionAgeMs: MAX_CONNECTION_AGE_MS })));
  const file = join(dir, 'services.yaml');
  const endpoints = backends.map((backend) => `      - address: 127.0.0.1:${backend.port}`).join('\n');
  writeFileSync(file, `services:\n  - name: churn\n    namespace: default\n    port: 50051\n    endpoints:\n${endpoints}\n`);
  const agent = await startAgent(['--discovery', 'static', '--static-file', file]);
  const client = makeEchoClient(agent.listen, { 'grpc.default_authority': AUTHORITY });
  const held = Array.from({ length: HELD_BIDI }, (_, index) => holdBidi(client, index));
  const shortStreams: Array<Promise<string>> = [];
  let opening: NodeJS.Timeout | undefined;
  try {
    await waitFor(() => held.every((stream) => stream.echoed >= 1), { timeoutMs: 15_000, message: 'every held stream echoing' });
    opening = setInterval(() => {
      const call = serverStream(client, SHORT_STREAM_MESSAGES, 16, { metadata: { [META.delayMs]: String(SHORT_STREAM_HOLD_MS) }, timeoutMs: SHORT_STREAM_HOLD_MS + 30_000 });
      shortStreams.push(
        call.then(
          ({ messages }) => (messages.length === SHORT_STREAM_MESSAGES ? 'OK' : `OK with ${messages.length} of ${SHORT_STREAM_MESSAGES} messages`),
          (error: grpc.ServiceError) => `${grpc.status[error.code]}: ${error.details}`,
        ),
      );
    }, SHORT_STREAM_EVERY_MS);
    const startedAt = performance.now();
    const summary = await runGoClient({ target: agent.listen, authority: AUTHORITY, count: UNARY_COUNT, rate: UNARY_RATE, concurrency: 8, timeoutMs: 5_000, killAfterMs: (UNARY_COUNT / UNARY_RATE) * 1000 + 60_000 });
    const elapsedS = (performance.now() - startedAt) / 1000;
    clearInterval(opening);
    opening = undefined;
    const shortOutcomes = await Promise.all(shortStreams);
    const heldStatuses = await Promise.all(held.map((stream) => stream.finish()));
    const stats = await Promise.all(backends.map((backend) => backend.stats()));
    const connections = stats.reduce((sum, s) => sum + s.connections, 0);
    const calls = stats.reduce((sum, s) => sum + s.calls, 0);
    const shortNotOk = shortOutcomes.filter((outcome) => outcome !== 'OK');
    const heldBroken = heldStatuses.flatMap((status, index) => (status.code === grpc.status.OK && held[index].echoed === held[index].sent && held[index].misordered.length === 0 ? [] : [`stream ${index}: ${grpc.status[status.code]} ${status.details}, ${held[index].echoed} of ${held[index].sent} echoed, ${held[index].misordered.length} out of order`]));
    t.diagnostic(`${summary.calls} unary RPCs in ${elapsedS.toFixed(1)} s: ${JSON.stringify(summary.codes)}${summary.errors.length === 0 ? '' : ` (${summary.errors.join(' | ')})`}; p99 ${summary.latencyMs.p99} ms, max ${summary.latencyMs.max} ms`);
    t.diagnostic(`${HELD_BIDI} bidi streams held ${elapsedS.toFixed(0)} s (${held.reduce((sum, s) => sum + s.echoed, 0)} echoes), broken: ${heldBroken.length}; ${shortOutcomes.length} server streams held ${SHORT_STREAM_HOLD_MS / 1000} s each, not OK: ${shortNotOk.length}${shortNotOk.length === 0 ? '' : ` (${[...new Set(shortNotOk)].slice(0, 5).join(' | ')})`}`);
    t.diagnostic(`backends: ${connections} connections accepted (GOAWAY churn), ${calls} calls (${UNARY_COUNT} unary + ${shortOutcomes.length + HELD_BIDI} streams expected)`);
    assert.deepEqual(summary.codes, { OK: UNARY_COUNT }, 'every unary RPC succeeded');
    assert.deepEqual(heldBroken, [], 'no held bidi stream broke');
    assert.deepEqual(shortNotOk, [], 'no held server stream broke');
    assert.equal(calls, UNARY_COUNT + shortOutcomes.length + HELD_BIDI, 'the backends saw each call exactly once');
    // MaxConnectionAge did its work: about three connections a second (one per backend) — at least one a second.
    assert.ok(connections >= elapsedS, `${connections} connections in ${elapsedS.toFixed(1)} s: the backends' GOAWAYs did not make the agent reconnect`);
  } finally {
    if (opening !== undefined) clearInterval(opening);
    for (const stream of held) stream.abandon();
    client.close();
    assert.equal(await agent.stop(), 0);
    await Promise.all(backends.map((backend) => backend.stop({ graceful: false })));
    rmSync(dir, { recursive: true, force: true });
  }
});
