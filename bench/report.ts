// Turns per-round measurements into medians, same-round ratios (every round's, and their min/median/max), the machine
// description, and Markdown tables (the headline: grpc-go and grpc-js backends; the own-core backend apart).

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { LoadShape } from './h2load-run.ts';
import { type LoaderName, describeLoad } from './loaders.ts';
import { type BackendKind, HEADLINE_BACKENDS, type TargetName } from './targets.ts';

/** One load run: one backend kind, one load generator, one shape, one target, one round. */
export interface RunRecord {
  round: number;
  backend: BackendKind;
  loader: LoaderName;
  shape: LoadShape['name'];
  target: TargetName;
  /** Why the run has no numbers (the target failed); null when it ran. */
  error: string | null;
  requestsPerSecond: number;
  p50Us: number | null;
  p99Us: number | null;
  p999Us: number | null;
  /** Requests the load generator completed in the measured period. */
  requests: number;
  /** Requests each backend answered during the run. */
  served: number[];
  /** Connections the backends accepted during the run (a proxy that reuses its upstream connections opens ~0); null
   *  when the backends cannot count them (grpc-js). */
  backendConnectionsOpened: number | null;
  /** Wall-clock seconds between the CPU samples around the measured run. */
  wallSeconds: number;
  /** CPU seconds of the proxy's processes during the run; null for direct (or when a process came or went). */
  proxyCpuSeconds: number | null;
  /** proxyCpuSeconds ÷ wallSeconds: the cores the proxy used (1.0 is one whole core). */
  proxyCpuShare: number | null;
  backendCpuSeconds: number | null;
  loaderCpuSeconds: number | null;
  /** Requests served per proxy CPU-second (backend answers during the run / proxy CPU seconds). */
  requestsPerCpuSecond: number | null;
  errors: {
    /** Failed requests as the load generator saw them (HTTP or gRPC errors, resets, timeouts). */
    failed: number;
    /** Ok responses without the backend's reply message (e.g. a proxy-made Trailers-Only grpc-status). */
    noReply: number;
    /** Requests the load generator counted as ok beyond what the backends answered. */
    backendShortfall: number;
    total: number;
  };
  loaderAutogroup: string | null;
  /** Share of the whole machine's CPU that stayed idle during the run (other load on the machine shows here too). */
  machineIdleShare: number | null;
  /** Idle share just before the run (after waiting a bounded time for the machine to calm down). */
  machineIdleBefore: number | null;
}

/** A tool's version from its output (nginx -v prints to stderr, the others to stdout). */
function versionOf(command: string, args: string[], pattern: RegExp): string {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  if (r.error !== undefined) return 'not installed';
  return pattern.exec(`${r.stdout}${r.stderr}`)?.[1] ?? 'unknown';
}

function fileVersion(file: string | URL, pattern: RegExp): string {
  try {
    return pattern.exec(readFileSync(file, 'utf8'))?.[1] ?? 'unknown';
  } catch {
    return 'not installed';
  }
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
    go: versionOf('go', ['version'], /go version go(\S+)/),
    grpcGo: fileVersion('/usr/share/gocode/src/google.golang.org/grpc/version.go', /Version = "([^"]+)"/),
    grpcJs: fileVersion(new URL('../node_modules/@grpc/grpc-js/package.json', import.meta.url), /"version":\s*"([^"]+)"/),
    autogroupsEnabled,
  };
}

export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export interface Machine {
  cpuModel: string;
  cores: number;
  kernel: string;
  node: string;
  nginx: string;
  haproxy: string;
  h2load: string;
  go: string;
  grpcGo: string;
  grpcJs: string;
  autogroupsEnabled: boolean;
}

export interface RoundRatios {
  /** Per round, in round order (null where a side failed). */
  perRound: Array<number | null>;
  min: number | null;
  median: number | null;
  max: number | null;
}

