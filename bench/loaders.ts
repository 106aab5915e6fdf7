// The benchmark's load generators, one run each in its own process and autogroup: h2load (gRPC-framed unary POSTs),
// lab/grpc-go/benchclient (grpc-go channels) and bench/grpc-js-client.ts (grpc-js channels). All three send 32-byte
// messages to /helloworld.Greeter/SayHello with the same :authority and check that each reply is the backends'.

import { once } from 'node:events';
import { join, resolve } from 'node:path';
import { buildGoBenchPrograms } from '../lab/grpc-go-build.ts';
import type { GrpcJsClientOptions, GrpcLoadSummary } from './grpc-js-client.ts';
import { AUTHORITY, type LoadShape, REPLY_MESSAGE_BYTES, runLoad } from './h2load-run.ts';
import { autogroupOf } from './proc-cpu.ts';
import { logTail, spawnManaged, stopProcess } from './processes.ts';

export const LOADER_NAMES = ['h2load', 'grpc-go', 'grpc-js'] as const;
export type LoaderName = (typeof LOADER_NAMES)[number];

const REQUEST_BYTES = 32;
const REPLY_BYTES = REPLY_MESSAGE_BYTES - 5;

/** One load run as every loader reports it. */
export interface LoadOutcome {
  requestsPerSecond: number;
  /** Requests the loader completed (ok or not) in the measured period. */
  requests: number;
  /** Requests that came back ok with the backends' reply. */
  ok: number;
  /** Failed requests (HTTP or gRPC errors, resets, timeouts). */
  failed: number;
  /** Requests that came back ok without the backends' reply (e.g. a proxy-made Trailers-Only status). */
  noReply: number;
  p50Us: number | null;
  p99Us: number | null;
  p999Us: number | null;
  autogroup: string | null;
}

export interface LoaderRun {
  port: number;
  shape: LoadShape;
  durationS: number;
  dir: string;
  /** h2load's request body (writeRequestFile). */
  dataFile: string;
}

async function runH2load(o: LoaderRun): Promise<LoadOutcome> {
  const r = await runLoad({
    port: o.port,
    shape: o.shape,
    durationS: o.durationS,
    dataFile: o.dataFile,
    logFile: join(o.dir, 'requests.log'),
    outputFile: join(o.dir, 'h2load.out'),
  });
  const q = r.summary.requests;
  const failed = Math.max(q.failed + q.errored + q.timeout, r.latency.non200);
  const replies = Math.floor(r.dataBytes / REPLY_MESSAGE_BYTES);
  return {
    requestsPerSecond: r.summary.requestsPerSecond,
    requests: q.done,
    ok: Math.min(q.succeeded, replies),
    failed,
    noReply: Math.max(0, q.succeeded - replies),
    p50Us: r.latency.p50Us,
    p99Us: r.latency.p99Us,
    p999Us: r.latency.p999Us,
    autogroup: r.autogroup,
  };
}

/** Runs a client load generator that prints one GrpcLoadSummary line; killed 30 s after it should have ended. */
async function runClientProcess(name: string, command: string, args: string[], o: LoaderRun): Promise<LoadOutcome> {
  const p = spawnManaged(name, command, args, { logFile: join(o.dir, `${name}.out`), pipeStdout: true, pipeStdin: true });
  const chunks: Buffer[] = [];
  p.child.stdout?.on('data', (chunk: Buffer) => chunks.push(chunk));
  const stdoutDone = p.child.stdout ? once(p.child.stdout, 'end').catch(() => {}) : Promise.resolve();
  const autogroup = autogroupOf(p.pid);
  const limitMs = (o.durationS + 30) * 1000;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((r) => {
    timer = setTimeout(() => r('timeout'), limitMs);
  });
  try {
    const status = await Promise.race([p.exited, timedOut]);
    if (status === 'timeout') throw new Error(`${name} did not finish within ${limitMs / 1000} s`);
    await stdoutDone;
    const line = Buffer.concat(chunks).toString('utf8').trim().split('\n').at(-1) ?? '';
    if (status !== 0 || line === '') throw new Error(`${name} exited with ${status}:\n${logTail(p)}`);
    const s = JSON.parse(line) as GrpcLoadSummary;
    const has = s.ok > 0;
    return {
      requestsPerSecond: s.ok / s.elapsedS,
      requests: s.calls,
      ok: s.ok,
      failed: s.failed,
      noReply: s.badReplies,
      p50Us: has ? s.p50Us : null,
      p99Us: has ? s.p99Us : null,
      p999Us: has ? s.p999Us : null,
      autogroup,
    };
  } finally {
    clearTimeout(timer);
    await stopProcess(p, [], 1000);
  }
}

async function runGrpcGo(o: LoaderRun): Promise<LoadOutcome> {
  const { benchclient } = await buildGoBenchPrograms();
  const args = ['-target', `127.0.0.1:${o.port}`, '-authority', AUTHORITY, '-stop-on-stdin-close'];
  args.push('-channels', String(o.shape.connections), '-streams', String(o.shape.streams));
  if (o.shape.rate !== null) args.push('-rate', String(o.shape.rate));
  args.push('-duration', `${Math.round(o.durationS * 1000)}ms`, '-size', String(REQUEST_BYTES), '-reply-size', String(REPLY_BYTES));
  return runClientProcess('grpc-go-client', benchclient, args, o);
}

function runGrpcJs(o: LoaderRun): Promise<LoadOutcome> {
  const options: GrpcJsClientOptions = {
    target: `127.0.0.1:${o.port}`,
    authority: AUTHORITY,
    channels: o.shape.connections,
    streams: o.shape.streams,
    rate: o.shape.rate,
    durationS: o.durationS,
    requestBytes: REQUEST_BYTES,
    replyBytes: REPLY_BYTES,
  };
  const script = resolve(import.meta.dirname, 'grpc-js-client.ts');
  return runClientProcess('grpc-js-client', process.execPath, [script, JSON.stringify(options)], o);
}

export function runLoader(loader: LoaderName, o: LoaderRun): Promise<LoadOutcome> {
  switch (loader) {
    case 'h2load':
      return runH2load(o);
    case 'grpc-go':
      return runGrpcGo(o);
    case 'grpc-js':
      return runGrpcJs(o);
  }
}

/** How a loader runs a shape, for the report. */
export function describeLoad(loader: LoaderName, shape: LoadShape): string {
  const rate = shape.rate === null ? '' : `, ${shape.rate.toLocaleString('en-US')} req/s`;
  if (loader === 'h2load') {
    const rps = shape.rate === null ? '' : ` --rps ${Math.round(shape.rate / shape.connections)}`;
    return `h2load \`-c ${shape.connections} -m ${shape.streams} -t ${shape.h2loadThreads}${rps}\``;
  }
  return `${loader} client, ${shape.connections} channel(s) × ${shape.streams} in flight${rate}`;
}
