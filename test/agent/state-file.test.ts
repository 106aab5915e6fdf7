// Serving from the last known state: an agent that had synced, is SIGKILLed and restarts while the API server is
// unreachable serves from its state file within 5 s, and converges to the API's view when it returns.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type BackendProcess, spawnBackend } from '../../lab/grpc-backend-process.ts';
import { type EchoServiceClient, META, makeEchoClient, unary } from '../../lab/grpc-peers.ts';
import { waitFor } from '../../lab/wait-for.ts';
import { type AgentProcess, HEALTH_UP_MESSAGE, startAgent } from '../support/agent-process.ts';
import { endpointSliceObject, grpcServiceObject } from '../support/kube-api-objects.ts';
import { type KubeApiServer, startKubeApiServer } from '../support/kube-api-server.ts';

/** Three "pods" on loopback IPs of their own, one port. */
const IPS = ['127.0.0.41', '127.0.0.42', '127.0.0.43'];
const [A, B, C] = IPS;
let api: KubeApiServer;
let backends: BackendProcess[] = [];
let podPort = 0;
const directory = mkdtempSync(join(tmpdir(), 'ml-state-file-'));
const stateFile = join(directory, 'state.json');

before(async () => {
  api = await startKubeApiServer();
  api.apply('namespaces', { metadata: { name: 'default' } });
  const first = await spawnBackend(A, { host: A });
  podPort = first.port;
  backends = [first, ...(await Promise.all(IPS.slice(1).map((ip) => spawnBackend(ip, { host: ip, port: podPort }))))];
});

after(async () => {
  await Promise.all(backends.map((b) => b.kill()));
  await api?.close();
  rmSync(directory, { recursive: true, force: true });
});

/** Round-robin, so that which backends answer a run of calls is exact. */
const FLAGS = (): string[] => [
  '--discovery', 'kubernetes', '--kubeconfig', api.kubeconfigPath, '--node-name', 'node-a', '--balancer', 'round-robin',
  '--state-file', stateFile,
];

function publishSlice(ips: string[]): void {
  api.apply('endpointslices', endpointSliceObject('kept-abcde', 'kept', podPort, ips.map((ip) => ({ ip }))));
}

function clientPod(name: string, ip: string): Parameters<KubeApiServer['apply']>[1] {
  return {
    metadata: { name, namespace: 'default', annotations: { 'meshlite.io/inject': 'enabled' } },
    spec: { nodeName: 'node-a', containers: [{ name: 'app', image: 'app:1' }] },
    status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
  };
}

interface SavedView {
  version: number;
  savedAt: string;
  nodeName: string;
  services: Array<{ namespace: string; name: string; port: number; endpoints: Array<{ host: string }> }>;
  pods: Array<{ namespace: string; name: string; ips: string[] }>;
}

function saved(): SavedView | null {
  try {
    return JSON.parse(readFileSync(stateFile, 'utf8')) as SavedView;
  } catch {
    return null;
  }
}

function savedSummary(): string {
  const view = saved();
  if (view === null) return 'none';
  const services = view.services.map((s) => `${s.namespace}/${s.name}:${s.port}=${s.endpoints.map((e) => e.host).sort().join(',')}`);
  return `${services.join(' ')} pods=${view.pods.map((p) => `${p.name}@${p.ips.join(',')}`).join(',')}`;
}

function client(agent: AgentProcess): EchoServiceClient {
  return makeEchoClient(agent.listen, { 'grpc.default_authority': 'kept.default.svc.cluster.local:80' });
}

/** Who answered each of `count` sequential calls. */
async function servedBy(channel: EchoServiceClient, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const response = await unary(channel, Buffer.from('state'), { timeoutMs: 2000 });
    ids.push(String(response.headers.get(META.servedBy)[0]));
  }
  return ids;
}

async function readyz(agent: AgentProcess): Promise<{ status: number; body: { ready: boolean; discovery: Record<string, unknown> } }> {
  const response = await fetch(`http://${agent.admin}/readyz`);
  return { status: response.status, body: (await response.json()) as { ready: boolean; discovery: Record<string, unknown> } };
}

function kill9(agent: AgentProcess): Promise<unknown> {
  const exited = once(agent.child, 'exit');
  agent.child.kill('SIGKILL');
  return exited;
}

