// `npm run bench`: direct vs meshlite vs nginx grpc_pass vs HAProxy under h2load, interleaved rounds, JSON + table.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { REPLY_MESSAGE_BYTES, type LoadShape, SHAPES, runLoad, writeRequestFile } from './h2load-run.ts';
import {
  autogroupOf,
  autogroupsEnabled,
  clockTicksPerSecond,
  cpuSecondsBetween,
  idleShare,
  sampleCpu,
  sampleSystem,
  waitForQuiet,
} from './proc-cpu.ts';
import { killAllNow, stopAll } from './processes.ts';
import { type RunRecord, acceptance, describeMachine, markdown, summarize } from './report.ts';
import { numberOption } from './number-option.ts';
import { agentRevision } from './agent-revision.ts';
import {
  type Backend,
  TARGET_NAMES,
  type Target,
  type TargetContext,
  type TargetName,
  backendCounts,
  startBackends,
  startTarget,
} from './targets.ts';

const USAGE = `Usage: npm run bench -- [options]
  --rounds N        interleaved rounds (default 4)
  --duration S      measured seconds per run (default 5)
  --warmup S        warm-up seconds before each run, not measured (default 1)
  --targets LIST    comma-separated subset of ${TARGET_NAMES.join(',')} (default: all)
  --quick           smoke run: 1 round, 2 s runs, 0.5 s warm-up
  --help            this text`;

interface Options {
  rounds: number;
  durationS: number;
  warmupS: number;
  targets: TargetName[];
  quick: boolean;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      targets: { type: 'string' },
      quick: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const quick = values.quick;
  const targets = (values.targets?.split(',') ?? [...TARGET_NAMES]).map((t) => t.trim());
  for (const t of targets) {
    if (!(TARGET_NAMES as readonly string[]).includes(t)) throw new Error(`--targets: unknown target ${t}`);
  }
  return {
    rounds: Math.round(numberOption(values.rounds, quick ? 1 : 4, 'rounds', { min: 1, max: 20 })),
    durationS: numberOption(values.duration, quick ? 2 : 5, 'duration', { min: 0.5, max: 60 }),
    warmupS: numberOption(values.warmup, quick ? 0.5 : 1, 'warmup', { min: 0, max: 30 }),
    targets: TARGET_NAMES.filter((t) => targets.includes(t)),
    quick,
  };
}

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

interface Bench {
  o: Options;
  dir: string;
  ctx: TargetContext;
  ticksPerSecond: number;
  /** What is left of the time the whole bench may spend waiting for other load on the machine to pass. */
  quietBudgetMs: number;
}

function emptyRecord(round: number, shape: LoadShape, target: TargetName, error: string): RunRecord {
  return {
    round,
    shape: shape.name,
    target,
    error,
    requestsPerSecond: 0,
    p50Us: null,
    p99Us: null,
    requests: 0,
    served: [],
    backendConnectionsOpened: 0,
    proxyCpuSeconds: null,
    backendCpuSeconds: null,
    requestsPerCpuSecond: null,
    errors: { http: 0, noReply: 0, backendShortfall: 0, total: 0 },
    h2loadAutogroup: null,
    machineIdleShare: null,
    machineIdleBefore: null,
  };
}

/** One measured run: warm-up, then counts and CPU sampled around the measured h2load run. */
async function measure(b: Bench, target: Target, shape: LoadShape, round: number): Promise<RunRecord> {
  if (target.process !== null && target.process.exitStatus !== null) {
    return emptyRecord(round, shape, target.name, `${target.name} exited (${target.process.exitStatus})`);
  }
  // Other work on the machine would distort the run: wait until the CPU is mostly idle, within a budget per bench.
  const waitStart = Date.now();
  const idleBefore = await waitForQuiet(0.85, Math.min(b.quietBudgetMs, 10_000), 300);
  b.quietBudgetMs = Math.max(0, b.quietBudgetMs - (Date.now() - waitStart));
  const files = { dataFile: b.ctx.dataFile, logFile: join(b.dir, 'requests.log'), outputFile: join(b.dir, 'h2load.out') };
  if (b.o.warmupS > 0) await runLoad({ ...files, port: target.port, shape, durationS: b.o.warmupS });
  const backendPids = b.ctx.backends.map((x: Backend) => x.process.pid);
  const countsBefore = await backendCounts(b.ctx.backends);
  const backendBefore = sampleCpu(backendPids);
  const proxyBefore = sampleCpu(target.cpuPids);
  const systemBefore = sampleSystem();
  const r = await runLoad({ ...files, port: target.port, shape, durationS: b.o.durationS });
  const systemAfter = sampleSystem();
  const proxyAfter = sampleCpu(target.cpuPids);
  const backendAfter = sampleCpu(backendPids);
  const countsAfter = await backendCounts(b.ctx.backends);
  const served = countsAfter.map((n, i) => n.requests - countsBefore[i].requests);
  const connections = countsAfter.reduce((a, n, i) => a + n.connections - countsBefore[i].connections, 0);
  const servedTotal = served.reduce((a, c) => a + c, 0);
  const proxyCpuSeconds = target.cpuPids.length === 0 ? null : cpuSecondsBetween(proxyBefore, proxyAfter, b.ticksPerSecond);
  const q = r.summary.requests;
  const http = Math.max(q.failed + q.errored + q.timeout, r.latency.non200);
  const noReply = Math.max(0, q.succeeded - Math.floor(r.dataBytes / REPLY_MESSAGE_BYTES));
  const backendShortfall = Math.max(0, q.succeeded - servedTotal);
  const record: RunRecord = {
    round,
    shape: shape.name,
    target: target.name,
    error: null,
    requestsPerSecond: r.summary.requestsPerSecond,
    p50Us: r.latency.p50Us,
    p99Us: r.latency.p99Us,
    requests: q.done,
    served,
    backendConnectionsOpened: connections,
    proxyCpuSeconds,
    backendCpuSeconds: cpuSecondsBetween(backendBefore, backendAfter, b.ticksPerSecond),
    requestsPerCpuSecond: proxyCpuSeconds !== null && proxyCpuSeconds > 0 ? servedTotal / proxyCpuSeconds : null,
    errors: { http, noReply, backendShortfall, total: http + Math.max(noReply, backendShortfall) },
    h2loadAutogroup: r.autogroup,
    machineIdleShare: idleShare(systemBefore, systemAfter),
    machineIdleBefore: idleBefore,
  };
  if (target.process !== null && target.process.exitStatus !== null) {
    record.error = `${target.name} exited (${target.process.exitStatus}) during the run`;
  }
  return record;
}