export interface Summary {
  backend: BackendKind;
  loader: LoaderName;
  shape: LoadShape['name'];
  target: TargetName;
  rounds: number;
  failedRounds: number;
  requestsPerSecond: number | null;
  p50Us: number | null;
  p99Us: number | null;
  p999Us: number | null;
  requestsPerCpuSecond: number | null;
  /** Cores the proxy used: median, and the lowest round. */
  proxyCpuShare: number | null;
  proxyCpuShareMin: number | null;
  vsDirect: { requestsPerSecond: number | null; p50: number | null; p99: number | null };
  /** Same-round ratios to HAProxy: requests per proxy CPU-second every round, latencies as medians of the rounds'. */
  vsHaproxy: { requestsPerCpuSecond: RoundRatios; requestsPerSecond: number | null; p50: number | null; p99: number | null; p999: number | null };
  /** Share of all requests each backend answered, over all rounds. */
  spread: number[];
  errors: number;
}

const nums = (values: ReadonlyArray<number | null>): number[] => values.filter((v): v is number => v !== null && Number.isFinite(v));
const ratio = (a: number | null, b: number | null): number | null => (a === null || b === null || b === 0 ? null : a / b);

export function summarize(
  records: readonly RunRecord[],
  groups: ReadonlyArray<{ backend: BackendKind; loader: LoaderName }>,
  shapes: readonly LoadShape[],
  targets: readonly TargetName[],
): Summary[] {
  const out: Summary[] = [];
  for (const { backend, loader } of groups) {
    for (const shape of shapes) {
      const ofShape = records.filter((r) => r.backend === backend && r.loader === loader && r.shape === shape.name);
      const rounds = [...new Set(ofShape.map((r) => r.round))].sort((a, b) => a - b);
      const peer = (round: number, target: TargetName): RunRecord | undefined =>
        ofShape.find((p) => p.round === round && p.target === target && p.error === null);
      for (const target of targets) {
        const all = ofShape.filter((r) => r.target === target);
        if (all.length === 0) continue;
        const ok = all.filter((r) => r.error === null);
        const per = (f: (r: RunRecord) => number | null): number | null => median(nums(ok.map(f)));
        const vs = (other: TargetName, f: (r: RunRecord) => number | null): number | null =>
          median(nums(ok.map((r) => { const p = peer(r.round, other); return p === undefined ? null : ratio(f(r), f(p)); })));
        const perRound = rounds.map((round) => {
          const mine = peer(round, target);
          const theirs = peer(round, 'haproxy');
          return mine === undefined || theirs === undefined ? null : ratio(mine.requestsPerCpuSecond, theirs.requestsPerCpuSecond);
        });
        const ratios = nums(perRound);
        const served = ok.reduce<number[]>((acc, r) => r.served.map((n, i) => n + (acc[i] ?? 0)), []);
        const totalServed = served.reduce((a, b) => a + b, 0);
        const shares = nums(ok.map((r) => r.proxyCpuShare));
        out.push({
          backend,
          loader,
          shape: shape.name,
          target,
          rounds: all.length,
          failedRounds: all.length - ok.length,
          requestsPerSecond: per((r) => r.requestsPerSecond),
          p50Us: per((r) => r.p50Us),
          p99Us: per((r) => r.p99Us),
          p999Us: per((r) => r.p999Us),
          requestsPerCpuSecond: per((r) => r.requestsPerCpuSecond),
          proxyCpuShare: median(shares),
          proxyCpuShareMin: shares.length === 0 ? null : Math.min(...shares),
          vsDirect: {
            requestsPerSecond: vs('direct', (r) => r.requestsPerSecond),
            p50: vs('direct', (r) => r.p50Us),
            p99: vs('direct', (r) => r.p99Us),
          },
          vsHaproxy: {
            requestsPerCpuSecond: {
              perRound,
              min: ratios.length === 0 ? null : Math.min(...ratios),
              median: median(ratios),
              max: ratios.length === 0 ? null : Math.max(...ratios),
            },
            requestsPerSecond: vs('haproxy', (r) => r.requestsPerSecond),
            p50: vs('haproxy', (r) => r.p50Us),
            p99: vs('haproxy', (r) => r.p99Us),
            p999: vs('haproxy', (r) => r.p999Us),
          },
          spread: served.map((n) => (totalServed === 0 ? 0 : n / totalServed)),
          errors: ok.reduce((a, r) => a + r.errors.total, 0),
        });
      }
    }
  }
  return out;
}

