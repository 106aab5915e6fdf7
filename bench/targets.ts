// The benchmark's backends (grpc-go, grpc-js or the own-core micro backend) and targets (direct, meshlite with its
// default balancer and with round-robin, HAProxy, nginx grpc_pass): configs, start, readiness, stop.

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { buildGoBenchPrograms } from '../lab/grpc-go-build.ts';
import { agentNodeFlags } from '../lab/image-recipe.ts';
import type { BackendReady } from './backend.ts';
import { probe } from './h2load-run.ts';
import { autogroupOf, processTree } from './proc-cpu.ts';
import { type ManagedProcess, logTail, spawnManaged, stopProcess } from './processes.ts';

export const TARGET_NAMES = ['direct', 'meshlite', 'meshlite-rr', 'haproxy', 'nginx'] as const;
export type TargetName = (typeof TARGET_NAMES)[number];

/**
 * grpc-go and grpc-js: real gRPC servers, the headline. own: bench/backend.ts on meshlite's own HTTP/2 core, which
 * frames exactly the way the relay parses best: a micro-benchmark only (DESIGN.md decision 15).
 */
export const BACKEND_KINDS = ['grpc-go', 'grpc-js', 'own'] as const;
export type BackendKind = (typeof BACKEND_KINDS)[number];
export const HEADLINE_BACKENDS: readonly BackendKind[] = ['grpc-go', 'grpc-js'];

/** What GET /count on a backend's control port answers; connections is null where the server cannot count them. */
export interface ServedCounts {
  requests: number;
  resets: number;
  connections: number | null;
}

const REPO = resolve(import.meta.dirname, '..');
const READY_TIMEOUT_MS = 20_000;

export interface Backend {
  readonly kind: BackendKind;
  readonly index: number;
  readonly grpcPort: number;
  readonly controlPort: number;
  readonly process: ManagedProcess;
}

export interface Target {
  readonly name: TargetName;
  /** Where h2load connects. */
  readonly port: number;
  /** The proxy's main process; null for direct. */
  readonly process: ManagedProcess | null;
  /** Every process whose CPU is the proxy's (nginx: master and worker); empty for direct. */
  readonly cpuPids: number[];
  readonly autogroup: string | null;
  /** How the proxy was started (meshlite: the Node flags and agent arguments). */
  readonly args?: string[];
  /** meshlite's admin address. */
  readonly admin?: string;
  stop(): Promise<void>;
}

export interface TargetContext {
  dir: string;
  backends: readonly Backend[];
  dataFile: string;
  /** meshlite only: Node flags after the image's own (a profiler, a sampler), and environment for the agent. */
  agentExtraNodeFlags?: readonly string[];
  agentEnv?: NodeJS.ProcessEnv;
  /** More agent arguments for the meshlite targets (bench/workers-scale.ts: --workers N). */
  meshliteArgs?: readonly string[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A port that was free a moment ago (bound to 0, read, released). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ok());
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((ok) => server.close(() => ok()));
  return port;
}

async function backendCommand(kind: BackendKind): Promise<[string, string[]]> {
  switch (kind) {
    case 'grpc-go':
      return [(await buildGoBenchPrograms()).benchserver, ['-stop-on-stdin-close']];
    case 'grpc-js':
      return [process.execPath, [join(REPO, 'bench', 'grpc-js-backend.ts')]];
    case 'own':
      return [process.execPath, [join(REPO, 'bench', 'backend.ts')]];
  }
}

async function startBackend(kind: BackendKind, index: number, dir: string): Promise<Backend> {
  const [command, args] = await backendCommand(kind);
  const p = spawnManaged(`${kind}-backend-${index}`, command, args, {
    logFile: join(dir, `${kind}-backend-${index}.log`),
    pipeStdout: true,
    pipeStdin: true,
    cwd: REPO,
  });
  const lines = createInterface({ input: p.child.stdout! });
  const first = new Promise<string>((ok) => lines.once('line', ok));
  const outcome = await Promise.race([first, p.exited.then(() => null), sleep(READY_TIMEOUT_MS).then(() => undefined)]);
  lines.close();
  if (typeof outcome !== 'string') {
    throw new Error(`${kind} backend ${index} did not start (${outcome === null ? `exited ${p.exitStatus}` : 'timeout'}):\n${logTail(p)}`);
  }
  const ready = JSON.parse(outcome) as BackendReady;
  p.child.stdout?.resume(); // nothing more is expected; never let a full pipe block it
  return { kind, index, grpcPort: ready.grpcPort, controlPort: ready.controlPort, process: p };
}