function progress(r: RunRecord, rounds: number): string {
  const head = `round ${r.round}/${rounds} ${r.shape.padEnd(10)} ${r.target.padEnd(8)}`;
  if (r.error !== null) return `${head} FAILED: ${r.error}`;
  const cpu = r.proxyCpuSeconds === null ? '' : ` cpu ${r.proxyCpuSeconds.toFixed(2)} s → ${Math.round(r.requestsPerCpuSecond ?? 0)} req/CPU-s`;
  return `${head} ${Math.round(r.requestsPerSecond)} req/s p50 ${r.p50Us} µs p99 ${r.p99Us} µs${cpu} served ${r.served.join('/')} new-conns ${r.backendConnectionsOpened} errors ${r.errors.total} idle ${Math.round((r.machineIdleBefore ?? 0) * 100)}%/${Math.round((r.machineIdleShare ?? 0) * 100)}%`;
}

let interrupted = false;

const rotate = <T>(list: readonly T[], by: number): T[] => list.map((_, i) => list[(i + by) % list.length]);

async function main(): Promise<void> {
  const o = options();
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 24) throw new Error(`run on the pinned Node (npm run bench or ./node_modules/.bin/node), not ${process.version}`);
  const dir = mkdtempSync(join(os.tmpdir(), 'meshlite-bench-'));
  const started: Target[] = [];
  let cleaning: Promise<void> | null = null;
  const cleanup = (): Promise<void> => {
    cleaning ??= (async () => {
      for (const t of started) await t.stop();
      await stopAll();
      rmSync(dir, { recursive: true, force: true });
    })();
    return cleaning;
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    interrupted = true;
    log(`\n${signal}: stopping every process the benchmark started`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', killAllNow);
  try {
    const machine = describeMachine(autogroupsEnabled());
    const ticksPerSecond = clockTicksPerSecond();
    const backends = await startBackends(3, dir);
    const ctx: TargetContext = { dir, backends, dataFile: writeRequestFile(dir) };
    const b: Bench = { o, dir, ctx, ticksPerSecond, quietBudgetMs: o.quick ? 5000 : 60_000 };
    const unavailable: Array<{ target: TargetName; reason: string }> = [];
    for (const name of o.targets) {
      try {
        const t = await startTarget(name, ctx);
        started.push(t);
        log(`${name}: port ${t.port}, pids ${t.cpuPids.join(',') || '-'}, autogroup ${t.autogroup ?? '-'}`);
      } catch (error) {
        const reason = (error as Error).message;
        unavailable.push({ target: name, reason });
        log(`${name}: NOT MEASURED: ${reason}`);
      }
    }
    const own = autogroupOf(process.pid);
    const groups = [...started.map((t) => t.autogroup), ...backends.map((x) => autogroupOf(x.process.pid))];
    if (groups.some((g, i) => g !== null && (g === own || groups.indexOf(g) !== i))) {
      log('WARNING: some processes share a scheduler autogroup; CPU per request is not comparable');
    }
    const records: RunRecord[] = [];
    for (let round = 1; round <= o.rounds; round++) {
      for (const shape of SHAPES) {
        for (const target of rotate(started, round - 1)) {
          if (interrupted) return;
          let record: RunRecord;
          try {
            record = await measure(b, target, shape, round);
          } catch (error) {
            record = emptyRecord(round, shape, target.name, (error as Error).message);
          }
          if (interrupted) return;
          records.push(record);
          log(progress(record, o.rounds));
        }
      }
    }
    const summaries = summarize(records, SHAPES, o.targets);
    const table = markdown(summaries, {
      machine,
      rounds: o.rounds,
      durationS: o.durationS,
      warmupS: o.warmupS,
      shapes: SHAPES,
      targets: o.targets,
      unavailable,
    });
    const result = {
      startedAt: new Date().toISOString(),
      agentRevision: agentRevision(),
      options: o,
      machine,
      clockTicksPerSecond: ticksPerSecond,
      harnessAutogroup: own,
      backends: backends.map((x) => ({ index: x.index, port: x.grpcPort, autogroup: autogroupOf(x.process.pid) })),
      targets: started.map((t) => ({ name: t.name, port: t.port, cpuPids: t.cpuPids, autogroup: t.autogroup })),
      unavailable,
      records,
      summaries,
      acceptance: acceptance(summaries),
      markdown: table,
    };
    const resultsDir = resolve(import.meta.dirname, 'results');
    mkdirSync(resultsDir, { recursive: true });
    const file = join(resultsDir, `${result.startedAt.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    console.log(table);
    console.log(`Acceptance (meshlite vs HAProxy): ${JSON.stringify(result.acceptance)}`);
    log(`result written to ${file}`);
  } finally {
    await cleanup();
  }
}

await main().catch((error: Error) => {
  log(`bench failed: ${error.stack ?? error.message}`);
  process.exitCode = 1;
});
