// `node bench/headline.ts [--ratios] RESULT.json…`: the README's condensed headline table from bench result files
// (real gRPC backends only): per backend, load generator and shape, every target's medians and meshlite's ratios to
// HAProxy; with --ratios, only meshlite's and meshlite-rr's ratios to HAProxy, every round's and min/median/max.

import { readFileSync } from 'node:fs';
import type { Summary } from './report.ts';
import { HEADLINE_BACKENDS } from './targets.ts';

const int = (v: number | null): string => (v === null ? '–' : Math.round(v).toLocaleString('en-US'));
const x = (v: number | null): string => (v === null ? '–' : `${v.toFixed(2)}×`);

const ratiosOnly = process.argv.includes('--ratios');
const files = process.argv.slice(2).filter((a) => a !== '--ratios');
const lines = ratiosOnly ? [
  '| backends | load | shape | meshlite ÷ HAProxy per round | min | median | max | meshlite-rr ÷ HAProxy per round | min | median | max | proxy cores meshlite / HAProxy |',
  '|---|---|---|---|--:|--:|--:|---|--:|--:|--:|--:|',
] : [
  '| backends | load | shape | target | req/s | p50 µs | p99 µs | p99.9 µs | proxy cores | req per proxy CPU-s | ÷ HAProxy median (min–max of rounds) | p99 ÷ HAProxy |',
  '|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|',
];
for (const file of files) {
  const result = JSON.parse(readFileSync(file, 'utf8')) as { summaries: Summary[] };
  if (ratiosOnly) {
    for (const s of result.summaries) {
      if (!HEADLINE_BACKENDS.includes(s.backend) || s.target !== 'meshlite') continue;
      const of = (target: string): Summary | undefined =>
        result.summaries.find((v) => v.backend === s.backend && v.loader === s.loader && v.shape === s.shape && v.target === target);
      const cells = (v: Summary | undefined): string => {
        const r = v?.vsHaproxy.requestsPerCpuSecond;
        if (r === undefined) return '– | – | – | –';
        return `${r.perRound.map((n) => (n === null ? '–' : n.toFixed(2))).join(' ')} | ${x(r.min)} | ${x(r.median)} | ${x(r.max)}`;
      };
      const share = (v: Summary | undefined): string => (v?.proxyCpuShare == null ? '–' : v.proxyCpuShare.toFixed(2));
      lines.push(`| ${s.backend} | ${s.loader} | ${s.shape} | ${cells(s)} | ${cells(of('meshlite-rr'))} | ${share(s)} / ${share(of('haproxy'))} |`);
    }
    continue;
  }
  let last = '';
  for (const s of result.summaries) {
    if (!HEADLINE_BACKENDS.includes(s.backend)) continue;
    const key = `${s.backend}|${s.loader}|${s.shape}`;
    const head = key === last ? '| | | |' : `| ${s.backend} | ${s.loader} | ${s.shape} |`;
    last = key;
    const r = s.vsHaproxy.requestsPerCpuSecond;
    const vs = s.target === 'haproxy' ? '1.00×' : r.median === null ? '–' : `${x(r.median)} (${x(r.min)}–${x(r.max)})`;
    const failed = s.failedRounds > 0 ? ` (${s.failedRounds} failed)` : '';
    lines.push(
      `${head} ${s.target}${failed} | ${int(s.requestsPerSecond)} | ${int(s.p50Us)} | ${int(s.p99Us)} | ${int(s.p999Us)} | ` +
        `${s.proxyCpuShare === null ? '–' : s.proxyCpuShare.toFixed(2)} | ${int(s.requestsPerCpuSecond)} | ${vs} | ` +
        `${s.target === 'haproxy' || s.target === 'direct' ? '' : x(s.vsHaproxy.p99)} |`,
    );
  }
}
console.log(lines.join('\n'));
