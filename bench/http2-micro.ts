// The HTTP/2 core's microbenchmarks in one table: frame parse and serialize, HPACK decode and encode. The table and
// the machine go to bench/results/micro-<time>.json as well.

import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { agentRevision } from './agent-revision.ts';
import { runFrameMicro } from './frame-micro.ts';
import { runHpackMicro } from './hpack-micro.ts';

const startedAt = new Date().toISOString();
const rows = [...runFrameMicro(), ...runHpackMicro()];
const width = Math.max(...rows.map((row) => row.name.length));
const lines = [`| ${'operation'.padEnd(width)} | ns/op | ops/s |`, `|${'-'.repeat(width + 2)}|------:|------:|`];
for (const row of rows) {
  lines.push(`| ${row.name.padEnd(width)} | ${row.nsPerOp.toFixed(0)} | ${Math.round(row.opsPerSec).toLocaleString('en-US')} |`);
}
console.log(lines.join('\n'));
const machine = { cpuModel: os.cpus()[0]?.model ?? 'unknown', cores: os.availableParallelism(), kernel: `${os.type()} ${os.release()}`, node: process.version };
const resultsDir = resolve(import.meta.dirname, 'results');
mkdirSync(resultsDir, { recursive: true });
const file = join(resultsDir, `micro-${startedAt.replace(/[:.]/g, '-')}.json`);
writeFileSync(file, `${JSON.stringify({ startedAt, agentRevision: agentRevision(), machine, rows, markdown: lines.join('\n') }, null, 2)}\n`);
console.log(`result written to ${file}`);
