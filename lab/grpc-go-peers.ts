// Real grpc-go peers in their own processes: the test.Echo server and a load-generating client (lab/grpc-go/), the
// counterparts of grpc-peers.ts's grpc-js ones, for behaviour that depends on the peer's HTTP/2 (GOAWAY, limits).

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { buildGoPeers } from './grpc-go-build.ts';

export { buildGoPeers, grpcGoUnavailable } from './grpc-go-build.ts';

export interface GoServerOptions {
  /** Defaults to 127.0.0.1 and a free port. */
  host?: string;
  port?: number;
  /** Reported in `x-served-by`; defaults to `host:port`. */
  id?: string;
  /** Delay before each response (a call's x-delay-ms overrides it). */
  delayMs?: number;
  /** GOAWAY to each connection this old (grpc-go adds ±10% jitter); unset: never. */
  maxConnectionAgeMs?: number;
  /** Then the connection is closed this much later; unset: once its calls have ended. */
  maxConnectionAgeGraceMs?: number;
  /** SETTINGS_MAX_CONCURRENT_STREAMS; unset: grpc-go's default (unlimited). */
  maxConcurrentStreams?: number;
}

export interface GoServerStats {
  calls: number;
  /** Calls whose context ended before the handler did: the peer cancelled, the deadline passed, or a hard stop. */
  cancelled: number;
  inFlight: number;
  /** Connections accepted: more than the clients opened shows that MaxConnectionAge's GOAWAY made them reconnect. */
  connections: number;
}

export interface GoServerHandle {
  port: number;
  id: string;
  pid: number;
  stats(): Promise<GoServerStats>;
  /**
   * graceful (the default): SIGTERM, grpc-go's GracefulStop (GOAWAY, in-flight calls finish); otherwise SIGINT, Stop
   * (connections closed at once). A graceful stop that has not ended within timeoutMs (default 10 s) becomes a hard
   * one, and a hard one that has not ended within 5 s a SIGKILL.
   */
  stop(options?: { graceful?: boolean; timeoutMs?: number }): Promise<void>;
}

export type GoClientKind = 'unary' | 'server-stream';

export interface GoClientOptions {
  /** host:port the client connects to. */
  target: string;
  /** `:authority` of every call (meshlite routes by it), e.g. greeter.default.svc.cluster.local:50051. */
  authority?: string;
  /** Calls in flight at once, all on one ClientConn (default 1). */
  concurrency?: number;
  /** Calls in total; give this, durationMs, or both. */
  count?: number;
  durationMs?: number;
  /** Calls per second over all workers; unset or 0: as fast as possible. */
  rate?: number;
  /** Deadline of each call (default 5000; 0: none). */
  timeoutMs?: number;
  kind?: GoClientKind;
  /** server-stream: messages per call (default 10). */
  messages?: number;
  /** Bytes per request (unary) or per response message (server-stream); default 16. */
  size?: number;
  /** Request metadata of every call, e.g. { 'x-delay-ms': '5' } (see META in grpc-peers.ts). */
  metadata?: Record<string, string>;
  /** The client is killed if it has not finished this long after it started (default: durationMs + 60 s). */
  killAfterMs?: number;
}

export interface GoClientSummary {
  calls: number;
  /** Calls by gRPC status code name (OK, UNAVAILABLE, DEADLINE_EXCEEDED, …). */
  codes: Record<string, number>;
  /** Of the successful calls. */
  latencyMs: { p50: number; p99: number; p999: number; max: number };
  /** Calls by the x-served-by the server answered with. */
  servedBy: Record<string, number>;
  /** server-stream: messages received in all; incompleteStreams: calls that ended OK with fewer than asked for. */
  messages: number;
  incompleteStreams: number;
  /** TCP connections the client dialled. */
  connections: number;
  elapsedMs: number;
  /** Up to five distinct "CODE: message" of failed calls. */
  errors: string[];
}

// A safety net for a test that throws before its finally: whatever is still running when this process exits is
// killed. (Should this process die by SIGKILL instead, the children see their stdin close and stop themselves.)
const running = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const c of running) c.kill('SIGKILL');
    });
  }
  running.add(child);
  child.once('exit', () => running.delete(child));
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/**
 * Sends each signal in turn and waits up to its time for the exit, then SIGKILL; never throws. Ends the child by its
 * PID only (ChildProcess.kill), never by name.
 */
async function endProcess(child: ChildProcess, steps: Array<[NodeJS.Signals, number]>): Promise<void> {
  if (hasExited(child)) return;
  const exited = once(child, 'exit');
  for (const [signal, timeoutMs] of steps) {
    child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), timeoutMs);
    });
    const outcome = await Promise.race([exited, late]);
    clearTimeout(timer);
    if (outcome !== 'late' || hasExited(child)) return;
  }
  child.kill('SIGKILL');
  await exited;
}

const ms = (value: number): string => `${value}ms`;

