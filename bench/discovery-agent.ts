// The agent under the discovery benchmark: started in its own session, timed to its ready line, its log watched for trouble.

import { createWriteStream } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { agentNodeFlags } from '../lab/image-recipe.ts';
import { sampleCpu } from './proc-cpu.ts';
import { type ManagedProcess, logTail, spawnManaged, stopProcess } from './processes.ts';

const MAIN = resolve(import.meta.dirname, '..', 'agent', 'main.ts');
/** pino's numeric levels: 40 warn, 50 error, 60 fatal. */
const WARN = 40;
const KEPT_ISSUES = 20;

export interface AgentOptions {
  name: string;
  /** The API through this kubeconfig, or `inCluster`. */
  kubeconfig?: string;
  /**
   * In-cluster, as in a pod: the agent runs in a mount namespace of its own whose /run holds this service account
   * (token, ca.crt) at the kubelet's path, with KUBERNETES_SERVICE_HOST/PORT set. Needs root (unshare, mount).
   */
  inCluster?: { serviceAccountDir: string; host: string; port: number };
  nodeName: string;
  dir: string;
  readyTimeoutMs: number;
  ticksPerSecond: number;
  /** Write a V8 CPU profile of the agent into this directory when it exits. */
  cpuProfDir?: string;
}

/** Warnings and errors the agent logged: counts by level, code and message, and the first few lines. */
export interface LogIssues {
  lines: number;
  warnings: number;
  errors: number;
  byCode: Record<string, number>;
  first: string[];
}

export interface RunningAgent {
  readonly process: ManagedProcess;
  readonly admin: string;
  readonly listen: string;
  /** The ready line as logged (services, discovery, ...). */
  readonly ready: Record<string, unknown>;
  /** From spawn to the ready line, ms. */
  readonly readyMs: number;
  /** User + system CPU seconds the agent had used when it was ready. */
  readonly cpuSecondsAtReady: number;
  readonly stdoutLog: string;
  issues(): LogIssues;
  /** SIGTERM, SIGKILL after a grace period; resolves with how long it took and how the process ended. */
  stop(): Promise<{ exitMs: number; status: number | string | null }>;
}

export async function startAgent(o: AgentOptions): Promise<RunningAgent> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MESHLITE_')));
  const nodeArgs = o.cpuProfDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', o.cpuProfDir, '--cpu-prof-name', `${o.name}.cpuprofile`];
  const args = [
    ...agentNodeFlags(),
    ...nodeArgs,
    MAIN,
    '--discovery', 'kubernetes',
    ...(o.kubeconfig === undefined ? [] : ['--kubeconfig', o.kubeconfig]),
    '--node-name', o.nodeName,
    '--listen', '127.0.0.1:0',
    '--admin', '127.0.0.1:0',
    // Discovery's cost alone, as measured before --workers: no data-plane thread's heap in the figures.
    '--workers', '1',
  ];
  const stdoutLog = join(o.dir, `${o.name}.stdout.log`);
  const started = performance.now();
  let command = process.execPath;
  let argv = args;
  if (o.inCluster !== undefined) {
    env.KUBERNETES_SERVICE_HOST = o.inCluster.host;
    env.KUBERNETES_SERVICE_PORT = String(o.inCluster.port);
    // sh and then node exec in place: the spawned PID is the agent's.
    const script = 'mount -t tmpfs meshlite-run /run && mkdir -p "$1" && cp "$2"/token "$2"/ca.crt "$1"/ && shift 2 && exec "$@"';
    command = 'unshare';
    argv = ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', '/run/secrets/kubernetes.io/serviceaccount', o.inCluster.serviceAccountDir, process.execPath, ...args];
  }
  const p = spawnManaged(o.name, command, argv, { logFile: join(o.dir, `${o.name}.stderr.log`), pipeStdout: true, env });
  const out = createWriteStream(stdoutLog);
  const issues: LogIssues = { lines: 0, warnings: 0, errors: 0, byCode: {}, first: [] };
  let readyAt = 0;
  const ready = new Promise<Record<string, unknown>>((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`${o.name} not ready within ${o.readyTimeoutMs} ms`)), o.readyTimeoutMs);
    void p.exited.then((status) => {
      clearTimeout(timer);
      reject(new Error(`${o.name} exited (${status}) before it was ready; stderr: ${logTail(p)}`));
    });
    createInterface({ input: p.child.stdout! }).on('line', (line) => {
      out.write(`${line}\n`);
      issues.lines++;
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      if (entry.msg === 'meshlite ready' && readyAt === 0) {
        readyAt = performance.now();
        clearTimeout(timer);
        resolveReady(entry);
      }
      const level = Number(entry.level);
      if (level >= WARN || entry.code !== undefined) noteIssue(issues, level, entry, line);
    });
  });
  const entry = await ready;
  const cpu = sampleCpu([p.pid]);
  return {
    process: p,
    admin: String(entry.admin),
    listen: String(entry.listen),
    ready: entry,
    readyMs: readyAt - started,
    cpuSecondsAtReady: cpu.ticks / o.ticksPerSecond,
    stdoutLog,
    issues: () => structuredClone(issues),
    stop: async () => {
      const t = performance.now();
      await stopProcess(p, [], 10_000);
      out.end();
      return { exitMs: performance.now() - t, status: p.exitStatus };
    },
  };
}

function noteIssue(issues: LogIssues, level: number, entry: Record<string, unknown>, line: string): void {
  if (level >= 50) issues.errors++;
  else if (level >= WARN) issues.warnings++;
  const key = `${String(entry.code ?? '-')} ${String(entry.msg ?? '')}`;
  issues.byCode[key] = (issues.byCode[key] ?? 0) + 1;
  if (issues.first.length < KEPT_ISSUES) issues.first.push(line.length > 600 ? `${line.slice(0, 600)}…` : line);
}
