// Health that tells the truth: an agent that starts while the API server is unreachable answers /healthz at once
// (liveness must not restart it for an outage it cannot fix) and /readyz 503 with the reason, and becomes ready
// when the API server comes back.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { HEALTH_UP_MESSAGE, startAgent } from '../support/agent-process.ts';
import { getOverUnixSocket as probe } from '../support/unix-socket-get.ts';
import { type KubeApiServer, startKubeApiServer } from '../support/kube-api-server.ts';
import { readBuildInfo } from '../../agent/vocabulary/build-info.ts';
import { TCP_MIGRATE_REQ } from '../../agent/drain/listener-migration.ts';
import { waitFor } from '../../lab/wait-for.ts';

let api: KubeApiServer;
const sockets = mkdtempSync(join(tmpdir(), 'ml-health-'));
/** Fixed ports (below 32768), shared by both agents of the upgrade test as a DaemonSet's pods share them. */
const ADMIN_PORT = 15391;
const METRICS_PORT = 15392;

before(async () => {
  api = await startKubeApiServer();
  api.apply('namespaces', { metadata: { name: 'default' } });
});

after(async () => {
  await api?.close();
  rmSync(sockets, { recursive: true, force: true });
});


test('API unreachable at start: /healthz 200 before the first snapshot, /readyz 503 with its reason, then ready when it returns', async (t) => {
  // An agent in explicit mode (as here, in the machine's own network namespace) changes no node setting.
  const migrateBefore = readFileSync(TCP_MIGRATE_REQ, 'utf8');
  await api.stop();
  const started = performance.now();
  const agent = await startAgent(
    ['--discovery', 'kubernetes', '--kubeconfig', api.kubeconfigPath, '--node-name', 'node-a'],
    15_000,
    HEALTH_UP_MESSAGE,
  );
  try {
    const health = await fetch(`http://${agent.admin}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(await health.text(), 'ok\n');
    t.diagnostic(`/healthz answered ${Math.round(performance.now() - started)} ms after the spawn`);

    // However long the outage lasts, the agent stays alive and says why it is not ready.
    await waitFor(() => agent.logs.some((l) => l.code === 'ML_KUBE_LIST_FAILED'), { timeoutMs: 20_000, message: 'a LIST failed' });
    const notReady = await fetch(`http://${agent.admin}/readyz`);
    assert.equal(notReady.status, 503);
    const body = (await notReady.json()) as { ready: boolean; reason: string; phase: string; discovery: { state: string } };
    assert.equal(body.ready, false);
    assert.equal(body.phase, 'discovery');
    assert.equal(body.reason, 'discovery syncing: waiting for the first snapshot of Services, EndpointSlices and pods');
    assert.equal(body.discovery.state, 'degraded');
    assert.equal((await fetch(`http://${agent.admin}/healthz`)).status, 200);
    assert.equal(agent.child.exitCode, null);

    await api.restart();
    await waitFor(() => agent.logs.some((l) => l.msg === 'meshlite ready'), { timeoutMs: 30_000, message: 'ready after the API returned' });
    const readyLine = agent.logs.find((l) => l.msg === 'meshlite ready');
    assert.equal(readyLine?.node, 'node-a', 'the ready line names the node');
    assert.equal(readyLine?.version, readBuildInfo().version, 'and the version');
    // Synced, not only ready: an informer whose LIST failed during the outage stays 'failed' until its retry lists.
    const readyz = async () => {
      const response = await fetch(`http://${agent.admin}/readyz`);
      return { status: response.status, body: (await response.json()) as { ready: boolean; discovery: { state: string } } };
    };
    await waitFor(async () => (await readyz()).body.discovery.state === 'synced', { timeoutMs: 30_000, message: 'synced after the API returned' });
    assert.deepEqual(await readyz(), { status: 200, body: { ready: true, discovery: { state: 'synced' } } });
    assert.equal(readFileSync(TCP_MIGRATE_REQ, 'utf8'), migrateBefore, 'net.ipv4.tcp_migrate_req left as it was');
  } finally {
    assert.equal(await agent.stop(), 0);
  }
});

test('two agents with identical flags (an upgrade) share the admin and metrics ports; each probe socket answers for its own agent', async () => {
  const flags = (probeSocket: string): string[] => [
    '--discovery', 'kubernetes', '--kubeconfig', api.kubeconfigPath, '--node-name', 'node-a',
    '--admin', `127.0.0.1:${ADMIN_PORT}`, '--metrics', `node:${METRICS_PORT}`, '--node-ip', '127.0.0.1,::1',
    '--probe-socket', probeSocket,
  ];
  const oldSocket = join(sockets, 'old', 'probes.sock');
  const newSocket = join(sockets, 'new', 'probes.sock');
  const old = await startAgent(flags(oldSocket));
  let next: Awaited<ReturnType<typeof startAgent>> | null = null;
  try {
    assert.equal((await probe(oldSocket, '/readyz')).status, 200);
    // The new agent starts while the API is away: it binds the same ports, and is not ready.
    await api.stop();
    next = await startAgent(flags(newSocket), 15_000, HEALTH_UP_MESSAGE);
    assert.equal(next.admin, `127.0.0.1:${ADMIN_PORT}`);
    const waiting = await probe(newSocket, '/readyz');
    assert.equal(waiting.status, 503);
    assert.equal((JSON.parse(waiting.body) as { phase: string }).phase, 'discovery');
    assert.equal((await probe(newSocket, '/healthz')).status, 200);
    assert.equal((await probe(oldSocket, '/readyz')).status, 200, 'the old agent is still the ready one');
    for (const host of ['127.0.0.1', '[::1]']) {
      const scraped = await fetch(`http://${host}:${METRICS_PORT}/metrics`);
      assert.equal(scraped.status, 200);
      assert.match(await scraped.text(), /^# TYPE meshlite_/m);
      assert.equal((await fetch(`http://${host}:${METRICS_PORT}/healthz`)).status, 404, 'the metrics listener serves /metrics only');
    }

    await api.restart();
    await waitFor(async () => (await probe(newSocket, '/readyz')).status === 200, { timeoutMs: 30_000, message: 'the new agent ready' });
    assert.equal(await old.stop(), 0);
    assert.equal((await fetch(`http://127.0.0.1:${METRICS_PORT}/metrics`)).status, 200, 'metrics answer after the old agent left');
    assert.equal((await fetch(`http://127.0.0.1:${ADMIN_PORT}/readyz`)).status, 200);
  } finally {
    await old.stop();
    if (next !== null) assert.equal(await next.stop(), 0);
  }
});