test('synced, SIGKILLed, restarted during an API outage: serves from the state file within 5 s, then converges to the API', async (t) => {
  api.apply('services', grpcServiceObject('kept'));
  publishSlice([A, B]);
  api.apply('pods', clientPod('client-1', '10.244.0.7'));
  const first = await startAgent(FLAGS());
  try {
    await waitFor(() => savedSummary() === `default/kept:80=${A},${B} pods=client-1@10.244.0.7`, {
      timeoutMs: 10_000,
      message: 'the synced view in the state file',
    });
    const view = saved();
    assert.equal(view?.version, 1);
    assert.equal(view?.nodeName, 'node-a');
  } finally {
    await kill9(first);
  }
  assert.deepEqual(readdirSync(directory), ['state.json'], 'no temp file left beside it');

  await api.stop();
  const spawned = performance.now();
  const second = await startAgent(FLAGS(), 15_000);
  const channel = client(second);
  try {
    const readyMs = performance.now() - spawned;
    const ids = await servedBy(channel, 6);
    const servingMs = performance.now() - spawned;
    t.diagnostic(`restarted during the outage: ready ${Math.round(readyMs)} ms after the spawn, first 6 RPCs answered by ${Math.round(servingMs)} ms`);
    assert.deepEqual([...new Set(ids)].sort(), [A, B]);
    assert.ok(servingMs < 5000, `served from the state file ${Math.round(servingMs)} ms after the spawn`);
    const persisted = await readyz(second);
    assert.equal(persisted.status, 200);
    assert.equal(persisted.body.ready, true);
    assert.equal(persisted.body.discovery.state, 'persisted');
    assert.equal(persisted.body.discovery.savedAt, saved()?.savedAt);
    assert.equal(persisted.body.discovery.stateFile, stateFile);
    assert.equal(persisted.body.discovery.services, 1);
    assert.equal(persisted.body.discovery.pods, 1);
    assert.equal((persisted.body.discovery.api as { state: string }).state, 'degraded');
    assert.ok(second.logs.some((l) => l.msg === 'no first sync yet: serving from the state file until the Kubernetes API answers'));

    // While the agent is away from the API: A's endpoint goes, C's comes, the client pod is deleted.
    publishSlice([B, C]);
    api.remove('pods', 'default', 'client-1');
    const before = saved()?.savedAt;
    await api.restart();
    const restarted = performance.now();
    await waitFor(async () => (await readyz(second)).body.discovery.state === 'synced', { timeoutMs: 30_000, message: 'synced after the API returned' });
    t.diagnostic(`synced ${Math.round(performance.now() - restarted)} ms after the API server came back`);
    assert.deepEqual([...new Set(await servedBy(channel, 6))].sort(), [B, C]);
    await waitFor(() => savedSummary() === `default/kept:80=${B},${C} pods=`, { timeoutMs: 10_000, message: 'the new view persisted' });
    assert.notEqual(saved()?.savedAt, before);
    assert.deepEqual(readdirSync(directory), ['state.json']);
  } finally {
    channel.close();
    assert.equal(await second.stop(), 0);
  }
});

test('--state-file off (the default): an agent started during an outage waits for the API as before, state file or not', async () => {
  assert.notEqual(saved(), null, 'a usable state file is there');
  await api.stop();
  const agent = await startAgent(
    ['--discovery', 'kubernetes', '--kubeconfig', api.kubeconfigPath, '--node-name', 'node-a'],
    15_000,
    HEALTH_UP_MESSAGE,
  );
  try {
    await waitFor(() => agent.logs.some((l) => l.code === 'ML_KUBE_LIST_FAILED'), { timeoutMs: 20_000, message: 'a LIST failed' });
    // Past the state file's fallback bound (2 s): an agent with the file would serve by now.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const waiting = await readyz(agent);
    assert.equal(waiting.status, 503);
    assert.equal(waiting.body.ready, false);
    assert.equal(waiting.body.discovery.state, 'degraded');
    assert.equal(agent.logs.some((l) => String(l.msg).includes('state file')), false);
    await api.restart();
    // Synced, not only ready: an informer stays 'failed' from the LIST that delivered its view until its watch opens.
    await waitFor(async () => (await readyz(agent)).body.discovery.state === 'synced', { timeoutMs: 30_000, message: 'synced after the API returned' });
    assert.deepEqual((await readyz(agent)).body, { ready: true, discovery: { state: 'synced' } });
  } finally {
    assert.equal(await agent.stop(), 0);
  }
});

test('an API server that accepts connections but never answers: served from the state file 2 s into discovery', async (t) => {
  assert.equal(savedSummary(), `default/kept:80=${B},${C} pods=`, 'the view the first test left');
  api.stall(true);
  const spawned = performance.now();
  const agent = await startAgent(FLAGS(), 15_000);
  const channel = client(agent);
  try {
    const ids = await servedBy(channel, 4);
    t.diagnostic(`stalled API: first 4 RPCs answered ${Math.round(performance.now() - spawned)} ms after the spawn`);
    assert.deepEqual([...new Set(ids)].sort(), [B, C]);
    const persisted = await readyz(agent);
    assert.equal(persisted.body.discovery.state, 'persisted');
    assert.deepEqual(persisted.body.discovery.api, { state: 'syncing', waitingFor: ['services', 'endpointslices', 'pods', 'namespaces'] });
    api.stall(false);
    await waitFor(async () => (await readyz(agent)).body.discovery.state === 'synced', { timeoutMs: 30_000, message: 'synced once the API answers' });
  } finally {
    channel.close();
    api.stall(false);
    assert.equal(await agent.stop(), 0);
  }
});
