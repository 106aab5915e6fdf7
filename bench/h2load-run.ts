// One h2load load run in its own autogroup: gRPC-framed unary POSTs, summary and per-request latency percentiles.

import { once } from 'node:events';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type H2loadResult, parseH2loadOutput } from '../test/support/h2load.ts';
import { REPLY_PAYLOAD_BYTES } from './backend.ts';
import { autogroupOf } from './proc-cpu.ts';
import { logTail, spawnManaged, stopProcess } from './processes.ts';

/** The authority every request carries: explicit mode for meshlite; nginx, HAProxy and the backends ignore it. */
export const AUTHORITY = 'greeter.default.svc.cluster.local:50051';
const URL = `http://${AUTHORITY}/helloworld.Greeter/SayHello`;
const REQUEST_PAYLOAD_BYTES = 32;
/** Bytes of DATA in one good reply: the backend's one message with its 5-byte prefix. */
export const REPLY_MESSAGE_BYTES = 5 + REPLY_PAYLOAD_BYTES;

export interface LoadShape {
  name: 'saturation' | 'fixed-rate' | 'latency';
  /** TCP connections: h2load clients (-c), or gRPC channels of the client load generators. */
  connections: number;
  /** Requests in flight on each connection (h2load -m; calls in flight per channel). */
  streams: number;
  /** Requests per second over all connections (h2load: --rps of rate ÷ connections), or null for as fast as possible. */
  rate: number | null;
  /** h2load's threads (-t); the Go client uses every core, the grpc-js client one thread. */
  h2loadThreads: number;
}

/**
 * Saturation: enough load that a proxy alone would use a whole core; on a 2-core machine that shares the cores with
 * the load generator and three backends a proxy may not get there (the harness reports its CPU share).
 * Fixed rate: 12,000 requests/s for every target. Latency: one request in flight.
 */
export const SHAPES: readonly LoadShape[] = [
  { name: 'saturation', connections: 16, streams: 32, rate: null, h2loadThreads: 2 },
  { name: 'fixed-rate', connections: 8, streams: 16, rate: 12_000, h2loadThreads: 1 },
  { name: 'latency', connections: 1, streams: 1, rate: null, h2loadThreads: 1 },
];

export function describeShape(shape: LoadShape): string {
  const rate = shape.rate === null ? '' : `, ${shape.rate.toLocaleString('en-US')} req/s`;
  return `${shape.connections} conn × ${shape.streams} in flight${rate}`;
}

/** The h2load command line of a shape (without the target), for the report. */
export function h2loadShapeArgs(shape: LoadShape): string[] {
  const args = ['-c', String(shape.connections), '-m', String(shape.streams), '-t', String(shape.h2loadThreads)];
  if (shape.rate !== null) args.push('--rps', String(Math.round(shape.rate / shape.connections)));
  return args;
}

/** Writes the request body file: one uncompressed gRPC message with its 5-byte prefix. */
export function writeRequestFile(dir: string): string {
  const body = Buffer.alloc(5 + REQUEST_PAYLOAD_BYTES, 0x62);
  body[0] = 0;
  body.writeUInt32BE(REQUEST_PAYLOAD_BYTES, 1);
  const file = join(dir, 'request.bin');
  writeFileSync(file, body);
  return file;
}

export interface LatencyStats {
  /** Requests in the log with status 200. */
  count: number;
  /** Requests in the log with any other status (-1 is a failed stream). */
  non200: number;
  p50Us: number | null;
  p99Us: number | null;
  p999Us: number | null;
}

export interface LoadRunResult {
  summary: Omit<H2loadResult, 'stdout'>;
  /** Response DATA bytes h2load received: every good reply carries exactly REPLY_MESSAGE_BYTES. */
  dataBytes: number;
  latency: LatencyStats;
  /** Scheduler autogroup h2load ran in (checked while it ran). */
  autogroup: string | null;
}

export interface LoadRunOptions {
  port: number;
  shape: LoadShape;
  /** Measured duration in seconds (-D), or a request count for a probe. */
  durationS?: number;
  requests?: number;
  dataFile: string;
  /** Per-request log (h2load appends, so it is removed before and after the run). */
  logFile: string;
  /** Where h2load's stderr goes. */
  outputFile: string;
  /** Called with h2load's PID as soon as it runs (bench/workers-scale.ts: puts it under a CPU quota). */
  onSpawn?: (pid: number) => void;
}