function serverArgs(opts: GoServerOptions): string[] {
  const args = ['-listen', `${opts.host ?? '127.0.0.1'}:${opts.port ?? 0}`, '-stop-on-stdin-close'];
  if (opts.id !== undefined) args.push('-id', opts.id);
  if (opts.delayMs !== undefined) args.push('-delay', ms(opts.delayMs));
  if (opts.maxConnectionAgeMs !== undefined) args.push('-max-connection-age', ms(opts.maxConnectionAgeMs));
  if (opts.maxConnectionAgeGraceMs !== undefined) args.push('-max-connection-age-grace', ms(opts.maxConnectionAgeGraceMs));
  if (opts.maxConcurrentStreams !== undefined) args.push('-max-concurrent-streams', String(opts.maxConcurrentStreams));
  return args;
}

/** Starts a grpc-go echo server (building it first if needed); resolves once it listens. */
export async function startGoServer(opts: GoServerOptions = {}): Promise<GoServerHandle> {
  const { echoserver } = await buildGoPeers();
  // stdin is a pipe nobody writes: -stop-on-stdin-close ends the server when this process is gone.
  const child = spawn(echoserver, serverArgs(opts), { stdio: ['pipe', 'pipe', 'pipe'] });
  track(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  // Every line after the first answers one SIGUSR1; stats() asks one at a time, so answers arrive in order.
  let awaitingStats: ((line: string) => void) | undefined;
  const listening = new Promise<{ port: number; id: string }>((resolve, reject) => {
    lines.once('line', (line) => resolve(JSON.parse(line) as { port: number; id: string }));
    child.once('exit', (code, signal) => reject(new Error(`grpc-go echoserver exited (${code ?? signal}) before it listened: ${stderr}`)));
    child.once('error', reject);
  });
  let started: { port: number; id: string };
  try {
    started = await listening;
  } catch (err) {
    await endProcess(child, []);
    throw err;
  }
  lines.on('line', (line) => {
    awaitingStats?.(line);
    awaitingStats = undefined;
  });

  const askStats = (): Promise<GoServerStats> =>
    new Promise((resolve, reject) => {
      if (hasExited(child)) return reject(new Error('grpc-go echoserver has exited'));
      const timer = setTimeout(() => reject(new Error('grpc-go echoserver did not answer SIGUSR1 within 5 s')), 5_000);
      awaitingStats = (line) => {
        clearTimeout(timer);
        resolve(JSON.parse(line) as GoServerStats);
      };
      child.kill('SIGUSR1');
    });
  let statsQueue: Promise<unknown> = Promise.resolve();

  return {
    port: started.port,
    id: started.id,
    pid: child.pid as number,
    stats: () => {
      const answer = statsQueue.then(askStats, askStats);
      statsQueue = answer.catch(() => {});
      return answer;
    },
    stop: ({ graceful = true, timeoutMs = 10_000 } = {}) => {
      const hard: [NodeJS.Signals, number] = ['SIGINT', 5_000];
      return endProcess(child, graceful ? [['SIGTERM', timeoutMs], hard] : [hard]);
    },
  };
}

function clientArgs(opts: GoClientOptions): string[] {
  const args = ['-target', opts.target, '-stop-on-stdin-close'];
  if (opts.authority !== undefined) args.push('-authority', opts.authority);
  if (opts.concurrency !== undefined) args.push('-concurrency', String(opts.concurrency));
  if (opts.count !== undefined) args.push('-count', String(opts.count));
  if (opts.durationMs !== undefined) args.push('-duration', ms(opts.durationMs));
  if (opts.rate !== undefined) args.push('-rate', String(opts.rate));
  if (opts.timeoutMs !== undefined) args.push('-timeout', ms(opts.timeoutMs));
  if (opts.kind !== undefined) args.push('-kind', opts.kind);
  if (opts.messages !== undefined) args.push('-messages', String(opts.messages));
  if (opts.size !== undefined) args.push('-size', String(opts.size));
  for (const [key, value] of Object.entries(opts.metadata ?? {})) args.push('-header', `${key}=${value}`);
  return args;
}

/** Runs the grpc-go load generator to the end and resolves with its summary; rejects if it fails or overruns. */
export async function runGoClient(opts: GoClientOptions): Promise<GoClientSummary> {
  const { echoclient } = await buildGoPeers();
  const child = spawn(echoclient, clientArgs(opts), { stdio: ['pipe', 'pipe', 'pipe'] });
  track(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const killAfterMs = opts.killAfterMs ?? (opts.durationMs ?? 0) + 60_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    // 'close', not 'exit': it comes after stdout has been read to its end (and rejects on a spawn 'error').
    const exited = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
    const overran = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`grpc-go echoclient still running after ${killAfterMs} ms: ${stderr}`)), killAfterMs);
    });
    const [code, signal] = await Promise.race([exited, overran]);
    if (code !== 0) throw new Error(`grpc-go echoclient exited (${code ?? signal}): ${stderr}`);
    return JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as GoClientSummary;
  } finally {
    clearTimeout(timer);
    await endProcess(child, []);
  }
}
