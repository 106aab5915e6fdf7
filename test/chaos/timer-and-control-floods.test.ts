// Chaos scenario 7: a client that asks for absurd timers or floods control frames, against the real agent and grpc-js
// backends. `grpc-timeout: 99999999H` arms at most one timer a second (Node would shorten the 4e14 ms timer to 1 ms and
// warn each time), writes no warning, and the call still works; PING and SETTINGS floods are answered with
// GOAWAY(ENHANCE_YOUR_CALM), and the agent's CPU time (from /proc/<pid>/stat) during the floods is reported and bounded.
// The full form repeats each flood from fresh connections.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type GrpcServerHandle, META, startGrpcServer } from '../../lab/grpc-peers.ts';
import { waitFor } from '../../lab/wait-for.ts';
import { type AgentProcess, startAgent } from '../support/agent-process.ts';
import { S, ping, request, settings, windowUpdate } from '../support/raw-frames.ts';
import { chaosScale } from './chaos-scale.ts';
import { RawHttp2Client, grpcStatusOf, processCpuMs, unaryRequest } from './raw-http2-client.ts';

const AUTHORITY = 'greeter.default.svc.cluster.local:50051';
const ENHANCE_YOUR_CALM = 0xb;
/** Floods, each from a fresh connection once the previous one was sent away. */
const ROUNDS = chaosScale(3, 20);
/** Frames per second a flood tries to send, and how long it may try. */
const FLOOD_RATE = 100_000;
const FLOOD_MS = 1000;
/** Frames per flood (20 ms of the rate, 20 times the limits' bursts): then the flood stops writing and reads, so that
 *  it sees the GOAWAY (see rapid-reset.test.ts, PAIRS_PER_ATTACK). */
const FRAMES_PER_FLOOD = 2_000;
/** How long the 99999999H call is held open by its backend. */
const HOLD_MS = chaosScale(1500, 5000);
/** The agent may use at most this much CPU per flood connection, from connect to close. */
const CPU_PER_FLOOD_MS = 200;

/**
 * Loaded into the agent through NODE_OPTIONS: counts platform timers of at least 2^31-1 ms (each re-arm of a deadline
 * beyond Node's range is one) and writes the count as a log line on SIGUSR2, which the test reads with the agent's log.
 */
const LONG_TIMER_PROBE = [
  'const platform = globalThis.setTimeout; let count = 0;',
  'globalThis.setTimeout = function (callback, ms, ...rest) { if (ms >= 2147483647) count++; return platform.call(this, callback, ms, ...rest); };',
  "process.on('SIGUSR2', () => process.stdout.write(JSON.stringify({ level: 30, msg: 'long timers', count }) + '\\n'));",
].join(' ');

function staticFile(backends: GrpcServerHandle[]): string {
  const lines = ['services:', '  - name: greeter', '    namespace: default', '    port: 50051', '    balancer: round-robin', '    endpoints:'];
  for (const backend of backends) lines.push(`      - address: 127.0.0.1:${backend.port}`);
  return `${lines.join('\n')}\n`;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

let dir = '';
let backends: GrpcServerHandle[] = [];
let agent: AgentProcess;
/** What the agent wrote to stderr since it started serving (Node prints its process warnings there). */
let stderr = '';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'meshlite-control-floods-'));
  backends = await Promise.all(['cf-1', 'cf-2'].map((id) => startGrpcServer({ id })));
  const file = join(dir, 'services.yaml');
  writeFileSync(file, staticFile(backends));
  const previous = process.env.NODE_OPTIONS;
  process.env.NODE_OPTIONS = `${previous ?? ''} --import=data:text/javascript,${encodeURIComponent(LONG_TIMER_PROBE)}`.trim();
  try {
    agent = await startAgent(['--discovery', 'static', '--static-file', file]);
  } finally {
    if (previous === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = previous;
  }
  agent.child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
});