export async function startBackends(kind: BackendKind, count: number, dir: string): Promise<Backend[]> {
  const out: Backend[] = [];
  try {
    for (let i = 0; i < count; i++) out.push(await startBackend(kind, i, dir));
  } catch (error) {
    for (const b of out) await stopProcess(b.process);
    throw error;
  }
  return out;
}

export async function stopBackends(backends: readonly Backend[]): Promise<void> {
  for (const b of backends) await stopProcess(b.process);
}

function getJson(port: number, path: string): Promise<unknown> {
  return new Promise((ok, fail) => {
    const req = http.get({ host: '127.0.0.1', port, path, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          ok(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch (error) {
          fail(error);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} on port ${port} timed out`)));
    req.on('error', fail);
  });
}

/** What each backend has counted so far (requests answered, connections accepted), in backend order. */
export function backendCounts(backends: readonly Backend[]): Promise<ServedCounts[]> {
  return Promise.all(backends.map((b) => getJson(b.controlPort, '/count') as Promise<ServedCounts>));
}

/** Probes until requests come back with the backends' reply, or fails with the proxy's log. */
async function waitReady(name: string, port: number, p: ManagedProcess | null, ctx: TargetContext): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = 'no probe yet';
  while (Date.now() < deadline) {
    if (p !== null && p.exitStatus !== null) {
      throw new Error(`${name} exited (${p.exitStatus}) before it served requests:\n${logTail(p)}`);
    }
    const problem = await probe(port, {
      dataFile: ctx.dataFile,
      logFile: join(ctx.dir, `probe-${name}.log`),
      outputFile: join(ctx.dir, `probe-${name}.out`),
    }).catch((error: Error) => error.message.split('\n')[0]);
    if (problem === null) return;
    last = problem;
    await sleep(300);
  }
  throw new Error(`${name} not ready on port ${port} after ${READY_TIMEOUT_MS / 1000} s (${last})${p ? `:\n${logTail(p)}` : ''}`);
}

async function started(name: TargetName, port: number, p: ManagedProcess, ctx: TargetContext, workers = false): Promise<Target> {
  try {
    await waitReady(name, port, p, ctx);
  } catch (error) {
    await stopProcess(p, workers ? processTree(p.pid).slice(1) : []);
    throw error;
  }
  const cpuPids = workers ? processTree(p.pid) : [p.pid];
  return {
    name,
    port,
    process: p,
    cpuPids,
    autogroup: autogroupOf(p.pid),
    // nginx's master ends its worker on SIGTERM; any worker left over is ended by its own PID.
    stop: () => stopProcess(p, cpuPids.slice(1)),
  };
}

function nginxConfig(dir: string, port: number, backends: readonly Backend[]): string {
  const servers = backends.map((b) => `    server 127.0.0.1:${b.grpcPort};`).join('\n');
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${dir}/nginx-${t};`).join('\n');
  return `# meshlite bench: nginx grpc_pass, one worker, upstream keepalive
${process.getuid?.() === 0 ? 'user root;\n' : ''}worker_processes 1;
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
${temp}
  # Client connections must not be closed every 1000 requests (the default); h2load would lose requests.
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  upstream grpc_backends {
${servers}
    # nginx's grpc_pass uses one upstream connection per request in flight: keep enough of them open.
    keepalive 256;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
  }
  server {
    listen 127.0.0.1:${port} http2;
    location / { grpc_pass grpc://grpc_backends; }
  }
}
`;
}

function haproxyConfig(port: number, backends: readonly Backend[]): string {
  const servers = backends.map((b) => `  server b${b.index} 127.0.0.1:${b.grpcPort} proto h2`).join('\n');
  return `# meshlite bench: HAProxy, one thread, h2 on both sides, connection reuse, round-robin
global
  nbthread 1
  # Far more than the benchmark opens, and within the usual open-file limit (HAProxy needs about 2 per connection).
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-keep-alive 300s
frontend grpc_in
  bind 127.0.0.1:${port} proto h2
  default_backend grpc_backends
backend grpc_backends
  balance roundrobin
  http-reuse always
${servers}
`;
}

/**
 * The static discovery file of issue 3 item 3: one service with the three backends. A balancer is named only for the
 * round-robin target: the other runs on the agent's default.
 */
function meshliteStaticFile(backends: readonly Backend[], balancer: string | null): string {
  const endpoints = backends.map((b) => `      - address: 127.0.0.1:${b.grpcPort}`).join('\n');
  return `services:
  - name: greeter
    namespace: default
    port: 50051
${balancer === null ? '' : `    balancer: ${balancer}\n`}    endpoints:
${endpoints}
`;
}

async function startNginx(ctx: TargetContext): Promise<Target> {
  const port = await freePort();
  const conf = join(ctx.dir, 'nginx.conf');
  writeFileSync(conf, nginxConfig(ctx.dir, port, ctx.backends));
  const args = ['-p', ctx.dir, '-c', conf, '-e', join(ctx.dir, 'nginx-error.log')];
  const p = spawnManaged('nginx', 'nginx', args, { logFile: join(ctx.dir, 'nginx.out') });
  return started('nginx', port, p, ctx, true);
}

async function startHaproxy(ctx: TargetContext): Promise<Target> {
  const port = await freePort();
  const conf = join(ctx.dir, 'haproxy.cfg');
  writeFileSync(conf, haproxyConfig(port, ctx.backends));
  // -db: stay in the foreground, one process (no master-worker).
  const p = spawnManaged('haproxy', 'haproxy', ['-db', '-f', conf], { logFile: join(ctx.dir, 'haproxy.out') });
  return started('haproxy', port, p, ctx);
}

async function startMeshlite(ctx: TargetContext, name: 'meshlite' | 'meshlite-rr'): Promise<Target> {
  const main = join(REPO, 'agent', 'main.ts');
  if (!existsSync(main)) throw new Error('agent/main.ts does not exist yet: the agent cannot be started');
  const port = await freePort();
  const admin = await freePort();
  // In a directory of its own: the agent watches the file's directory, and the load generator's output and the
  // other processes' logs written beside it would wake the agent for nothing (HAProxy's configuration is not watched).
  const staticDir = join(ctx.dir, `${name}-discovery`);
  mkdirSync(staticDir, { recursive: true });
  const staticFile = join(staticDir, 'static.yaml');
  // meshlite: no --balancer, no balancer in the file: the agent's default. meshlite-rr: round-robin, as HAProxy.
  const balancer = name === 'meshlite-rr' ? 'round-robin' : null;
  writeFileSync(staticFile, meshliteStaticFile(ctx.backends, balancer));
  const args = [...agentNodeFlags(), ...(ctx.agentExtraNodeFlags ?? []), main, '--discovery', 'static', '--static-file', staticFile, '--listen', `127.0.0.1:${port}`];
  args.push('--admin', `127.0.0.1:${admin}`);
  if (balancer !== null) args.push('--balancer', balancer);
  // One thread, as HAProxy and nginx run here (one thread, one worker); bench/workers-scale.ts passes --workers N.
  args.push('--workers', '1', ...(ctx.meshliteArgs ?? []));
  const env = ctx.agentEnv === undefined ? undefined : { ...process.env, ...ctx.agentEnv };
  const p = spawnManaged(name, process.execPath, args, { logFile: join(ctx.dir, `${name}.out`), cwd: REPO, env });
  const target = await started(name, port, p, ctx);
  return { ...target, args, admin: `127.0.0.1:${admin}` };
}

async function startDirect(ctx: TargetContext): Promise<Target> {
  const port = ctx.backends[0].grpcPort;
  await waitReady('direct', port, null, ctx);
  return { name: 'direct', port, process: null, cpuPids: [], autogroup: null, stop: async () => {} };
}

export function startTarget(name: TargetName, ctx: TargetContext): Promise<Target> {
  switch (name) {
    case 'direct':
      return startDirect(ctx);
    case 'meshlite':
    case 'meshlite-rr':
      return startMeshlite(ctx, name);
    case 'nginx':
      return startNginx(ctx);
    case 'haproxy':
      return startHaproxy(ctx);
  }
}
