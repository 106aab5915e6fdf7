// Turns per-round measurements into medians and same-round ratios, the machine description, and a Markdown table.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { type LoadShape, describeShape } from './h2load-run.ts';
import type { TargetName } from './targets.ts';

/** One load run: one target, one shape, one round. */
export interface RunRecord {
  round: number;
  shape: LoadShape['name'];
  target: TargetName;
  /** Why the run has no numbers (the target failed); null when it ran. */
  error: string | null;
  requestsPerSecond: number;
  p50Us: number | null;
  p99Us: number | null;
  /** Requests h2load completed in the measured period. */
  requests: number;
  /** Requests each backend answered during the run. */
  served: number[];
  /** Connections the backends accepted during the run (a proxy that reuses its upstream connections opens ~0). */
  backendConnectionsOpened: number;
  /** CPU seconds of the proxy's processes during the run; null for direct (or when a process came or went). */
  proxyCpuSeconds: number | null;
  backendCpuSeconds: number | null;
  /** Requests served per proxy CPU-second (backend answers during the run / proxy CPU seconds). */
  requestsPerCpuSecond: number | null;
  errors: {
    /** h2load's failed + errored + timed-out requests, or non-200 rows in its log if more. */
    http: number;
    /** 200 responses without the backend's reply message (e.g. a proxy-made Trailers-Only grpc-status). */
    noReply: number;
    /** Requests h2load counted as succeeded beyond what the backends answered. */
    backendShortfall: number;
    total: number;
  };
  h2loadAutogroup: string | null;
  /** Share of the whole machine's CPU that stayed idle during the run (other load on the machine shows here too). */
  machineIdleShare: number | null;
  /** Idle share just before the run (after waiting a bounded time for the machine to calm down). */
  machineIdleBefore: number | null;
}

export interface Machine {
  cpuModel: string;
  cores: number;
  kernel: string;
  node: string;
  nginx: string;
  haproxy: string;
  h2load: string;
  autogroupsEnabled: boolean;
}

export interface Summary {
  shape: LoadShape['name'];
  target: TargetName;
  rounds: number;
  failedRounds: number;
  requestsPerSecond: number | null;
  p50Us: number | null;
  p99Us: number | null;
  requestsPerCpuSecond: number | null;
  /** Medians of the per-round ratios. */
  vsDirect: { requestsPerSecond: number | null; p50: number | null; p99: number | null };
  vsHaproxy: { requestsPerSecond: number | null; p50: number | null; p99: number | null; requestsPerCpuSecond: number | null };
  /** Share of all requests each backend answered, over all rounds. */
  spread: number[];
  errors: number;
}

/** A tool's version from its output (nginx -v prints to stderr, the others to stdout). */
function versionOf(command: string, args: string[], pattern: RegExp): string {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  if (r.error !== undefined) return 'not installed';
  return pattern.exec(`${r.stdout}${r.stderr}`)?.[1] ?? 'unknown';
}

export function describeMachine(autogroupsEnabled: boolean): Machine {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  return {
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    nginx: versionOf('nginx', ['-v'], /nginx\/(\S+)/),
    haproxy: versionOf('haproxy', ['-v'], /version (\S+)/),
    h2load: versionOf('h2load', ['--version'], /nghttp2\/(\S+)/),
    autogroupsEnabled,
  };
}

export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

const nums = (values: ReadonlyArray<number | null>): number[] => values.filter((v): v is number => v !== null && Number.isFinite(v));
const ratio = (a: number | null, b: number | null): number | null => (a === null || b === null || b === 0 ? null : a / b);

export function summarize(records: readonly RunRecord[], shapes: readonly LoadShape[], targets: readonly TargetName[]): Summary[] {
  const out: Summary[] = [];
  for (const shape of shapes) {
    const ofShape = records.filter((r) => r.shape === shape.name);
    const peer = (r: RunRecord, target: TargetName): RunRecord | undefined =>
      ofShape.find((p) => p.round === r.round && p.target === target && p.error === null);
    for (const target of targets) {
      const all = ofShape.filter((r) => r.target === target);
      const ok = all.filter((r) => r.error === null);
      const per = (f: (r: RunRecord) => number | null): number | null => median(nums(ok.map(f)));
      const vs = (other: TargetName, f: (r: RunRecord) => number | null): number | null =>
        median(nums(ok.map((r) => { const p = peer(r, other); return p === undefined ? null : ratio(f(r), f(p)); })));
      const served = ok.reduce<number[]>((acc, r) => r.served.map((n, i) => n + (acc[i] ?? 0)), []);
      const totalServed = served.reduce((a, b) => a + b, 0);
      out.push({
        shape: shape.name,
        target,
        rounds: all.length,
        failedRounds: all.length - ok.length,
        requestsPerSecond: per((r) => r.requestsPerSecond),
        p50Us: per((r) => r.p50Us),
        p99Us: per((r) => r.p99Us),
        requestsPerCpuSecond: per((r) => r.requestsPerCpuSecond),
        vsDirect: {
          requestsPerSecond: vs('direct', (r) => r.requestsPerSecond),
          p50: vs('direct', (r) => r.p50Us),
          p99: vs('direct', (r) => r.p99Us),
        },
        vsHaproxy: {
          requestsPerSecond: vs('haproxy', (r) => r.requestsPerSecond),
          p50: vs('haproxy', (r) => r.p50Us),
          p99: vs('haproxy', (r) => r.p99Us),
          requestsPerCpuSecond: vs('haproxy', (r) => r.requestsPerCpuSecond),
        },
        spread: served.map((n) => (totalServed === 0 ? 0 : n / totalServed)),
        errors: ok.reduce((a, r) => a + r.errors.total, 0),
      });
    }
  }
  return out;
}

