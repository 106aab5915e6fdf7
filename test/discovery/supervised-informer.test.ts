// The supervised informer against the test API server through the agent's own client: sync, events, and every kind
// of API trouble (dropped watch, 410 after compaction, 500s, a stalled server), each followed by full recovery.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, test } from 'node:test';
import { createKubeApi, loadKubeConfig } from '../../agent/discovery/kube-api.ts';
import type { ServiceRecord } from '../../agent/discovery/kube-objects.ts';
import { projectService } from '../../agent/discovery/kube-projection.ts';
import { type InformerState, SupervisedInformer } from '../../agent/discovery/supervised-informer.ts';
import { createLogger } from '../../agent/telemetry/logger.ts';
import { grpcServiceObject } from '../support/kube-api-objects.ts';
import { type KubeApiServer, startKubeApiServer } from '../support/kube-api-server.ts';
import { waitFor } from '../../lab/wait-for.ts';

let api: KubeApiServer;
let informer: SupervisedInformer<ServiceRecord> | null = null;
/** What the informer told its handlers, in order: `apply a`, `delete b`, and state names. */
let events: string[] = [];
let states: InformerState[] = [];

beforeEach(async () => {
  api = await startKubeApiServer({ bookmarkIntervalMs: 60_000 });
  events = [];
  states = [];
});

afterEach(async () => {
  informer?.stop();
  informer = null;
  await api.close();
});

/** The queries of every LIST and WATCH the informer made, in order. */
let queries: string[] = [];

function start(options: { listTimeoutMs?: number; watchIdleTimeoutMs?: number } = {}): SupervisedInformer<ServiceRecord> {
  const client = createKubeApi(loadKubeConfig(api.kubeconfigPath));
  queries = [];
  informer = new SupervisedInformer<ServiceRecord>({
    spec: { resource: 'services', path: '/api/v1/services', project: projectService },
    api: {
      ...client,
      list: (path, query, project, signal) => {
        queries.push(`list ${new URLSearchParams(query)}`);
        return client.list(path, query, project, signal);
      },
      watch: (path, query, handlers, signal) => {
        queries.push(`watch resourceVersion=${query.resourceVersion}`);
        return client.watch(path, query, handlers, signal);
      },
    },
    handlers: {
      apply: (record) => events.push(`apply ${record.metadata.name}`),
      delete: (record) => events.push(`delete ${record.metadata.name}`),
      stateChanged: (state) => states.push(state),
    },
    timers: {
      now: () => performance.now(),
      setTimeout: (callback, ms) => setTimeout(callback, ms),
      clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
    },
    random: () => 0.5,
    logger: createLogger('silent'),
    backoff: { initialMs: 20, maxMs: 200 },
    listTimeoutMs: options.listTimeoutMs ?? 5000,
    watchIdleTimeoutMs: options.watchIdleTimeoutMs ?? 30_000,
  });
  informer.start();
  return informer;
}

const stateNames = (): string[] => states.map((s) => (s.state === 'failed' ? `failed(${s.code} #${s.failures})` : s.state));

function watching(): Promise<void> {
  return waitFor(() => informer?.state.state === 'watching' && api.openWatchCount('services') === 1, { message: 'watching' });
}

test('delivers the initial list, then every change in order; ready only after the list', async () => {
  api.apply('services', grpcServiceObject('a'));
  api.apply('services', grpcServiceObject('b'));
  const running = start();
  assert.equal(running.synced, false);
  await running.whenSynced();
  assert.deepEqual(events, ['apply a', 'apply b']);
  await watching();
  api.apply('services', grpcServiceObject('c'));
  api.apply('services', { ...grpcServiceObject('a'), metadata: { name: 'a', namespace: 'default', labels: { v: '2' } } });
  api.remove('services', 'default', 'b');
  await waitFor(() => events.length === 5, { message: 'three events' });
  assert.deepEqual(events, ['apply a', 'apply b', 'apply c', 'apply a', 'delete b']);
  assert.deepEqual(stateNames(), ['syncing', 'watching']);
  assert.equal(running.records().length, 2);
});

test("LISTs from the API server's cache (resourceVersion=0), then watches from the list's resourceVersion", async () => {
  api.apply('services', grpcServiceObject('a'));
  const listedAt = api.resourceVersion;
  const running = start();
  await running.whenSynced();
  await watching();
  assert.deepEqual(queries, ['list resourceVersion=0', `watch resourceVersion=${listedAt}`]);
});

test('a dropped watch is restarted with backoff and resumes where it was: changes made meanwhile arrive', async () => {
  api.apply('services', grpcServiceObject('a'));
  start();
  await watching();
  const lists = api.requestCount('services', 'list');
  // While the connection is down: a removal and an addition the informer has not seen.
  api.dropWatches();
  api.remove('services', 'default', 'a');
  api.apply('services', grpcServiceObject('b'));
  await waitFor(() => events.length === 3, { message: 'changes after the drop' });
  assert.deepEqual(events, ['apply a', 'delete a', 'apply b']);
  await watching();
  assert.deepEqual(stateNames(), ['syncing', 'watching', 'failed(ML_KUBE_WATCH_FAILED #1)', 'watching']);
  assert.equal(api.requestCount('services', 'list'), lists, 'resumed from its resourceVersion, no relist');
});

