// `npm run bench:health`: how soon after its start an agent whose API server is unreachable answers /healthz on its
// probe socket (the DaemonSet's liveness and startup probes) and /readyz with its reason — N starts, from the spawn.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { getOverUnixSocket } from '../test/support/unix-socket-get.ts';
import { numberOption } from './number-option.ts';
import { describeMachine, median } from './report.ts';
import { autogroupsEnabled } from './proc-cpu.ts';

const MAIN = new URL('../agent/main.ts', import.meta.url).pathname;
const USAGE = `Usage: npm run bench:health -- [--starts N]   (default 10)`;

/** A kubeconfig whose server refuses connections: port 1 on loopback, where nothing listens. */
function unreachableKubeconfig(dir: string): string {
  const path = join(dir, 'kubeconfig.yaml');
  writeFileSync(
    path,
    [
      'apiVersion: v1', 'kind: Config',
      'clusters: [{ name: c, cluster: { server: "https://127.0.0.1:1", insecure-skip-tls-verify: true } }]',
      'users: [{ name: u, user: { token: bench } }]',
      'contexts: [{ name: c, context: { cluster: c, user: u } }]',
      'current-context: c', '',
    ].join('\n'),
  );
  return path;
}


/** Polls every 5 ms until the socket answers `path` with `status`; the milliseconds since `startedAt`. */
async function firstAnswer(socketPath: string, path: string, status: number, startedAt: number, limitMs: number): Promise<{ ms: number; body: string }> {
  for (;;) {
    const answer = await getOverUnixSocket(socketPath, path, 2_000).catch(() => null);
    if (answer?.status === status) return { ms: performance.now() - startedAt, body: answer.body };
    if (performance.now() - startedAt > limitMs) throw new Error(`no ${status} on ${path} within ${limitMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function oneStart(dir: string, kubeconfig: string, index: number): Promise<{ healthMs: number; readyzMs: number; reason: string }> {
  const socket = join(dir, `probes-${index}`, 'probes.sock');
  const startedAt = performance.now();
  const child = spawn(
    process.execPath,
    [MAIN, '--discovery', 'kubernetes', '--kubeconfig', kubeconfig, '--node-name', 'bench', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--metrics', 'off', '--probe-socket', socket],
    { stdio: 'ignore' },
  );
  try {
    const health = await firstAnswer(socket, '/healthz', 200, startedAt, 20_000);
    const readyz = await firstAnswer(socket, '/readyz', 503, startedAt, 20_000);
    return { healthMs: health.ms, readyzMs: readyz.ms, reason: (JSON.parse(readyz.body) as { reason: string }).reason };
  } finally {
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { starts: { type: 'string' }, help: { type: 'boolean' } } });
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const starts = numberOption(values.starts, 10, 'starts', { min: 1, max: 1000, integer: true });
  const dir = mkdtempSync(join(os.tmpdir(), 'meshlite-bench-health-'));
  try {
    const kubeconfig = unreachableKubeconfig(dir);
    const health: number[] = [];
    const readyz: number[] = [];
    for (let i = 0; i < starts; i++) {
      const result = await oneStart(dir, kubeconfig, i);
      health.push(result.healthMs);
      readyz.push(result.readyzMs);
      process.stdout.write(`start ${i + 1}: /healthz 200 after ${Math.round(result.healthMs)} ms, /readyz 503 (${result.reason.split(':')[0]}) after ${Math.round(result.readyzMs)} ms\n`);
    }
    const machine = describeMachine(autogroupsEnabled());
    const round = (values: number[], pick: (v: number[]) => number | null) => Math.round(pick(values) ?? Number.NaN);
    process.stdout.write(
      `\n${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}, load average ${os.loadavg()[0].toFixed(2)} at the end\n` +
        `/healthz 200 (probe socket): median ${round(health, median)} ms, max ${round(health, (v) => Math.max(...v))} ms after the spawn, over ${starts} starts\n` +
        `/readyz 503 (probe socket): median ${round(readyz, median)} ms, max ${round(readyz, (v) => Math.max(...v))} ms\n`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