export interface Acceptance {
  cpuAtSaturation: boolean | null;
  cpuAtFixedRate: boolean | null;
  p50WithinTenPercent: boolean | null;
  noErrors: boolean | null;
  evenSpread: boolean | null;
}

/** The benchmark lines of issue 3's acceptance, read off the medians (null: meshlite or HAProxy not measured). */
export function acceptance(summaries: readonly Summary[]): Acceptance {
  const m = (shape: LoadShape['name']): Summary | undefined =>
    summaries.find((s) => s.shape === shape && s.target === 'meshlite' && s.rounds > s.failedRounds);
  const cpu = (shape: LoadShape['name']): boolean | null => {
    const r = m(shape)?.vsHaproxy.requestsPerCpuSecond;
    return r === undefined || r === null ? null : r >= 1;
  };
  const p50 = m('latency')?.vsHaproxy.p50;
  const mine = summaries.filter((s) => s.target === 'meshlite' && s.rounds > s.failedRounds);
  return {
    cpuAtSaturation: cpu('saturation'),
    cpuAtFixedRate: cpu('fixed-rate'),
    p50WithinTenPercent: p50 === undefined || p50 === null ? null : p50 <= 1.1,
    noErrors: mine.length === 0 ? null : mine.every((s) => s.errors === 0 && s.failedRounds === 0),
    evenSpread: mine.length === 0 ? null : mine.every((s) => s.spread.every((share) => Math.abs(share * s.spread.length - 1) <= 0.1)),
  };
}

const int = (v: number | null): string => (v === null ? '–' : Math.round(v).toLocaleString('en-US'));
const x = (v: number | null): string => (v === null ? '–' : `${v.toFixed(2)}×`);
const pct = (shares: number[]): string => (shares.length === 0 ? '–' : shares.map((s) => `${Math.round(s * 100)}`).join('/'));
const TITLES: Record<LoadShape['name'], string> = {
  saturation: 'Saturation',
  'fixed-rate': 'Fixed rate (12k requests/s)',
  latency: 'One request in flight',
};

export interface TableContext {
  machine: Machine;
  rounds: number;
  durationS: number;
  warmupS: number;
  shapes: readonly LoadShape[];
  targets: readonly TargetName[];
  /** Targets that could not be started, with the reason. */
  unavailable: ReadonlyArray<{ target: TargetName; reason: string }>;
}

export function markdown(summaries: readonly Summary[], c: TableContext): string {
  const m = c.machine;
  const lines = [
    `Machine: ${m.cpuModel}, ${m.cores} cores, ${m.kernel}; Node ${m.node}, nginx ${m.nginx}, HAProxy ${m.haproxy}, ` +
      `h2load ${m.h2load}. gRPC unary (32-byte messages), 3 backends, ${c.rounds} interleaved round(s) of ${c.durationS} s ` +
      `per run after ${c.warmupS} s of warm-up; every proxy and h2load in its own scheduler autogroup` +
      `${m.autogroupsEnabled ? '' : ' (autogroups are OFF on this kernel)'}. Medians over the rounds; ratios are taken ` +
      'within a round, then the median. CPU is user+system time of all the proxy\'s processes; spread is the share of ' +
      'requests each backend answered.',
    '',
  ];
  for (const shape of c.shapes) {
    lines.push(`**${TITLES[shape.name]}** (h2load \`${describeShape(shape)}\`)`, '');
    lines.push('| target | req/s | p50 µs | p99 µs | req per proxy CPU-s | req/CPU-s ÷ HAProxy | req/s ÷ direct | p50 ÷ HAProxy | p50 ÷ direct | spread % | errors |');
    lines.push('|---|--:|--:|--:|--:|--:|--:|--:|--:|:-:|--:|');
    for (const target of c.targets) {
      const s = summaries.find((v) => v.shape === shape.name && v.target === target);
      const missing = c.unavailable.find((u) => u.target === target);
      if (s === undefined || s.rounds === s.failedRounds) {
        const why = `not measured${missing ? `: ${missing.reason.split('\n')[0]}` : ''}`;
        lines.push(`| ${target} | ${why} |${' |'.repeat(9)}`);
        continue;
      }
      const errors = `${s.errors}${s.failedRounds > 0 ? ` (${s.failedRounds} round(s) failed)` : ''}`;
      lines.push(
        `| ${target} | ${int(s.requestsPerSecond)} | ${int(s.p50Us)} | ${int(s.p99Us)} | ${int(s.requestsPerCpuSecond)} | ` +
          `${x(s.vsHaproxy.requestsPerCpuSecond)} | ${x(s.vsDirect.requestsPerSecond)} | ${x(s.vsHaproxy.p50)} | ` +
          `${x(s.vsDirect.p50)} | ${pct(s.spread)} | ${errors} |`,
      );
    }
    lines.push('');
  }
  return lines.join('\n');
}
