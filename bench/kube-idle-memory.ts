// The idle agent with Kubernetes discovery: resident memory at "meshlite ready" and 10 s later, and the time to ready,
// against an empty cluster and a small one (20 gRPC Services, a 3-endpoint slice each). Prints one JSON line per start.
// Usage: node bench/kube-idle-memory.ts [--starts N] [--in-cluster]   (run it under `flock /tmp/meshlite-load.lock`)
// --in-cluster: the agent finds the API as in a pod (service account, HTTPS; needs root), not through --kubeconfig.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { endpointSliceObject, grpcServiceObject } from '../test/support/kube-api-objects.ts';
import { type KubeApiServer, startKubeApiServer } from '../test/support/kube-api-server.ts';
import { selfSignedCertificate } from '../test/support/self-signed-certificate.ts';
import { startAgent } from './discovery-agent.ts';
import { clockTicksPerSecond } from './proc-cpu.ts';
import { readMemory } from './proc-memory.ts';
import { median } from './report.ts';

const SETTLE_MS = 10_000;
const SMALL_SERVICES = 20;
const MiB = 1024 * 1024;

function smallCluster(server: KubeApiServer): void {
  for (let i = 0; i < SMALL_SERVICES; i++) {
    const name = `svc-${i}`;
    server.apply('services', grpcServiceObject(name, { clusterIP: `10.96.1.${i + 1}` }));
    const endpoints = [1, 2, 3].map((j) => ({ ip: `10.244.${i}.${j}` }));
    server.apply('endpointslices', endpointSliceObject(`${name}-abcde`, name, 9000, endpoints));
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { starts: { type: 'string', default: '3' }, 'in-cluster': { type: 'boolean', default: false } } });
  const inCluster = values['in-cluster'];
  const tls = inCluster ? selfSignedCertificate('meshlite-bench-api', ['127.0.0.1']) : undefined;
  const starts = Number(values.starts);
  const dir = mkdtempSync(join(os.tmpdir(), 'meshlite-kube-idle-'));
  const ticksPerSecond = clockTicksPerSecond();
  const results: Record<string, { readyMs: number[]; readyMiB: number[]; settledMiB: number[] }> = {};
  try {
    for (const cluster of ['empty', 'small'] as const) {
      const server = await startKubeApiServer({ tls });
      const account = join(dir, `account-${cluster}`);
      if (tls !== undefined) {
        mkdirSync(account);
        writeFileSync(join(account, 'token'), server.token);
        writeFileSync(join(account, 'ca.crt'), tls.cert);
      }
      if (cluster === 'small') smallCluster(server);
      const summary = { readyMs: [] as number[], readyMiB: [] as number[], settledMiB: [] as number[] };
      results[cluster] = summary;
      try {
        for (let i = 1; i <= starts; i++) {
          const where = inCluster ? { inCluster: { serviceAccountDir: account, host: '127.0.0.1', port: server.port } } : { kubeconfig: server.kubeconfigPath };
          const agent = await startAgent({ name: `${cluster}-${i}`, ...where, nodeName: 'node-a', dir, readyTimeoutMs: 30_000, ticksPerSecond });
          const atReady = readMemory(agent.process.pid).rssBytes;
          await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
          const settled = readMemory(agent.process.pid).rssBytes;
          const issues = agent.issues();
          await agent.stop();
          const line = { cluster, inCluster, start: i, readyMs: Math.round(agent.readyMs), services: agent.ready.services, readyMiB: +(atReady / MiB).toFixed(1), settledMiB: +(settled / MiB).toFixed(1), warnings: issues.warnings, errors: issues.errors };
          process.stdout.write(`${JSON.stringify(line)}\n`);
          summary.readyMs.push(line.readyMs);
          summary.readyMiB.push(line.readyMiB);
          summary.settledMiB.push(line.settledMiB);
        }
      } finally {
        await server.close();
      }
    }
    for (const [cluster, s] of Object.entries(results)) {
      process.stdout.write(`${JSON.stringify({ cluster, medianReadyMs: median(s.readyMs), medianReadyMiB: median(s.readyMiB), medianSettledMiB: median(s.settledMiB) })}\n`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