after(async () => {
  await agent?.stop();
  await Promise.all(backends.map((backend) => backend.close()));
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

/** The probe's count of long platform timers armed so far in the agent. */
async function longTimersArmed(): Promise<number> {
  const seen = agent.logs.length;
  agent.child.kill('SIGUSR2');
  let count = -1;
  await waitFor(
    () => {
      const line = agent.logs.slice(seen).find((entry) => entry.msg === 'long timers');
      if (line !== undefined) count = Number(line.count);
      return line !== undefined;
    },
    { timeoutMs: 5000, message: 'the long-timer probe answered' },
  );
  return count;
}

/** Log lines at warn or above written since `from` (pino: 40 warn, 50 error, 60 fatal). */
const warningsSince = (from: number): Array<Record<string, unknown>> => agent.logs.slice(from).filter((entry) => Number(entry.level) >= 40);

describe('scenario 7: timers and control-frame floods', () => {
  test(`grpc-timeout 99999999H held ${HOLD_MS} ms: at most one timer re-arm a second, no warning, the call succeeds`, async (t) => {
    const logsBefore = agent.logs.length;
    const stderrBefore = stderr.length;
    const timersBefore = await longTimersArmed();
    const client = await RawHttp2Client.connect(agent.listen);
    try {
      const message = Buffer.from('ninety-nine million hours');
      const response = client.watch(1);
      const started = performance.now();
      client.write(unaryRequest(1, AUTHORITY, message, ['grpc-timeout', '99999999H', META.delayMs, String(HOLD_MS)]));
      await client.until(() => response.ended || client.done, HOLD_MS + 10_000, 'the response');
      const heldMs = performance.now() - started;
      const armed = (await longTimersArmed()) - timersBefore;
      const allowed = 1 + Math.ceil(heldMs / 1000);
      t.diagnostic(`long timers armed while the call was held ${heldMs.toFixed(0)} ms: ${armed} (allowed ${allowed})`);
      assert.ok(armed >= 1, 'the deadline armed its timer (the probe sees it)');
      assert.ok(armed <= allowed, `${armed} long timers armed in ${heldMs.toFixed(0)} ms`);
      assert.equal(grpcStatusOf(response), 0, `grpc-status of ${JSON.stringify(response.blocks)}`);
      assert.deepEqual(response.body.subarray(5), message, 'the echo came back');
      assert.ok(heldMs >= HOLD_MS, 'the backend held the call as asked');
    } finally {
      client.close();
    }
    const newStderr = stderr.slice(stderrBefore);
    assert.doesNotMatch(newStderr, /Warning/, `agent stderr: ${newStderr}`);
    assert.deepEqual(warningsSince(logsBefore), [], 'no warning in the agent log');
  });

  /** Floods from fresh connections, ROUNDS times: each must be sent away with ENHANCE_YOUR_CALM within FLOOD_MS. */
  async function floodRounds(t: test.TestContext, name: string, setup: Buffer[], unit: (i: number) => Buffer, debug: RegExp): Promise<void> {
    const pid = agent.child.pid as number;
    let totalCpuMs = 0;
    let totalWallMs = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      const cpuBefore = processCpuMs(pid);
      const wallBefore = performance.now();
      const client = await RawHttp2Client.connect(agent.listen);
      let socketError = '';
      client.socket.on('error', (error) => {
        socketError = error.message;
      });
      for (const frames of setup) client.write(frames);
      const started = performance.now();
      let sent = 0;
      while (!client.done && sent < FRAMES_PER_FLOOD && performance.now() - started < FLOOD_MS) {
        const due = Math.min(FRAMES_PER_FLOOD, Math.floor(((performance.now() - started) * FLOOD_RATE) / 1000));
        const count = Math.min(due - sent, 5000);
        if (count > 0 && client.write(Buffer.concat(Array.from({ length: count }, (_, i) => unit(sent + i))))) sent += count;
        await client.pace(2);
      }
      await client.until(() => client.done, 2000, 'GOAWAY or close').catch(() => {});
      client.close();
      const goaway = client.goaway;
      // Give the agent time to finish what the flood left it (closing, cancelling), so its CPU is in the figure.
      await sleep(200);
      const cpuMs = processCpuMs(pid) - cpuBefore;
      const wallMs = performance.now() - wallBefore;
      totalCpuMs += cpuMs;
      totalWallMs += wallMs;
      t.diagnostic(
        `${name} round ${round}: ${sent} frames sent, GOAWAY ${goaway?.code} after ${goaway === null ? '-' : (goaway.at - started).toFixed(1)} ms ` +
          `("${goaway?.debug}"${socketError === '' ? '' : `, ${socketError}`}); agent CPU ${cpuMs.toFixed(0)} ms in ${wallMs.toFixed(0)} ms`,
      );
      assert.equal(goaway?.code, ENHANCE_YOUR_CALM, `${name} round ${round}: GOAWAY(ENHANCE_YOUR_CALM)`);
      assert.ok(goaway.at - started < FLOOD_MS, `${name} round ${round}: GOAWAY after ${goaway.at - started} ms`);
      assert.match(goaway.debug, debug);
      assert.ok(cpuMs <= CPU_PER_FLOOD_MS, `${name} round ${round}: agent CPU ${cpuMs} ms`);
    }
    t.diagnostic(`${name}: agent CPU ${totalCpuMs.toFixed(0)} ms over ${totalWallMs.toFixed(0)} ms of ${ROUNDS} floods (${((100 * totalCpuMs) / totalWallMs).toFixed(1)}% of a core)`);
  }

  test(`PING flood at ${FLOOD_RATE / 1000}k/s: GOAWAY(ENHANCE_YOUR_CALM) within ${FLOOD_MS} ms, agent CPU bounded (${ROUNDS} floods)`, async (t) => {
    const opaque = Buffer.from('floodpng');
    await floodRounds(t, 'PING', [], () => ping(opaque), /^PING flood: /);
  });

  test(`SETTINGS flood at ${FLOOD_RATE / 1000}k/s over 200 open streams: GOAWAY(ENHANCE_YOUR_CALM), agent CPU bounded (${ROUNDS} floods)`, async (t) => {
    // Streams the client keeps open make each change of the initial window walk them all. Their target is unknown, so
    // the agent answers each at once and no backend is involved, but each stays in the table until the client ends it.
    const open = Array.from({ length: 200 }, (_, i) => request(1 + 2 * i, false));
    await floodRounds(t, 'SETTINGS', open, (i) => settings([[S.INITIAL_WINDOW_SIZE, 65_535 + (i % 2)]]), /^SETTINGS flood: /);
  });

  test('what grpc-go does (a WINDOW_UPDATE before each PING) at the same rate is not a flood: no GOAWAY in 300 ms', async () => {
    const client = await RawHttp2Client.connect(agent.listen);
    try {
      const opaque = Buffer.from('bdpbdpbd');
      for (let tick = 0; tick < 30 && !client.done; tick++) {
        client.write(Buffer.concat(Array.from({ length: 1000 }, () => Buffer.concat([windowUpdate(0, 1024), ping(opaque)]))));
        await sleep(10);
      }
      await sleep(200);
      assert.equal(client.goaway, null);
      assert.equal(client.closed, false);
      assert.ok((client.received.get(6) ?? 0) >= 29_000, `${client.received.get(6)} PING ACKs`);
    } finally {
      client.close();
    }
  });
});