export interface AcceptanceLine {
  backend: BackendKind;
  loader: LoaderName;
  shape: LoadShape['name'];
  target: 'meshlite' | 'meshlite-rr';
  rounds: number;
  /** Lowest same-round ratio of requests per proxy CPU-second to HAProxy's. */
  minRatio: number | null;
  /** Every one of at least 5 rounds at 1.0× or more. */
  everyRoundAtLeastHaproxy: boolean | null;
  p50WithinTenPercentAtOneInFlight: boolean | null;
  noErrors: boolean;
  evenSpread: boolean;
}

/** Issue 14's acceptance, per headline backend, load generator and shape: ≥ 1.0× HAProxy in every one of ≥ 5 rounds. */
export function acceptance(summaries: readonly Summary[]): AcceptanceLine[] {
  const out: AcceptanceLine[] = [];
  for (const s of summaries) {
    if (s.target !== 'meshlite' && s.target !== 'meshlite-rr') continue;
    if (!HEADLINE_BACKENDS.includes(s.backend)) continue;
    const r = s.vsHaproxy.requestsPerCpuSecond;
    const complete = r.perRound.length >= 5 && r.perRound.every((v) => v !== null);
    out.push({
      backend: s.backend,
      loader: s.loader,
      shape: s.shape,
      target: s.target,
      rounds: r.perRound.length,
      minRatio: r.min,
      everyRoundAtLeastHaproxy: r.min === null ? null : complete && r.min >= 1,
      p50WithinTenPercentAtOneInFlight: s.shape !== 'latency' || s.vsHaproxy.p50 === null ? null : s.vsHaproxy.p50 <= 1.1,
      noErrors: s.errors === 0 && s.failedRounds === 0,
      evenSpread: s.spread.every((share) => Math.abs(share * s.spread.length - 1) <= 0.1),
    });
  }
  return out;
}

const int = (v: number | null): string => (v === null ? '–' : Math.round(v).toLocaleString('en-US'));
const x = (v: number | null): string => (v === null ? '–' : `${v.toFixed(2)}×`);
const cores = (v: number | null): string => (v === null ? '–' : v.toFixed(2));
const pct = (shares: number[]): string => (shares.length === 0 ? '–' : shares.map((s) => `${Math.round(s * 100)}`).join('/'));

const TITLES: Record<LoadShape['name'], string> = {
  saturation: 'Saturation',
  'fixed-rate': 'Fixed rate, 12,000 requests/s',
  latency: 'Latency, one request in flight',
};

export interface TableContext {
  machine: Machine;
  /** The agent's default balancer, which the meshlite target runs with. */
  defaultBalancer: string;
  revision: string;
  command: string;
  rounds: number;
  durationS: number;
  warmupS: number;
  backends: readonly BackendKind[];
  loaders: readonly LoaderName[];
  shapes: readonly LoadShape[];
  targets: readonly TargetName[];
  /** Targets that could not be started, per backend kind, with the reason. */
  unavailable: ReadonlyArray<{ backend: BackendKind; target: TargetName; reason: string }>;
}

function ratioCell(r: RoundRatios): string {
  if (r.median === null) return '–';
  return `${x(r.median)} (${x(r.min)}–${x(r.max)})`;
}

function shapeTable(summaries: readonly Summary[], c: TableContext, backend: BackendKind, loader: LoaderName, shape: LoadShape): string[] {
  const lines = [`**${TITLES[shape.name]}** — ${backend} backends, ${describeLoad(loader, shape)}`, ''];
  lines.push('| target | req/s | p50 µs | p99 µs | p99.9 µs | proxy CPU (cores) | req per proxy CPU-s | ÷ HAProxy, median (min–max) | p50 ÷ HAProxy | p99 ÷ HAProxy | spread % | errors |');
  lines.push('|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|:-:|--:|');
  for (const target of c.targets) {
    const s = summaries.find((v) => v.backend === backend && v.loader === loader && v.shape === shape.name && v.target === target);
    const missing = c.unavailable.find((u) => u.backend === backend && u.target === target);
    if (s === undefined || s.rounds === s.failedRounds) {
      const why = `not measured${missing ? `: ${missing.reason.split('\n')[0]}` : ''}`;
      lines.push(`| ${target} | ${why} |${' |'.repeat(10)}`);
      continue;
    }
    const errors = `${s.errors}${s.failedRounds > 0 ? ` (${s.failedRounds} round(s) failed)` : ''}`;
    const isHaproxy = target === 'haproxy';
    const share = s.proxyCpuShare === null ? '–' : `${cores(s.proxyCpuShare)} (min ${cores(s.proxyCpuShareMin)})`;
    lines.push(
      `| ${target} | ${int(s.requestsPerSecond)} | ${int(s.p50Us)} | ${int(s.p99Us)} | ${int(s.p999Us)} | ${share} | ` +
        `${int(s.requestsPerCpuSecond)} | ${isHaproxy ? '1.00×' : ratioCell(s.vsHaproxy.requestsPerCpuSecond)} | ` +
        `${x(s.vsHaproxy.p50)} | ${x(s.vsHaproxy.p99)} | ${pct(s.spread)} | ${errors} |`,
    );
  }
  lines.push('');
  return lines;
}

