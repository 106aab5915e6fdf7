// `npm run bench:profile`: where meshlite's CPU and allocation go against real gRPC servers at a fixed rate. Three
// backends (grpc-js by default), the agent as the image starts it, h2load at a fixed rate; then the agent's CPU per
// thread (main thread against V8's GC and compiler helpers), and with --allocation the bytes allocated per request by
// function and the garbage collections of the measured window; with --cpu-prof the functions the main thread was busy
// in. Figures and the machine go to bench/results/profile-<time>.json.

import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { agentRevision } from './agent-revision.ts';
import { type LoadShape, runLoad, writeRequestFile } from './h2load-run.ts';
import { numberOption } from './number-option.ts';
import { portableArgs } from './portable-args.ts';
import { clockTicksPerSecond } from './proc-cpu.ts';
import { killAllNow, stopAll } from './processes.ts';
import { summarizeAllocation, summarizeCpuProfile } from './profile-summary.ts';
import { BACKEND_KINDS, type BackendKind, startBackends, startTarget, stopBackends } from './targets.ts';

const USAGE = `Usage: npm run bench:profile -- [options]
  --backends KIND   ${BACKEND_KINDS.join(', ')} (default grpc-js)
  --rate N          requests per second over 8 connections × 16 in flight (default 12000)
  --seconds S       measured seconds (default 10), after 2 s of warm-up
  --allocation      sample the agent's allocations and count its garbage collections in the measured window
  --cpu-prof        write the agent's CPU profile (node --cpu-prof) and list where the main thread was busy
                    (one of the two per run: the heap sampler's inspector work would show in the CPU profile)
  --node-flags F    Node flags for the agent after the image's (space-separated), to try one against another
Run it under flock /tmp/meshlite-load.lock so that it never overlaps other load tests.`;

const WARMUP_S = 2;

/** CPU ticks of each thread of `pid` by thread name (V8's helper threads share one name, so they are summed). */
function threadTicks(pid: number): Map<string, number> {
  const ticks = new Map<string, number>();
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${task}/stat`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks.set(name, (ticks.get(name) ?? 0) + Number(fields[11]) + Number(fields[12]));
  }
  return ticks;
}

async function waitForFile(path: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      if (Date.now() > deadline) throw new Error(`${path} was not written within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      backends: { type: 'string', default: 'grpc-js' },
      rate: { type: 'string' },
      seconds: { type: 'string' },
      allocation: { type: 'boolean', default: false },
      'cpu-prof': { type: 'boolean', default: false },
      'node-flags': { type: 'string', default: '' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const kind = values.backends as BackendKind;
  if (!BACKEND_KINDS.includes(kind)) throw new Error(`--backends wants one of ${BACKEND_KINDS.join(', ')}, not "${values.backends}"`);
  const rate = numberOption(values.rate, 12_000, 'rate', { min: 100, max: 1_000_000, integer: true });
  const seconds = numberOption(values.seconds, 10, 'seconds', { min: 1, max: 600 });
  const shape: LoadShape = { name: 'fixed-rate', connections: 8, streams: 16, rate, h2loadThreads: 1 };

  const dir = mkdtempSync(join(os.tmpdir(), 'meshlite-profile-'));
  const allocationFile = join(dir, 'allocation.json');
  const profileDir = join(dir, 'cpu-profile');
  const extraFlags: string[] = values['node-flags'].split(' ').filter((flag) => flag !== '');
  if (values.allocation) extraFlags.push('--import', resolve(import.meta.dirname, 'allocation-sampler.ts'));
  if (values['cpu-prof']) extraFlags.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`);
  const dataFile = writeRequestFile(dir);
  const backends = await startBackends(kind, 3, dir);
  try {
    const agent = await startTarget('meshlite', {
      dir,
      backends,
      dataFile,
      agentExtraNodeFlags: extraFlags,
      agentEnv: { MESHLITE_ALLOCATION_OUT: allocationFile },
    });
    const pid = agent.process?.pid ?? 0;
    const load = (durationS: number) =>
      runLoad({ port: agent.port, shape, durationS, dataFile, logFile: join(dir, 'h2load.log'), outputFile: join(dir, 'h2load.out') });
    await load(WARMUP_S);
    const before = threadTicks(pid);
    if (values.allocation) process.kill(pid, 'SIGUSR2');
    const run = await load(seconds);
    if (values.allocation) process.kill(pid, 'SIGUSR2');
    const after = threadTicks(pid);
    const hz = clockTicksPerSecond();
    const threads: Record<string, number> = {};
    for (const [name, ticks] of after) threads[name] = (ticks - (before.get(name) ?? 0)) / hz;
    const cpuSeconds = Object.values(threads).reduce((a, b) => a + b, 0);
    const succeeded = run.summary.requests.succeeded;
    const allocation = values.allocation ? summarizeAllocation(JSON.parse(await waitForFile(allocationFile, 30_000)), succeeded) : null;
    await agent.stop();
    const cpuProfile = values['cpu-prof'] ? summarizeCpuProfile(profileDir) : null;

    const result = {
      startedAt: new Date().toISOString(),
      agentRevision: agentRevision(),
      machine: { cpuModel: os.cpus()[0]?.model ?? 'unknown', cores: os.availableParallelism(), kernel: `${os.type()} ${os.release()}`, node: process.version },
      backends: kind,
      rate,
      seconds,
      agentArgs: portableArgs(agent.args ?? [], dir),
      succeeded,
      failed: run.summary.requests.failed + run.summary.requests.errored,
      p99Us: run.latency.p99Us,
      agentCpuSeconds: cpuSeconds,
      requestsPerCpuSecond: Math.round(succeeded / cpuSeconds),
      cpuSecondsByThread: threads,
      allocation,
      cpuProfile,
    };
    console.log(`${succeeded} requests OK (${result.failed} failed) in ${seconds} s at ${rate}/s against ${kind}; p99 ${run.latency.p99Us} µs`);
    console.log(`agent CPU ${cpuSeconds.toFixed(2)} s: ${result.requestsPerCpuSecond} requests per CPU-second;`, threads);
    if (allocation !== null) {
      console.log(`allocated ${allocation.bytesPerRequest} B per request; ${allocation.gc.minor} scavenges (${allocation.gc.minorMs.toFixed(0)} ms) and ${allocation.gc.major} full collections`);
      for (const row of allocation.topFunctions) console.log(`  ${String(row.bytesPerRequest).padStart(5)} B/req  ${row.function}`);
    }
    if (cpuProfile !== null) {
      console.log(`main thread busy ${cpuProfile.busyShare}% of the profile; of the busy time:`);
      for (const row of cpuProfile.topFunctions) console.log(`  ${row.share.toFixed(1).padStart(5)}%  ${row.function}`);
    }
    const resultsDir = resolve(import.meta.dirname, 'results');
    mkdirSync(resultsDir, { recursive: true });
    const file = join(resultsDir, `profile-${result.startedAt.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`result written to ${file}`);
  } finally {
    await stopBackends(backends);
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

process.on('SIGINT', () => {
  killAllNow();
  process.exit(130);
});

await main();
