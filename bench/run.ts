// `npm run bench`: direct vs meshlite (default balancer, and round-robin) vs HAProxy vs nginx grpc_pass, with real
// gRPC backends (grpc-go, grpc-js; the own-core backend as a micro-benchmark only) and three load generators (h2load,
// grpc-go channels, grpc-js channels); interleaved rounds, JSON with the Markdown table in bench/results/.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_BALANCER } from '../agent/vocabulary/balancer-names.ts';
import { agentRevision } from './agent-revision.ts';
import { type LoadShape, SHAPES, writeRequestFile } from './h2load-run.ts';
import { LOADER_NAMES, type LoaderName, runLoader } from './loaders.ts';
import { agentNodeFlags } from '../lab/image-recipe.ts';
import { numberOption } from './number-option.ts';
import { portableArgs } from './portable-args.ts';
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
import {
  BACKEND_KINDS,
  type Backend,
  type BackendKind,
  TARGET_NAMES,
  type Target,
  type TargetContext,
  type TargetName,
  backendCounts,
  startBackends,
  startTarget,
  stopBackends,
} from './targets.ts';

const DEFAULT_BACKENDS: BackendKind[] = ['grpc-go', 'grpc-js'];
const DEFAULT_LOADERS: LoaderName[] = ['h2load'];

const USAGE = `Usage: npm run bench -- [options]
  --rounds N        interleaved rounds (default 5)
  --duration S      measured seconds per run (default 5)
  --warmup S        warm-up seconds before each run, not measured (default 1)
  --backends LIST   comma-separated backend kinds: ${BACKEND_KINDS.join(',')} (default ${DEFAULT_BACKENDS.join(',')});
                    own (meshlite's own HTTP/2 core) is a micro-benchmark, never in the headline
  --loaders LIST    comma-separated load generators: ${LOADER_NAMES.join(',')} (default ${DEFAULT_LOADERS.join(',')})
  --shapes LIST     comma-separated subset of ${SHAPES.map((s) => s.name).join(',')} (default: all)
  --targets LIST    comma-separated subset of ${TARGET_NAMES.join(',')} (default: all)
  --quick           smoke run: 1 round, 2 s runs, 0.5 s warm-up
  --help            this text
Run it under flock /tmp/meshlite-load.lock so that it never overlaps other load tests.`;

interface Options {
  rounds: number;
  durationS: number;
  warmupS: number;
  backends: BackendKind[];
  loaders: LoaderName[];
  shapes: LoadShape[];
  targets: TargetName[];
  quick: boolean;
}

function list<T extends string>(value: string | undefined, all: readonly T[], fallback: readonly T[], name: string): T[] {
  const wanted = (value?.split(',') ?? [...fallback]).map((v) => v.trim());
  for (const v of wanted) if (!(all as readonly string[]).includes(v)) throw new Error(`--${name}: unknown ${v} (known: ${all.join(', ')})`);
  return all.filter((v) => wanted.includes(v));
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      backends: { type: 'string' },
      loaders: { type: 'string' },
      shapes: { type: 'string' },
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
  const shapeNames = list(values.shapes, SHAPES.map((s) => s.name), SHAPES.map((s) => s.name), 'shapes');
  return {
    rounds: Math.round(numberOption(values.rounds, quick ? 1 : 5, 'rounds', { min: 1, max: 20 })),
    durationS: numberOption(values.duration, quick ? 2 : 5, 'duration', { min: 0.5, max: 60 }),
    warmupS: numberOption(values.warmup, quick ? 0.5 : 1, 'warmup', { min: 0, max: 30 }),
    backends: list(values.backends, BACKEND_KINDS, DEFAULT_BACKENDS, 'backends'),
    loaders: list(values.loaders, LOADER_NAMES, DEFAULT_LOADERS, 'loaders'),
    shapes: SHAPES.filter((s) => shapeNames.includes(s.name)),
    targets: list(values.targets, TARGET_NAMES, TARGET_NAMES, 'targets'),
    quick,
  };
}

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

