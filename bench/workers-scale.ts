// `node bench/workers-scale.ts`: meshlite --workers 1 against --workers 2 (or any list) at a ladder of fixed request
// rates (h2load --rps) through grpc-go backends: the rate each setting still keeps up with is its saturation
// throughput here, and its CPU per request says what more cores would give. Run it under flock /tmp/meshlite-load.lock.

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runLoad, writeRequestFile, type LoadShape } from './h2load-run.ts';
import { clockTicksPerSecond, cpuSecondsBetween, idleShare, sampleCpu, sampleSystem } from './proc-cpu.ts';
import { killAllNow, stopAll } from './processes.ts';
import { backendCounts, startBackends, startTarget, stopBackends } from './targets.ts';

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '1,2' },
    rates: { type: 'string', default: '10000,20000,30000,40000,60000' },
    duration: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '2' },
    connections: { type: 'string', default: '16' },
    streams: { type: 'string', default: '16' },
    'h2load-threads': { type: 'string', default: '1' },
  },
});
const workerCounts = values.workers.split(',').map(Number);
const rates = values.rates.split(',').map(Number);
const durationS = Number(values.duration);
const rounds = Number(values.rounds);
const connections = Number(values.connections);
const streams = Number(values.streams);
const h2loadThreads = Number(values['h2load-threads']);

interface Row {
  round: number;
  workers: number;
  offered: number;
  achieved: number;
  failed: number;
  agentCores: number;
  backendCores: number;
  requestsPerAgentCpuSecond: number;
  p50Us: number | null;
  p99Us: number | null;
  /** The machine's idle share during the run: near 0, the machine (not the agent) was the limit. */
  machineIdle: number | null;
}

process.on('SIGINT', () => {
  killAllNow();
  process.exit(130);
});

const dir = mkdtempSync(join(os.tmpdir(), 'mlw-workers-bench-'));
const rows: Row[] = [];
const ticks = clockTicksPerSecond();
try {
  const dataFile = writeRequestFile(dir);
  const backends = await startBackends('grpc-go', 3, dir);
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const workers of workerCounts) {
        const target = await startTarget('meshlite', { dir, backends, dataFile, meshliteArgs: ['--workers', String(workers)] });
        try {
          const shapeAt = (rate: number): LoadShape => ({ name: 'fixed-rate', connections, streams, rate, h2loadThreads });
          // Warm-up: the JIT and every thread's upstream connections.
          await runLoad({ port: target.port, shape: shapeAt(rates[0]), durationS: 2, dataFile, logFile: join(dir, 'h2load.log'), outputFile: join(dir, 'h2load.out') });
          for (const rate of rates) {
            const agentBefore = sampleCpu(target.cpuPids);
            const backendPids = backends.map((b) => b.process.pid);
            const backendBefore = sampleCpu(backendPids);
            const countsBefore = await backendCounts(backends);
            const systemBefore = sampleSystem();
            const wallBefore = performance.now();
            const r = await runLoad({ port: target.port, shape: shapeAt(rate), durationS, dataFile, logFile: join(dir, 'h2load.log'), outputFile: join(dir, 'h2load.out') });
            const wallS = (performance.now() - wallBefore) / 1000;
            const idle = idleShare(systemBefore, sampleSystem());
            const agentCpu = cpuSecondsBetween(agentBefore, sampleCpu(target.cpuPids), ticks) ?? 0;
            const backendCpu = cpuSecondsBetween(backendBefore, sampleCpu(backendPids), ticks) ?? 0;
            const countsAfter = await backendCounts(backends);
            const served = countsAfter.reduce((sum, n, i) => sum + n.requests - countsBefore[i].requests, 0);
            const row: Row = {
              round,
              workers,
              offered: rate,
              achieved: Math.round(r.summary.requests.succeeded / durationS),
              failed: r.summary.requests.failed + r.summary.requests.errored,
              agentCores: +(agentCpu / wallS).toFixed(2),
              backendCores: +(backendCpu / wallS).toFixed(2),
              requestsPerAgentCpuSecond: agentCpu > 0 ? Math.round(served / agentCpu) : 0,
              p50Us: r.latency.p50Us,
              p99Us: r.latency.p99Us,
              machineIdle: idle === null ? null : +idle.toFixed(2),
            };
            rows.push(row);
            process.stdout.write(`${JSON.stringify(row)}\n`);
          }
        } finally {
          await target.stop();
        }
      }
    }
  } finally {
    await stopBackends(backends);
  }
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}

// Per workers and offered rate: the median over rounds of what was achieved.
process.stdout.write('\n| workers | offered req/s | achieved req/s (median) | agent cores | req per agent CPU-s | p50 µs | p99 µs | machine idle | failed |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n');
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
};
for (const workers of workerCounts) {
  for (const rate of rates) {
    const at = rows.filter((r) => r.workers === workers && r.offered === rate);
    if (at.length === 0) continue;
    const cell = (f: (r: Row) => number | null): string => String(median(at.map((r) => f(r) ?? 0)));
    process.stdout.write(
      `| ${workers} | ${rate} | ${cell((r) => r.achieved)} | ${cell((r) => r.agentCores)} | ${cell((r) => r.requestsPerAgentCpuSecond)} | ${cell((r) => r.p50Us)} | ${cell((r) => r.p99Us)} | ${cell((r) => r.machineIdle)} | ${at.reduce((s, r) => s + r.failed, 0)} |\n`,
    );
  }
}