/** Parses h2load --log-file rows (start µs, status, duration µs; tab-separated) into percentiles. */
export function latencyFromLog(text: string): LatencyStats {
  const durations = new Float64Array(Math.max(16, text.length / 20));
  let count = 0;
  let non200 = 0;
  let at = 0;
  while (at < text.length) {
    let end = text.indexOf('\n', at);
    if (end < 0) end = text.length;
    const tab1 = text.indexOf('\t', at);
    const tab2 = tab1 < 0 ? -1 : text.indexOf('\t', tab1 + 1);
    if (tab2 > 0 && tab2 < end) {
      const status = text.slice(tab1 + 1, tab2);
      const tab3 = text.indexOf('\t', tab2 + 1);
      const duration = Number(text.slice(tab2 + 1, tab3 > 0 && tab3 < end ? tab3 : end));
      if (status === '200' && count < durations.length) durations[count++] = duration;
      else non200++;
    }
    at = end + 1;
  }
  const sorted = durations.subarray(0, count).sort();
  const rank = (p: number): number | null => (count === 0 ? null : sorted[Math.max(0, Math.ceil(p * count) - 1)]);
  return { count, non200, p50Us: rank(0.5), p99Us: rank(0.99), p999Us: rank(0.999) };
}

function dataBytesOf(stdout: string): number {
  const m = /^traffic: .*?, \S+ \((\d+)\) data/m.exec(stdout);
  if (!m) throw new Error(`h2load: no traffic line in output:\n${stdout}`);
  return Number(m[1]);
}

/** Runs h2load once; rejects when it cannot start or prints no summary. Bounded: killed 30 s after it should end. */
export async function runLoad(o: LoadRunOptions): Promise<LoadRunResult> {
  const args = h2loadShapeArgs(o.shape);
  if (o.durationS !== undefined) args.push('-D', `${Math.round(o.durationS * 1000)}ms`);
  else args.push('-n', String(o.requests ?? 100));
  args.push('-d', o.dataFile, '-H', 'content-type: application/grpc', '-H', 'te: trailers');
  args.push(`--connect-to=127.0.0.1:${o.port}`, `--log-file=${o.logFile}`, URL);
  rmSync(o.logFile, { force: true });
  const h2load = spawnManaged('h2load', 'h2load', args, { logFile: o.outputFile, pipeStdout: true });
  const chunks: Buffer[] = [];
  h2load.child.stdout?.on('data', (chunk: Buffer) => chunks.push(chunk));
  const stdoutDone = h2load.child.stdout ? once(h2load.child.stdout, 'end').catch(() => {}) : Promise.resolve();
  const autogroup = autogroupOf(h2load.pid);
  const limitMs = ((o.durationS ?? 10) + 30) * 1000;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), limitMs);
  });
  try {
    if (h2load.pid > 0) o.onSpawn?.(h2load.pid);
    const status = await Promise.race([h2load.exited, timedOut]);
    if (status === 'timeout') throw new Error(`h2load did not finish within ${limitMs / 1000} s`);
    await stdoutDone;
    const stdout = Buffer.concat(chunks).toString('utf8');
    if (typeof status === 'string' && status.startsWith('spawn error')) {
      throw new Error(`h2load: ${status} (install Debian package nghttp2-client)`);
    }
    if (!stdout.includes('requests:')) throw new Error(`h2load exited with ${status}:\n${stdout}\n${logTail(h2load)}`);
    const { stdout: _omit, ...summary } = parseH2loadOutput(stdout);
    let logText = '';
    try {
      logText = readFileSync(o.logFile, 'latin1');
    } catch {
      // no request finished: no log file
    }
    return { summary, dataBytes: dataBytesOf(stdout), latency: latencyFromLog(logText), autogroup };
  } finally {
    clearTimeout(timer);
    await stopProcess(h2load, [], 1000);
    rmSync(o.logFile, { force: true });
  }
}

/** A few requests at one in flight: ok when every one came back 200 with the backend's reply message. */
export async function probe(port: number, o: Omit<LoadRunOptions, 'port' | 'shape' | 'durationS'>): Promise<string | null> {
  const requests = o.requests ?? 30;
  const shape: LoadShape = { name: 'latency', connections: 1, streams: 1, rate: null, h2loadThreads: 1 };
  const r = await runLoad({ ...o, port, shape, requests });
  const replies = r.dataBytes / REPLY_MESSAGE_BYTES;
  if (r.summary.requests.succeeded === requests && replies === requests) return null;
  return `${r.summary.requests.succeeded}/${requests} succeeded, ${replies} carried the backend's reply`;
}
