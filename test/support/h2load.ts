// Runs nghttp2's h2load (Debian nghttp2-client) against a URL and parses its summary into numbers.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface H2loadOptions {
  url: string;
  /** -n: total requests. */
  requests: number;
  /** -c: concurrent clients (connections). */
  clients?: number;
  /** -m: max concurrent streams per connection. */
  maxConcurrentStreams?: number;
  /** -t: threads; defaults to h2load's own (1). */
  threads?: number;
  /** -H, one per entry, e.g. { 'content-type': 'application/grpc', te: 'trailers' }. */
  headers?: Record<string, string>;
  /** -d: file whose content is POSTed as each request body. */
  dataFile?: string;
  extraArgs?: string[];
  /** Kills h2load if it runs longer; the default suits test-sized runs. */
  timeoutMs?: number;
}

/** Latency distribution of one h2load row, in microseconds. */
export interface H2loadTiming {
  minUs: number;
  maxUs: number;
  meanUs: number;
  sdUs: number;
}

export interface H2loadResult {
  durationMs: number;
  requestsPerSecond: number;
  requests: {
    total: number;
    started: number;
    done: number;
    succeeded: number;
    failed: number;
    errored: number;
    timeout: number;
  };
  status: { '2xx': number; '3xx': number; '4xx': number; '5xx': number };
  timeForRequest: H2loadTiming | undefined;
  stdout: string;
}

export function h2loadArgs(o: H2loadOptions): string[] {
  const args = ['-n', String(o.requests), '-c', String(o.clients ?? 1), '-m', String(o.maxConcurrentStreams ?? 1)];
  if (o.threads !== undefined) args.push('-t', String(o.threads));
  for (const [name, value] of Object.entries(o.headers ?? {})) args.push('-H', `${name}: ${value}`);
  if (o.dataFile !== undefined) args.push('-d', o.dataFile);
  args.push(...(o.extraArgs ?? []), o.url);
  return args;
}

export async function runH2load(o: H2loadOptions): Promise<H2loadResult> {
  let stdout: string;
  try {
    ({ stdout } = await execFileAsync('h2load', h2loadArgs(o), {
      timeout: o.timeoutMs ?? 120_000,
      maxBuffer: 16 * 1024 * 1024,
    }));
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error('h2load not found: install Debian package nghttp2-client', { cause: err });
    // h2load exits non-zero on some failures but may still have printed a usable summary.
    if (!e.stdout?.includes('requests:')) {
      throw new Error(`h2load failed: ${e.message}\n${e.stderr ?? ''}`, { cause: err });
    }
    stdout = e.stdout;
  }
  return parseH2loadOutput(stdout);
}

const UNIT_TO_US: Record<string, number> = { us: 1, ms: 1_000, s: 1_000_000 };

function toMicros(value: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(value);
  if (!m) throw new Error(`h2load: unreadable duration ${value}`);
  return Number(m[1]) * UNIT_TO_US[m[2]!]!;
}

function match(stdout: string, re: RegExp, what: string): RegExpExecArray {
  const m = re.exec(stdout);
  if (!m) throw new Error(`h2load: no ${what} line in output:\n${stdout}`);
  return m;
}

export function parseH2loadOutput(stdout: string): H2loadResult {
  const fin = match(stdout, /^finished in ([\d.]+(?:us|ms|s)), ([\d.]+) req\/s/m, 'finished');
  const req = match(
    stdout,
    /^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/m,
    'requests',
  );
  const st = match(stdout, /^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/m, 'status codes');
  const t = /^time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)/m.exec(stdout);
  const n = (m: RegExpExecArray, i: number): number => Number(m[i]);
  return {
    durationMs: toMicros(fin[1]!) / 1_000,
    requestsPerSecond: n(fin, 2),
    requests: {
      total: n(req, 1),
      started: n(req, 2),
      done: n(req, 3),
      succeeded: n(req, 4),
      failed: n(req, 5),
      errored: n(req, 6),
      timeout: n(req, 7),
    },
    status: { '2xx': n(st, 1), '3xx': n(st, 2), '4xx': n(st, 3), '5xx': n(st, 4) },
    timeForRequest: t
      ? { minUs: toMicros(t[1]!), maxUs: toMicros(t[2]!), meanUs: toMicros(t[3]!), sdUs: toMicros(t[4]!) }
      : undefined,
    stdout,
  };
}