interface Bench {
  o: Options;
  dir: string;
  ticksPerSecond: number;
  /** What is left of the time the whole bench may spend waiting for other load on the machine to pass. */
  quietBudgetMs: number;
}

interface RunKey {
  round: number;
  backend: BackendKind;
  loader: LoaderName;
  shape: LoadShape;
  target: TargetName;
}

function emptyRecord(k: RunKey, error: string): RunRecord {
  return {
    round: k.round,
    backend: k.backend,
    loader: k.loader,
    shape: k.shape.name,
    target: k.target,
    error,
    requestsPerSecond: 0,
    p50Us: null,
    p99Us: null,
    p999Us: null,
    requests: 0,
    served: [],
    backendConnectionsOpened: null,
    wallSeconds: 0,
    proxyCpuSeconds: null,
    proxyCpuShare: null,
    backendCpuSeconds: null,
    loaderCpuSeconds: null,
    requestsPerCpuSecond: null,
    errors: { failed: 0, noReply: 0, backendShortfall: 0, total: 0 },
    loaderAutogroup: null,
    machineIdleShare: null,
    machineIdleBefore: null,
  };
}

/** One measured run: warm-up, then counts and CPU sampled around the measured load run. */
async function measure(b: Bench, ctx: TargetContext, target: Target, k: RunKey): Promise<RunRecord> {
  if (target.process !== null && target.process.exitStatus !== null) {
    return emptyRecord(k, `${target.name} exited (${target.process.exitStatus})`);
  }
  // Other work on the machine would distort the run: wait until the CPU is mostly idle, within a budget per bench.
  const waitStart = Date.now();
  const idleBefore = await waitForQuiet(0.85, Math.min(b.quietBudgetMs, 10_000), 300);
  b.quietBudgetMs = Math.max(0, b.quietBudgetMs - (Date.now() - waitStart));
  const run = { port: target.port, shape: k.shape, dir: b.dir, dataFile: ctx.dataFile };
  if (b.o.warmupS > 0) await runLoader(k.loader, { ...run, durationS: b.o.warmupS });
  const backendPids = ctx.backends.map((x: Backend) => x.process.pid);
  const countsBefore = await backendCounts(ctx.backends);
  const backendBefore = sampleCpu(backendPids);
  const proxyBefore = sampleCpu(target.cpuPids);
  const systemBefore = sampleSystem();
  const wallBefore = performance.now();
  const r = await runLoader(k.loader, { ...run, durationS: b.o.durationS });
  const wallSeconds = (performance.now() - wallBefore) / 1000;
  const systemAfter = sampleSystem();
  const proxyAfter = sampleCpu(target.cpuPids);
  const backendAfter = sampleCpu(backendPids);
  const countsAfter = await backendCounts(ctx.backends);
  const served = countsAfter.map((n, i) => n.requests - countsBefore[i].requests);
  const connections = countsAfter.some((n) => n.connections === null)
    ? null
    : countsAfter.reduce((a, n, i) => a + (n.connections ?? 0) - (countsBefore[i].connections ?? 0), 0);
  const servedTotal = served.reduce((a, c) => a + c, 0);
  const proxyCpuSeconds = target.cpuPids.length === 0 ? null : cpuSecondsBetween(proxyBefore, proxyAfter, b.ticksPerSecond);
  const backendShortfall = Math.max(0, r.ok - servedTotal);
  const record: RunRecord = {
    round: k.round,
    backend: k.backend,
    loader: k.loader,
    shape: k.shape.name,
    target: k.target,
    error: null,
    requestsPerSecond: r.requestsPerSecond,
    p50Us: r.p50Us,
    p99Us: r.p99Us,
    p999Us: r.p999Us,
    requests: r.requests,
    served,
    backendConnectionsOpened: connections,
    wallSeconds,
    proxyCpuSeconds,
    proxyCpuShare: proxyCpuSeconds === null || wallSeconds <= 0 ? null : proxyCpuSeconds / wallSeconds,
    backendCpuSeconds: cpuSecondsBetween(backendBefore, backendAfter, b.ticksPerSecond),
    loaderCpuSeconds: null,
    requestsPerCpuSecond: proxyCpuSeconds !== null && proxyCpuSeconds > 0 ? servedTotal / proxyCpuSeconds : null,
    errors: { failed: r.failed, noReply: r.noReply, backendShortfall, total: r.failed + Math.max(r.noReply, backendShortfall) },
    loaderAutogroup: r.autogroup,
    machineIdleShare: idleShare(systemBefore, systemAfter),
    machineIdleBefore: idleBefore,
  };
  if (target.process !== null && target.process.exitStatus !== null) {
    record.error = `${target.name} exited (${target.process.exitStatus}) during the run`;
  }
  return record;
}