test('after the history was compacted (410 Gone) it relists and emits deletes for what vanished while it was away', async () => {
  api.apply('services', grpcServiceObject('a'));
  api.apply('services', grpcServiceObject('b'));
  start();
  await watching();
  await api.stop();
  await waitFor(() => informer?.state.state === 'failed', { message: 'failed while the server is gone' });
  api.remove('services', 'default', 'a');
  api.apply('services', grpcServiceObject('c'));
  api.expireResourceVersions();
  await api.restart();
  await watching();
  assert.deepEqual(events, ['apply a', 'apply b', 'delete a', 'apply c']);
  assert.equal(api.requestCount('services', 'list'), 2, 'one relist');
  assert.deepEqual(
    informer?.records().map((r) => r.metadata.name).sort(),
    ['b', 'c'],
  );
});

test('LISTs answered 500 fail with ML_KUBE_LIST_FAILED, count up, and the first success syncs', async () => {
  api.apply('services', grpcServiceObject('a'));
  api.failNext(3, { status: 500, resource: 'services' });
  const running = start();
  await running.whenSynced();
  await watching();
  assert.deepEqual(stateNames(), [
    'syncing',
    'failed(ML_KUBE_LIST_FAILED #1)',
    'failed(ML_KUBE_LIST_FAILED #2)',
    'failed(ML_KUBE_LIST_FAILED #3)',
    'watching',
  ]);
  const failed = states[1];
  assert.ok(failed.state === 'failed' && /500/.test(failed.reason), 'the reason names the status');
  assert.deepEqual(events, ['apply a']);
});

test('a stalled API server: the LIST times out and counts as failed; the informer syncs once the server answers', async () => {
  api.apply('services', grpcServiceObject('a'));
  api.stall(true);
  const running = start({ listTimeoutMs: 300 });
  await waitFor(() => informer?.state.state === 'failed', { message: 'list timed out' });
  const failed = informer?.state as InformerState;
  assert.ok(failed.state === 'failed' && failed.code === 'ML_KUBE_LIST_FAILED' && /no answer within 300 ms/.test(failed.reason), JSON.stringify(failed));
  assert.equal(running.synced, false);
  api.stall(false);
  await running.whenSynced();
  await watching();
  assert.deepEqual(events, ['apply a']);
});

test('a watch that stays silent past the idle timeout is reopened from its resourceVersion, without failing', async () => {
  start({ watchIdleTimeoutMs: 400 });
  await watching();
  const watches = api.requestCount('services', 'watch');
  await waitFor(() => api.requestCount('services', 'watch') >= watches + 2, { timeoutMs: 5000, message: 'watch reopened twice' });
  api.apply('services', grpcServiceObject('late'));
  await waitFor(() => events.includes('apply late'), { message: 'events still arrive' });
  assert.ok(!stateNames().some((s) => s.startsWith('failed')), stateNames().join(', '));
  assert.equal(api.requestCount('services', 'list'), 1);
});

test('a watch that gets no answer when reopening counts as failed (ML_KUBE_WATCH_FAILED) and recovers', async () => {
  const running = start({ watchIdleTimeoutMs: 400 });
  await watching();
  api.stall(true);
  api.endWatches();
  await waitFor(() => running.state.state === 'failed', { timeoutMs: 5000, message: 'reopen timed out' });
  assert.equal((running.state as { code: string }).code, 'ML_KUBE_WATCH_FAILED');
  api.stall(false);
  await watching();
});

test('stop() ends the watch and every timer: nothing more is delivered', async () => {
  const running = start();
  await watching();
  running.stop();
  await waitFor(() => api.openWatchCount('services') === 0, { message: 'watch closed' });
  api.apply('services', grpcServiceObject('after'));
  // A fresh informer sees the object: the server did send it; the stopped one must not have.
  const seen: string[] = [];
  const probe = new SupervisedInformer<ServiceRecord>({
    spec: { resource: 'services', path: '/api/v1/services', project: projectService },
    api: createKubeApi(loadKubeConfig(api.kubeconfigPath)),
    handlers: { apply: (r) => seen.push(r.metadata.name), delete: () => {}, stateChanged: () => {} },
    timers: { now: () => 0, setTimeout: (c, ms) => setTimeout(c, ms), clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) },
    random: () => 0.5,
    logger: createLogger('silent'),
    backoff: { initialMs: 20, maxMs: 200 },
    listTimeoutMs: 5000,
    watchIdleTimeoutMs: 30_000,
  });
  probe.start();
  await probe.whenSynced();
  probe.stop();
  assert.deepEqual(seen, ['after']);
  assert.deepEqual(events, []);
  assert.equal(running.state.state, 'stopped');
});
