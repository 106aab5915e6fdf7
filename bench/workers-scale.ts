// `node bench/workers-scale.ts`: meshlite --workers 1 against --workers 2 (or any list) at a ladder of fixed request
// rates (h2load --rps) through grpc-go backends: the rate each setting still keeps up with is its saturation
// throughput here, and its CPU per request says what more cores would give. With --agent-cores-per-worker and
// --others-cores the agent and the rest (backends, h2load) each run under a CFS quota (bench/cpu-cgroup.ts), so that
// each worker has a fixed CPU share and the others cannot starve it. Run it under flock /tmp/meshlite-load.lock.

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  type CpuGroup,
  type CpuGroupUse,
  checkCpuController,
  cpuGroupUse,
  createCpuGroup,
  removeCpuGroup,
  removeStaleGroups,
} from './cpu-cgroup.ts';
import { runLoad, writeRequestFile, type LoadShape } from './h2load-run.ts';
import { numberOption } from './number-option.ts';
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
    /** The agent process, every thread, under a quota of this many cores × its --workers. */
    'agent-cores-per-worker': { type: 'string' },
    /** The three backends and h2load together under a quota of this many cores. */
    'others-cores': { type: 'string' },
    'cfs-period-us': { type: 'string' },
  },
});
const workerCounts = values.workers.split(',').map(Number);
const rates = values.rates.split(',').map(Number);
const durationS = Number(values.duration);
const rounds = Number(values.rounds);
const connections = Number(values.connections);
const streams = Number(values.streams);
const h2loadThreads = Number(values['h2load-threads']);
const cores = os.availableParallelism();
const agentCoresPerWorker = values['agent-cores-per-worker'] === undefined ? null : numberOption(values['agent-cores-per-worker'], 0, 'agent-cores-per-worker', { min: 0.01, max: cores });
const othersCores = values['others-cores'] === undefined ? null : numberOption(values['others-cores'], 0, 'others-cores', { min: 0.01, max: cores });
// Short periods keep throttling smooth: a capped process waits at most one period minus its quota.
const periodUs = numberOption(values['cfs-period-us'], 10_000, 'cfs-period-us', { min: 1000, max: 1_000_000, integer: true });
// Ten nice-0 processes' weight: other work on the machine (outside the lock: builds, type checks) cannot take a capped
// group's quota away, and since the quotas add up to less than the machine, it still gets the rest.
const GROUP_SHARES = 10_240;

interface GroupFigures {
  /** CPU cores the group used (cpuacct: every task, also those that exited, e.g. h2load). */
  cores: number;
  /** Share of CFS periods in which the group ran out of quota. */
  throttledPeriods: number;
  /** Seconds throttled per second (summed over CPUs). */
  throttledPerS: number;
}

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
  /** Under --agent-cores-per-worker: the agent's group (its quota in cores, what it used, how often it was throttled). */
  agentGroup?: GroupFigures & { quota: number };
  /** Under --others-cores: the backends' and h2load's group. */
  othersGroup?: GroupFigures & { quota: number };
  /** With both caps: cores busy outside the two groups (other work, interrupts, this harness). */
  outsideCores?: number;
}

const figures = (group: CpuGroup, use: CpuGroupUse): GroupFigures & { quota: number } => ({
  quota: group.cores,
  cores: +use.cores.toFixed(2),
  throttledPeriods: +use.throttledPeriods.toFixed(2),
  throttledPerS: +use.throttledPerS.toFixed(3),
});

const groups: CpuGroup[] = [];
const removeGroups = (): void => {
  for (const g of groups.splice(0)) {
    try {
      removeCpuGroup(g);
    } catch (error) {
      process.stderr.write(`could not remove cgroup ${g.name}: ${(error as Error).message}\n`);
    }
  }
};

process.on('SIGINT', () => {
  killAllNow();
  removeGroups();
  process.exit(130);
});

if (agentCoresPerWorker !== null || othersCores !== null) {
  checkCpuController();
  for (const name of removeStaleGroups()) process.stderr.write(`removed the leftover cgroup ${name}\n`);
}
const agentGroups = new Map<number, CpuGroup>();
let othersGroup: CpuGroup | null = null;
process.stdout.write(
  `# workers ${workerCounts.join(',')}; rates ${rates.join(',')}; ${durationS} s each; ${rounds} rounds; h2load -c ${connections} -m ${streams} -t ${h2loadThreads}; ` +
    `agent quota ${agentCoresPerWorker === null ? 'none' : `${agentCoresPerWorker} core × workers`}; backends + h2load quota ${othersCores === null ? 'none' : `${othersCores} cores`}; ` +
    `CFS period ${periodUs} µs; cpu.shares ${GROUP_SHARES}; ${cores} cores\n`,
);

