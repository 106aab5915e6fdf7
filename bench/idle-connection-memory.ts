// Memory per idle client HTTP/2 connection: starts the agent (static discovery), reads its RSS, opens N connections
// past SETTINGS from a process of their own, lets the agent settle, and prints the difference per connection.
// Usage: node bench/idle-connection-memory.ts [connections=2000] [extra agent flags...]

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startIdleConnections } from '../lab/idle-http2-connections.ts';
import { startAgent } from '../test/support/agent-process.ts';
import { settledMemory } from './proc-memory.ts';

const count = Number(process.argv[2] ?? 2000);
const extra = process.argv.slice(3);
const settle = { intervalMs: 250, window: 8, tolerance: 0.01, maxMs: 15_000 };
const MIB = 1024 * 1024;

const dir = mkdtempSync(join(tmpdir(), 'meshlite-idle-memory-'));
const file = join(dir, 'services.yaml');
writeFileSync(file, 'services:\n  - name: idle\n    namespace: default\n    port: 50051\n    endpoints:\n      - address: 127.0.0.1:1\n');
const agent = await startAgent(['--discovery', 'static', '--static-file', file, ...extra]);
const pid = agent.child.pid as number;
const [host, port] = [agent.listen.slice(0, agent.listen.lastIndexOf(':')), Number(agent.listen.slice(agent.listen.lastIndexOf(':') + 1))];
try {
  const before = await settledMemory(pid, settle);
  const opener = await startIdleConnections(host, port);
  try {
    await opener.open(count);
    const after = await settledMemory(pid, settle);
    const perConnection = (after.rssBytes - before.rssBytes) / opener.state.open;
    process.stdout.write(
      `${JSON.stringify({
        connections: opener.state.open,
        failed: opener.state.failed,
        closedByAgent: opener.state.closed,
        rssBeforeMiB: +(before.rssBytes / MIB).toFixed(1),
        rssAfterMiB: +(after.rssBytes / MIB).toFixed(1),
        peakMiB: +(after.hwmBytes / MIB).toFixed(1),
        perConnectionKiB: +(perConnection / 1024).toFixed(1),
        settled: after.stable,
      })}\n`,
    );
  } finally {
    await opener.stop();
  }
} finally {
  await agent.stop();
  rmSync(dir, { recursive: true, force: true });
}
