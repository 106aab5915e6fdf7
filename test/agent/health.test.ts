// Health that tells the truth: an agent that starts while the API server is unreachable answers /healthz at once
// (liveness must not restart it for an outage it cannot fix) and /readyz 503 with the reason, and becomes ready
// when the API server comes back.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { HEALTH_UP_MESSAGE, startAgent } from '../support/agent-process.ts';
import { type KubeApiServer, startKubeApiServer } from '../support/kube-api-server.ts';
import { waitFor } from '../../lab/wait-for.ts';

let api: KubeApiServer;

before(async () => {
  api = await startKubeApiServer();
  api.apply('namespaces', { metadata: { name: 'default' } });
});

after(async () => {
  await api?.close();
});

test('API unreachable at start: /healthz 200 before the first snapshot, /readyz 503 with its reason, then ready when it returns', async (t) => {
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
    const ready = await fetch(`http://${agent.admin}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { ready: true, discovery: { state: 'synced' } });
  } finally {
    assert.equal(await agent.stop(), 0);
  }
});