const dir = mkdtempSync(join(os.tmpdir(), 'mlw-workers-bench-'));
const rows: Row[] = [];
const ticks = clockTicksPerSecond();
try {
  if (agentCoresPerWorker !== null) {
    for (const workers of workerCounts) {
      const g = createCpuGroup(`agent-${workers}`, agentCoresPerWorker * workers, periodUs, GROUP_SHARES);
      groups.push(g);
      agentGroups.set(workers, g);
    }
  }
  if (othersCores !== null) {
    othersGroup = createCpuGroup('others', othersCores, periodUs, GROUP_SHARES);
    groups.push(othersGroup);
  }
  const intoOthers = (pid: number): void => {
    if (othersGroup !== null && !othersGroup.add(pid)) throw new Error(`process ${pid} exited before it was capped`);
  };
  const dataFile = writeRequestFile(dir);
  const backends = await startBackends('grpc-go', 3, dir);
  try {
    for (const b of backends) intoOthers(b.process.pid);
    for (let round = 1; round <= rounds; round++) {
      for (const workers of workerCounts) {
        const target = await startTarget('meshlite', { dir, backends, dataFile, meshliteArgs: ['--workers', String(workers)] });
        try {
          const agentGroup = agentGroups.get(workers) ?? null;
          // Started and ready uncapped; from here on every thread it has or starts runs under its quota.
          for (const pid of target.cpuPids) {
            if (agentGroup !== null && !agentGroup.add(pid)) throw new Error(`agent process ${pid} exited before it was capped`);
          }
          const shapeAt = (rate: number): LoadShape => ({ name: 'fixed-rate', connections, streams, rate, h2loadThreads });
          const files = { dataFile, logFile: join(dir, 'h2load.log'), outputFile: join(dir, 'h2load.out'), onSpawn: intoOthers };
          // Warm-up: the JIT and every thread's upstream connections.
          await runLoad({ port: target.port, shape: shapeAt(rates[0]), durationS: 2, ...files });
          for (const rate of rates) {
            const agentBefore = sampleCpu(target.cpuPids);
            const backendPids = backends.map((b) => b.process.pid);
            const backendBefore = sampleCpu(backendPids);
            const agentGroupBefore = agentGroup?.sample();
            const othersBefore = othersGroup?.sample();
            const countsBefore = await backendCounts(backends);
            const systemBefore = sampleSystem();
            const wallBefore = performance.now();
            const r = await runLoad({ port: target.port, shape: shapeAt(rate), durationS, ...files });
            const wallS = (performance.now() - wallBefore) / 1000;
            const idle = idleShare(systemBefore, sampleSystem());
            const agentCpu = cpuSecondsBetween(agentBefore, sampleCpu(target.cpuPids), ticks) ?? 0;
            const backendCpu = cpuSecondsBetween(backendBefore, sampleCpu(backendPids), ticks) ?? 0;
            const agentGroupAfter = agentGroup?.sample();
            const othersAfter = othersGroup?.sample();
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
            if (agentGroup !== null && agentGroupBefore && agentGroupAfter) {
              row.agentGroup = figures(agentGroup, cpuGroupUse(agentGroupBefore, agentGroupAfter, wallS));
            }
            if (othersGroup !== null && othersBefore && othersAfter) {
              row.othersGroup = figures(othersGroup, cpuGroupUse(othersBefore, othersAfter, wallS));
            }
            if (row.agentGroup && row.othersGroup && idle !== null) {
              row.outsideCores = +((1 - idle) * cores - row.agentGroup.cores - row.othersGroup.cores).toFixed(2);
            }
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
  removeGroups();
  rmSync(dir, { recursive: true, force: true });
}

// Per workers and offered rate: the median over rounds of what was achieved.
const capped = agentCoresPerWorker !== null || othersCores !== null;
const groupHeader = capped ? ' agent quota | agent cores (group) | agent throttled periods | others quota | others cores | others throttled periods | outside cores |' : '';
process.stdout.write(
  `\n| workers | offered req/s | achieved req/s (median) | agent cores | req per agent CPU-s | p50 µs | p99 µs | machine idle | failed |${groupHeader}\n` +
    `|${' --- |'.repeat(9 + (capped ? 7 : 0))}\n`,
);
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
};
for (const workers of workerCounts) {
  for (const rate of rates) {
    const at = rows.filter((r) => r.workers === workers && r.offered === rate);
    if (at.length === 0) continue;
    const cell = (f: (r: Row) => number | null | undefined): string => {
      const xs = at.map(f).filter((x): x is number => typeof x === 'number');
      return xs.length === 0 ? '–' : String(median(xs));
    };
    const groupCells = capped
      ? ` ${cell((r) => r.agentGroup?.quota)} | ${cell((r) => r.agentGroup?.cores)} | ${cell((r) => r.agentGroup?.throttledPeriods)} | ${cell((r) => r.othersGroup?.quota)} | ${cell((r) => r.othersGroup?.cores)} | ${cell((r) => r.othersGroup?.throttledPeriods)} | ${cell((r) => r.outsideCores)} |`
      : '';
    process.stdout.write(
      `| ${workers} | ${rate} | ${cell((r) => r.achieved)} | ${cell((r) => r.agentCores)} | ${cell((r) => r.requestsPerAgentCpuSecond)} | ${cell((r) => r.p50Us)} | ${cell((r) => r.p99Us)} | ${cell((r) => r.machineIdle)} | ${at.reduce((s, r) => s + r.failed, 0)} |${groupCells}\n`,
    );
  }
}

// Saturation throughput: per round and setting, the highest rate achieved anywhere on the ladder.
const saturation = (round: number, workers: number): number => Math.max(0, ...rows.filter((r) => r.round === round && r.workers === workers).map((r) => r.achieved));
if (workerCounts.length >= 2) {
  const [low, high] = [workerCounts[0], workerCounts[workerCounts.length - 1]];
  process.stdout.write(`\n| round | saturation, --workers ${low} | saturation, --workers ${high} | ratio ${high} ÷ ${low} |\n| --- | --- | --- | --- |\n`);
  const ratios: number[] = [];
  for (let round = 1; round <= rounds; round++) {
    const [a, b] = [saturation(round, low), saturation(round, high)];
    const ratio = a > 0 ? b / a : 0;
    ratios.push(ratio);
    process.stdout.write(`| ${round} | ${a} | ${b} | ${ratio.toFixed(2)} |\n`);
  }
  process.stdout.write(`\nratio ${high} ÷ ${low}: median ${median(ratios).toFixed(2)}, lowest ${Math.min(...ratios).toFixed(2)}, rounds ${ratios.map((x) => x.toFixed(2)).join(', ')}\n`);
}