/** Every round's meshlite ÷ HAProxy ratio of requests per proxy CPU-second, one row per backend, loader and shape. */
function roundsTable(summaries: readonly Summary[], c: TableContext, backends: readonly BackendKind[]): string[] {
  const lines = [
    '| backend | load | shape | target | ÷ HAProxy per round (req per proxy CPU-s) | min | median | max |',
    '|---|---|---|---|---|--:|--:|--:|',
  ];
  for (const backend of backends) {
    for (const loader of c.loaders) {
      for (const shape of c.shapes) {
        for (const target of ['meshlite', 'meshlite-rr'] as const) {
          const s = summaries.find((v) => v.backend === backend && v.loader === loader && v.shape === shape.name && v.target === target);
          if (s === undefined) continue;
          const r = s.vsHaproxy.requestsPerCpuSecond;
          lines.push(
            `| ${backend} | ${loader} | ${shape.name} | ${target} | ${r.perRound.map((v) => (v === null ? '–' : v.toFixed(2))).join(' ')} | ` +
              `${x(r.min)} | ${x(r.median)} | ${x(r.max)} |`,
          );
        }
      }
    }
  }
  lines.push('');
  return lines;
}

export function markdown(summaries: readonly Summary[], c: TableContext): string {
  const m = c.machine;
  const headline = c.backends.filter((b) => HEADLINE_BACKENDS.includes(b));
  const micro = c.backends.filter((b) => !HEADLINE_BACKENDS.includes(b));
  const lines = [
    `Machine: ${m.cpuModel}, ${m.cores} cores, ${m.kernel}; Node ${m.node}, nginx ${m.nginx}, HAProxy ${m.haproxy}, ` +
      `h2load ${m.h2load}, grpc-go ${m.grpcGo} (Go ${m.go}), grpc-js ${m.grpcJs}. Commit ${c.revision}; \`${c.command}\`. gRPC unary (32-byte messages both ways), 3 backends ` +
      `of a kind, ${c.rounds} interleaved round(s) of ${c.durationS} s per run after ${c.warmupS} s of warm-up (and before ` +
      `the first round ${2 * c.warmupS} s through every target, unmeasured); every ` +
      'proxy, backend and load generator in its own scheduler autogroup' +
      `${m.autogroupsEnabled ? '' : ' (autogroups are OFF on this kernel)'}. Medians over the rounds; ratios are taken ` +
      'within a round (the ÷ HAProxy column gives their median and the lowest and highest round). Proxy CPU is ' +
      'user+system time of all the proxy\'s processes over the run\'s wall time; spread is the share of requests each ' +
      `backend answered. meshlite runs with its default balancer (${c.defaultBalancer}), meshlite-rr with \`--balancer round-robin\` ` +
      '(HAProxy balances round-robin too).',
    '',
  ];
  const section = (backends: readonly BackendKind[]): void => {
    for (const backend of backends) {
      for (const loader of c.loaders) {
        for (const shape of c.shapes) lines.push(...shapeTable(summaries, c, backend, loader, shape));
      }
    }
  };
  if (headline.length > 0) {
    lines.push('### Real gRPC servers (headline)', '');
    section(headline);
    lines.push('#### meshlite ÷ HAProxy, every round', '', ...roundsTable(summaries, c, headline));
  }
  if (micro.length > 0) {
    lines.push('### Own-core backend (micro-benchmark, not a headline figure)', '');
    section(micro);
    lines.push(...roundsTable(summaries, c, micro));
  }
  return lines.join('\n');
}
