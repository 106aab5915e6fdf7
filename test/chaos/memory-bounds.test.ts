// Chaos scenario 4: uploads into a backend that never reads (a grpc-js server in its own process), plus thousands of
// idle HTTP/2 connections, against the agent with its default limits. The agent holds at most its per-connection
// budget + window for each uploading connection (not streams × stream window) and about 15 KiB per idle connection,
// so its RSS, sampled from /proc through the run, stays under 300 MiB; another client's unary RPCs all succeed.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readMemory } from '../../bench/proc-memory.ts';
import { type BackendProcess, spawnBackend } from '../../lab/grpc-backend-process.ts';
import { makeEchoClient, unary } from '../../lab/grpc-peers.ts';
import { type IdleConnections, startIdleConnections } from '../../lab/idle-http2-connections.ts';
import { waitFor } from '../../lab/wait-for.ts';
import { type AgentProcess, startAgent } from '../support/agent-process.ts';
import { chaosScale } from './chaos-scale.ts';
import { type NonReadingBackend, spawnNonReadingBackend } from './non-reading-backend.ts';
import { type StalledUploader, startStalledUploader } from './stalled-uploader.ts';

const UPLOADS = chaosScale(200, 1000);
const UPLOAD_BYTES = 2 * 1024 * 1024;
const IDLE_CONNECTIONS = chaosScale(2000, 10_000);
/** How long the uploads push against the stalled backend once they all started. */
const STALL_MS = chaosScale(6_000, 20_000);
const RSS_LIMIT = 300 * 1024 * 1024;
const MIB = 1024 * 1024;
const UPLOAD_AUTHORITY = 'uploads.default.svc.cluster.local:50051';
const ECHO_AUTHORITY = 'echo.default.svc.cluster.local:50052';

function staticFile(uploadPort: number, echoPort: number): string {
  return [
    'services:',
    '  - name: uploads',
    '    namespace: default',
    '    port: 50051',
    '    endpoints:',
    `      - address: 127.0.0.1:${uploadPort}`,
    '  - name: echo',
    '    namespace: default',
    '    port: 50052',
    '    endpoints:',
    `      - address: 127.0.0.1:${echoPort}`,
    '',
  ].join('\n');
}

