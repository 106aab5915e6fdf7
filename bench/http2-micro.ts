// The HTTP/2 core's microbenchmarks in one table: frame parse and serialize, HPACK decode and encode.

import { runFrameMicro } from './frame-micro.ts';
import { runHpackMicro } from './hpack-micro.ts';

const rows = [...runFrameMicro(), ...runHpackMicro()];
const width = Math.max(...rows.map((row) => row.name.length));
console.log(`| ${'operation'.padEnd(width)} | ns/op | ops/s |`);
console.log(`|${'-'.repeat(width + 2)}|------:|------:|`);
for (const row of rows) {
  console.log(`| ${row.name.padEnd(width)} | ${row.nsPerOp.toFixed(0)} | ${Math.round(row.opsPerSec).toLocaleString('en-US')} |`);
}
