// manifests/monitoring/grafana-dashboard.json: every query names metrics and labels the agent exports, and (with
// Debian's prometheus) every query answers with data when a real Prometheus scrapes a real agent under traffic.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type BackendProcess, spawnBackend } from '../../lab/grpc-backend-process.ts';
import { makeEchoClient, unary } from '../../lab/grpc-peers.ts';
import { waitFor } from '../../lab/wait-for.ts';
import { startAgent } from '../support/agent-process.ts';
import { populatedMetrics } from '../support/populated-metrics.ts';

const DASHBOARD = JSON.parse(readFileSync(new URL('../../manifests/monitoring/grafana-dashboard.json', import.meta.url), 'utf8')) as {
  templating: { list: Array<{ name: string; definition?: string }> };
  panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
};
/** Labels every scraped series gets from its target: the ServiceMonitor's `node`, Prometheus' `instance` and `job`. */
const TARGET_LABELS = ['node', 'instance', 'job'];
const PROMETHEUS = '/usr/bin/prometheus';
/** Below the kernel's range for client ports. */
const PROMETHEUS_PORT = 15931;

const queries = (): Array<{ panel: string; expr: string }> => DASHBOARD.panels.flatMap((panel) => panel.targets.map((target) => ({ panel: panel.title, expr: target.expr })));

/** Each exported family's label names, from an agent's exposition with every kind of series present. */
async function exportedLabels(): Promise<Map<string, Set<string>>> {
  const families = new Map<string, Set<string>>();
  for (const line of (await populatedMetrics().registry.metrics()).split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? /.exec(line);
    if (match === null) continue;
    const labels = families.get(match[1]) ?? new Set<string>();
    for (const pair of (match[2] ?? '').matchAll(/(\w+)="/g)) labels.add(pair[1]);
    families.set(match[1], labels);
  }
  return families;
}

describe('the Grafana dashboard', () => {
  it('filters by a node variable taken from meshlite_build_info', () => {
    const node = DASHBOARD.templating.list.find((variable) => variable.name === 'node');
    assert.equal(node?.definition, 'label_values(meshlite_build_info, node)');
    for (const { panel, expr } of queries()) assert.ok(expr.includes('node=~"$node"'), `${panel}: filters by $node`);
  });

  it('names only metrics the agent exports, with labels they carry', async () => {
    const exported = await exportedLabels();
    for (const { panel, expr } of queries()) {
      const names = [...expr.matchAll(/\b((?:meshlite|process|nodejs)_\w+)/g)].map((match) => match[1]);
      assert.ok(names.length > 0, `${panel}: no metric`);
      const labels = new Set([...TARGET_LABELS, 'le']);
      for (const name of names) {
        assert.ok(exported.has(name), `${panel}: ${name} is not exported`);
        for (const label of exported.get(name) ?? []) labels.add(label);
      }
      for (const selector of expr.matchAll(/\b((?:meshlite|process|nodejs)_\w+)\{([^}]*)\}/g)) {
        for (const matcher of selector[2].matchAll(/(\w+)\s*(?:=~|!=|!~|=)/g)) {
          assert.ok(TARGET_LABELS.includes(matcher[1]) || exported.get(selector[1])?.has(matcher[1]), `${panel}: ${selector[1]} has no label ${matcher[1]}`);
        }
      }
      for (const grouping of expr.matchAll(/\b(?:by|on|ignoring)\s*\(([^)]*)\)/g)) {
        for (const label of grouping[1].split(',').map((each) => each.trim())) assert.ok(labels.has(label), `${panel}: groups by ${label}, which its metrics do not carry`);
      }
    }
  });

  it('every query answers with data from a real Prometheus scraping a real agent under traffic', { skip: existsSync(PROMETHEUS) ? false : `no ${PROMETHEUS} (scripts/setup.sh installs Debian's prometheus)`, timeout: 120_000 }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'meshlite-grafana-'));
    const backends: BackendProcess[] = await Promise.all(['g1', 'g2'].map((id) => spawnBackend(id)));
    // A third endpoint that refuses connections: its requests are retried on the others (the retries panel).
    const file = join(dir, 'services.yaml');
    writeFileSync(file, `services:\n  - name: greeter\n    namespace: default\n    port: 50051\n    endpoints:\n${[...backends.map((b) => b.port), 1].map((port) => `      - address: 127.0.0.1:${port}`).join('\n')}\n`);
    const agent = await startAgent(['--discovery', 'static', '--static-file', file]);
    const client = makeEchoClient(agent.listen, { 'grpc.default_authority': 'greeter.default.svc.cluster.local:50051' });
    const stranger = makeEchoClient(agent.listen, { 'grpc.default_authority': 'nowhere.default.svc.cluster.local:1' });
    let running = true;
    const traffic = Array.from({ length: 4 }, async (_, worker) => {
      while (running) {
        await unary(worker === 0 ? stranger : client, Buffer.from('q'), { timeoutMs: 2_000 }).catch(() => {});
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    });
    writeFileSync(
      join(dir, 'prometheus.yml'),
      `global: { scrape_interval: 1s, evaluation_interval: 1s }\nscrape_configs:\n  - job_name: meshlite\n    static_configs:\n      - targets: ['${agent.admin}']\n        labels: { node: lab-node }\n`,
    );
    let prometheus: ChildProcess | undefined;
    try {
      prometheus = spawn(PROMETHEUS, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${PROMETHEUS_PORT}`], { stdio: 'ignore' });
      const query = async (expr: string): Promise<{ status: string; data?: { result: unknown[] }; error?: string }> => {
        const response = await fetch(`http://127.0.0.1:${PROMETHEUS_PORT}/api/v1/query?query=${encodeURIComponent(expr)}`);
        return (await response.json()) as { status: string; data?: { result: unknown[] }; error?: string };
      };
      // Rates need a few scrapes.
      await waitFor(async () => ((await query('count_over_time(up{job="meshlite"}[1m])')).data?.result.length ?? 0) > 0 && JSON.stringify((await query('count_over_time(up{job="meshlite"}[1m]) >= 6')).data?.result ?? []) !== '[]', {
        timeoutMs: 60_000,
        intervalMs: 500,
        message: 'six scrapes of the agent',
      });
      for (const { panel, expr } of queries()) {
        const concrete = expr.replaceAll('$node', 'lab-node').replaceAll('$__rate_interval', '5s');
        const answer = await query(concrete);
        assert.equal(answer.status, 'success', `${panel}: ${answer.error}`);
        assert.ok((answer.data?.result.length ?? 0) > 0, `${panel}: no data for ${concrete}`);
        t.diagnostic(`${panel}: ${answer.data?.result.length} series`);
      }
    } finally {
      running = false;
      await Promise.all(traffic);
      client.close();
      stranger.close();
      if (prometheus !== undefined && prometheus.exitCode === null) {
        const exited = once(prometheus, 'exit');
        prometheus.kill('SIGTERM');
        await exited;
      }
      assert.equal(await agent.stop(), 0);
      await Promise.all(backends.map((backend) => backend.kill()));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