function progress(r: RunRecord, rounds: number): string {
  const head = `round ${r.round}/${rounds} ${r.backend.padEnd(7)} ${r.loader.padEnd(7)} ${r.shape.padEnd(10)} ${r.target.padEnd(11)}`;
  if (r.error !== null) return `${head} FAILED: ${r.error}`;
  const cpu =
    r.proxyCpuSeconds === null
      ? ''
      : ` cpu ${(r.proxyCpuShare ?? 0).toFixed(2)} core → ${Math.round(r.requestsPerCpuSecond ?? 0)} req/CPU-s`;
  return (
    `${head} ${Math.round(r.requestsPerSecond)} req/s p50 ${r.p50Us} p99 ${r.p99Us} p99.9 ${r.p999Us} µs${cpu} ` +
    `served ${r.served.join('/')} new-conns ${r.backendConnectionsOpened ?? '?'} errors ${r.errors.total} ` +
    `idle ${Math.round((r.machineIdleBefore ?? 0) * 100)}%/${Math.round((r.machineIdleShare ?? 0) * 100)}%`
  );
}

let interrupted = false;

const rotate = <T>(items: readonly T[], by: number): T[] => items.map((_, i) => items[(i + by) % items.length]);

async function main(): Promise<void> {
  const o = options();
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 24) throw new Error(`run on the pinned Node (npm run bench or ./node_modules/.bin/node), not ${process.version}`);
  const dir = mkdtempSync(join(os.tmpdir(), 'meshlite-bench-'));
  let started: Target[] = [];
  let backends: Backend[] = [];
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
    // At the start: other commits may land while the bench runs; the figures belong to the code that was started.
    const revision = agentRevision();
    const machine = describeMachine(autogroupsEnabled());
    const ticksPerSecond = clockTicksPerSecond();
    const nodeFlags = agentNodeFlags();
    log(`meshlite starts with the image's Node flags: ${nodeFlags.length === 0 ? '(none)' : nodeFlags.join(' ')}`);
    const runs = o.backends.length * o.loaders.length * o.shapes.length * o.targets.length * o.rounds;
    log(`${runs} runs of ${o.warmupS + o.durationS} s: at least ${Math.ceil((runs * (o.warmupS + o.durationS + 0.6)) / 60)} min`);
    const b: Bench = { o, dir, ticksPerSecond, quietBudgetMs: o.quick ? 5000 : 120_000 };
    const dataFile = writeRequestFile(dir);
    const records: RunRecord[] = [];
    const unavailable: Array<{ backend: BackendKind; target: TargetName; reason: string }> = [];
    const setups: Array<Record<string, unknown>> = [];
    const own = autogroupOf(process.pid);
    for (const kind of o.backends) {
      backends = await startBackends(kind, 3, dir);
      const ctx: TargetContext = { dir, backends, dataFile };
      started = [];
      for (const name of o.targets) {
        try {
          const t = await startTarget(name, ctx);
          started.push(t);
          log(`${kind}: ${name}: port ${t.port}, pids ${t.cpuPids.join(',') || '-'}, autogroup ${t.autogroup ?? '-'}`);
        } catch (error) {
          const reason = (error as Error).message;
          unavailable.push({ backend: kind, target: name, reason });
          log(`${kind}: ${name}: NOT MEASURED: ${reason}`);
        }
      }
      const groups = [...started.map((t) => t.autogroup), ...backends.map((x) => autogroupOf(x.process.pid))];
      if (groups.some((g, i) => g !== null && (g === own || groups.indexOf(g) !== i))) {
        log('WARNING: some processes share a scheduler autogroup; CPU per request is not comparable');
      }
      setups.push({
        backend: kind,
        /** The agent's code when these targets started (others may commit while a bench runs). */
        agentRevision: agentRevision(),
        backends: backends.map((x) => ({ index: x.index, port: x.grpcPort, autogroup: autogroupOf(x.process.pid) })),
        targets: started.map((t) => ({ name: t.name, port: t.port, cpuPids: t.cpuPids, autogroup: t.autogroup, args: t.args === undefined ? undefined : portableArgs(t.args, dir) })),
      });
      if (o.warmupS > 0) {
        // Before the first round, load through every target once, unmeasured: the grpc-js servers and the agent (both
        // Node) compile their hot code in their first seconds under load, and without this the first run of round 1
        // met cold backends whichever target it was.
        for (const target of started) {
          for (const loader of o.loaders) {
            if (interrupted) return;
            await runLoader(loader, { port: target.port, shape: o.shapes[0], dir, dataFile, durationS: 2 * o.warmupS });
          }
        }
        log(`warmed up: every target, ${2 * o.warmupS} s of ${o.shapes[0].name} per load generator`);
      }
      for (let round = 1; round <= o.rounds; round++) {
        for (const loader of o.loaders) {
          for (const shape of o.shapes) {
            for (const target of rotate(started, round - 1)) {
              if (interrupted) return;
              const k: RunKey = { round, backend: kind, loader, shape, target: target.name };
              let record: RunRecord;
              try {
                record = await measure(b, ctx, target, k);
              } catch (error) {
                record = emptyRecord(k, (error as Error).message);
              }
              if (interrupted) return;
              records.push(record);
              log(progress(record, o.rounds));
            }
          }
        }
      }
      for (const t of started) await t.stop();
      started = [];
      await stopBackends(backends);
      backends = [];
    }
    const groupsMeasured = o.backends.flatMap((backend) => o.loaders.map((loader) => ({ backend, loader })));
    const summaries = summarize(records, groupsMeasured, o.shapes, o.targets);
    const argv = process.argv.slice(2);
    const command = `flock /tmp/meshlite-load.lock npm run bench${argv.length === 0 ? '' : ` -- ${argv.join(' ')}`}`;
    const table = markdown(summaries, {
      machine,
      defaultBalancer: DEFAULT_BALANCER,
      revision,
      command,
      rounds: o.rounds,
      durationS: o.durationS,
      warmupS: o.warmupS,
      backends: o.backends,
      loaders: o.loaders,
      shapes: o.shapes,
      targets: o.targets,
      unavailable,
    });
    const result = {
      startedAt: new Date().toISOString(),
      agentRevision: revision,
      command,
      options: o,
      machine,
      clockTicksPerSecond: ticksPerSecond,
      harnessAutogroup: own,
      meshliteNodeFlags: nodeFlags,
      /** The balancer the `meshlite` target runs with: the agent's default (no --balancer, none in the static file). */
      meshliteDefaultBalancer: DEFAULT_BALANCER,
      setups,
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
    for (const a of result.acceptance) {
      log(
        `acceptance ${a.backend}/${a.loader}/${a.shape} ${a.target}: min ÷ HAProxy ${a.minRatio?.toFixed(2) ?? '–'} over ${a.rounds} ` +
          `round(s), every round ≥ 1.0: ${a.everyRoundAtLeastHaproxy}, errors none: ${a.noErrors}, even spread: ${a.evenSpread}`,
      );
    }
    log(`result written to ${file}`);
  } finally {
    await cleanup();
  }
}

await main().catch((error: Error) => {
  log(`bench failed: ${error.stack ?? error.message}`);
  process.exitCode = 1;
});