/** Unary RPCs from a client of its own, 4 at a time, until stopped. */
function otherClient(target: string) {
  const client = makeEchoClient(target, { 'grpc.default_authority': ECHO_AUTHORITY });
  const result = { ok: 0, failed: [] as string[] };
  let running = true;
  const workers = Array.from({ length: 4 }, async (_, worker) => {
    for (let i = 0; running; i++) {
      const request = Buffer.from(`other-${worker}-${i}`);
      try {
        const { message } = await unary(client, request, { timeoutMs: 5_000 });
        if (message.equals(request)) result.ok++;
        else result.failed.push('response is not the request');
      } catch (error) {
        result.failed.push(String((error as Error).message));
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
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

/** The agent's own view of its memory (prom-client's process metrics), to say where the RSS went. */
async function memoryBreakdown(admin: string): Promise<string> {
  try {
    const text = await (await fetch(`http://${admin}/metrics`)).text();
    const value = (name: string): string => {
      const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
      return match === null ? '?' : (Number(match[1]) / MIB).toFixed(1);
    };
    return `agent heap used ${value('nodejs_heap_size_used_bytes')} MiB of ${value('nodejs_heap_size_total_bytes')} MiB, external ${value('nodejs_external_memory_bytes')} MiB`;
  } catch (error) {
    return `agent metrics unreadable: ${(error as Error).message}`;
  }
}

test(`${UPLOADS} uploads of 2 MiB into a backend that never reads, plus ${IDLE_CONNECTIONS} idle connections: agent RSS under 300 MiB; another client's RPCs all succeed`, { timeout: 300_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'meshlite-memory-bounds-'));
  let agent: AgentProcess | null = null;
  let stalled: NonReadingBackend | null = null;
  let echo: BackendProcess | null = null;
  let idle: IdleConnections | null = null;
  let uploader: StalledUploader | null = null;
  let other: ReturnType<typeof otherClient> | null = null;
  let sampler: NodeJS.Timeout | null = null;
  try {
    [stalled, echo] = await Promise.all([spawnNonReadingBackend(), spawnBackend('echo')]);
    const file = join(dir, 'services.yaml');
    writeFileSync(file, staticFile(stalled.port, echo.port));
    agent = await startAgent(['--discovery', 'static', '--static-file', file]);
    const pid = agent.child.pid as number;
    const idleRss = readMemory(pid).rssBytes;
    let peakRss = idleRss;
    sampler = setInterval(() => {
      try {
        peakRss = Math.max(peakRss, readMemory(pid).rssBytes);
      } catch {
        // The agent is gone: the checks below say so.
      }
    }, 100);
    const port = Number(agent.listen.slice(agent.listen.lastIndexOf(':') + 1));

    other = otherClient(agent.listen);
    idle = await startIdleConnections('127.0.0.1', port);
    const opening = performance.now();
    await idle.open(IDLE_CONNECTIONS);
    const rssWithIdle = readMemory(pid).rssBytes;
    t.diagnostic(
      `${idle.state.open} idle connections open in ${Math.round(performance.now() - opening)} ms; agent RSS ${(idleRss / MIB).toFixed(1)} → ` +
        `${(rssWithIdle / MIB).toFixed(1)} MiB (${((rssWithIdle - idleRss) / idle.state.open / 1024).toFixed(1)} KiB each)`,
    );
    assert.equal(idle.state.open, IDLE_CONNECTIONS, 'every idle connection was accepted and stays open');
    t.diagnostic(`with the idle connections: ${await memoryBreakdown(agent.admin)}`);

    uploader = await startStalledUploader(agent.listen, UPLOAD_AUTHORITY, UPLOADS, UPLOAD_BYTES);
    const progress = uploader.progress;
    await waitFor(() => progress.started === UPLOADS && stalled?.counts.held === UPLOADS, {
      timeoutMs: 60_000,
      intervalMs: 100,
      message: `${UPLOADS} uploads held by the backend`,
    });
    await new Promise((resolve) => setTimeout(resolve, STALL_MS));
    const sentMiB = progress.sentBytes / MIB;
    const rssStalled = readMemory(pid).rssBytes;
    const hwm = readMemory(pid).hwmBytes;
    peakRss = Math.max(peakRss, hwm);
    t.diagnostic(
      `uploads: ${progress.started} started, ${sentMiB.toFixed(1)} MiB of ${((UPLOADS * UPLOAD_BYTES) / MIB).toFixed(0)} MiB got out of the client, ${progress.ended} ended; ` +
        `agent RSS ${(rssStalled / MIB).toFixed(1)} MiB, peak ${(peakRss / MIB).toFixed(1)} MiB`,
    );
    t.diagnostic(`with the uploads stalled: ${await memoryBreakdown(agent.admin)}`);
    await other.stop();
    const { ok, failed } = other.result;
    other = null;
    t.diagnostic(`other client: ${ok} unary RPCs ok, ${failed.length} failed`);
    assert.ok(peakRss < RSS_LIMIT, `peak RSS ${(peakRss / MIB).toFixed(1)} MiB stays under 300 MiB`);
    assert.deepEqual(failed.slice(0, 5), [], "the other client's RPCs all succeed");
    assert.ok(ok > 0, 'the other client made RPCs meanwhile');
    assert.equal(progress.ended, 0, 'no upload was failed: they wait for the backend');
    assert.ok(sentMiB < (UPLOADS * UPLOAD_BYTES) / MIB / 2, 'the uploads stalled: the agent did not take everything in');
    assert.equal(idle.state.closed, 0, 'no idle connection was closed');
  } finally {
    if (sampler !== null) clearInterval(sampler);
    await other?.stop();
    await uploader?.kill();
    await idle?.stop();
    await agent?.stop();
    await stalled?.kill();
    await echo?.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});
