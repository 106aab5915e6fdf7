// WATCH on the test Kubernetes API server through client-node's Watch: exact event sequences, bookmarks, 410, selectors, endings.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request } from 'node:http';
import { describe, it, type TestContext } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { type KubeApiServer, type KubeApiServerOptions, startKubeApiServer } from './kube-api-server.ts';
import { recordWatch, type WatchRecording } from './kube-watch-recorder.ts';
import { waitFor } from '../../lab/wait-for.ts';

async function serve(t: TestContext, options: KubeApiServerOptions = {}): Promise<{ server: KubeApiServer; kubeConfig: KubeConfig }> {
  const server = await startKubeApiServer(options);
  t.after(() => server.close());
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(server.kubeconfigPath);
  return { server, kubeConfig };
}

async function watch(t: TestContext, kubeConfig: KubeConfig, path: string, query: Record<string, string | number | boolean> = {}): Promise<WatchRecording> {
  const recording = await recordWatch(kubeConfig, path, query);
  t.after(() => recording.abort());
  return recording;
}

async function eventCount(recording: WatchRecording, count: number): Promise<void> {
  await waitFor(() => recording.events.length >= count, { message: `${count} events; got ${recording.summary().join(', ')}` });
}

describe('WATCH', () => {
  it('from a resourceVersion sends exactly the events after it, then live ones', async (t) => {
    const { server, kubeConfig } = await serve(t);
    server.apply('services', { metadata: { name: 'a' } });
    server.apply('services', { metadata: { name: 'b' } });
    const recording = await watch(t, kubeConfig, '/api/v1/services', { resourceVersion: '1001' });
    await eventCount(recording, 1);
    await waitFor(() => server.openWatchCount('services') === 1, { message: 'the watch is live' });
    server.apply('services', { metadata: { name: 'a', labels: { v: '2' } } });
    server.apply('services', { metadata: { name: 'a', labels: { v: '2' } } }); // no-op: no event
    server.apply('pods', { metadata: { name: 'other-resource' } });
    server.remove('services', 'default', 'b');
    server.apply('services', { metadata: { name: 'c', namespace: 'shop' } });
    await eventCount(recording, 4);
    assert.deepEqual(recording.summary(), ['ADDED b 1002', 'MODIFIED a 1003', 'DELETED b 1005', 'ADDED c 1006']);
    assert.deepEqual([recording.events[0]?.object.kind, recording.events[0]?.object.apiVersion], ['Service', 'v1']);
    assert.equal(recording.finished(), false);
  });

  it('without a resourceVersion (or with "0") starts with a synthetic ADDED per object, in key order', async (t) => {
    const { server, kubeConfig } = await serve(t);
    server.apply('pods', { metadata: { name: 'z', namespace: 'a' } });
    server.apply('pods', { metadata: { name: 'y', namespace: 'b' } });
    server.remove('pods', 'b', 'y');
    server.apply('pods', { metadata: { name: 'x', namespace: 'a' } });
    for (const query of [{}, { resourceVersion: '0' }] as Array<Record<string, string>>) {
      const recording = await watch(t, kubeConfig, '/api/v1/pods', query);
      await eventCount(recording, 2);
      assert.deepEqual(recording.summary(), ['ADDED x 1004', 'ADDED z 1001']);
    }
    const namespaced = await watch(t, kubeConfig, '/api/v1/namespaces/b/pods');
    await waitFor(() => server.openWatchCount('pods') === 3, { message: 'three watches live' });
    server.apply('pods', { metadata: { name: 'w', namespace: 'b' } });
    await eventCount(namespaced, 1);
    assert.deepEqual(namespaced.summary(), ['ADDED w 1005']);
  });

  it('sends BOOKMARKs carrying only kind, apiVersion and the resourceVersion when allowed', async (t) => {
    const { server, kubeConfig } = await serve(t, { bookmarkIntervalMs: 30 });
    server.apply('endpointslices', { metadata: { name: 's' }, addressType: 'IPv4', endpoints: [] });
    const recording = await watch(t, kubeConfig, '/apis/discovery.k8s.io/v1/endpointslices', { resourceVersion: '1001', allowWatchBookmarks: true });
    await eventCount(recording, 1);
    server.apply('pods', { metadata: { name: 'p' } });
    await waitFor(() => recording.events.some((event) => event.object.metadata?.resourceVersion === '1002'), { message: 'a bookmark at 1002' });
    for (const event of recording.events) assert.equal(event.type, 'BOOKMARK');
    assert.deepEqual(recording.events.at(-1), {
      type: 'BOOKMARK',
      object: { kind: 'EndpointSlice', apiVersion: 'discovery.k8s.io/v1', metadata: { resourceVersion: '1002' } },
    });
    const without = await watch(t, kubeConfig, '/apis/discovery.k8s.io/v1/endpointslices', { resourceVersion: '1002' });
    const seen = recording.events.length;
    await waitFor(() => recording.events.length >= seen + 3, { message: 'three more bookmarks on the first watch' });
    assert.deepEqual(without.events, [], 'no bookmark unless allowWatchBookmarks');
  });

  it('with sendInitialEvents ends the initial events with the one annotated bookmark', async (t) => {
    const { server, kubeConfig } = await serve(t, { bookmarkIntervalMs: 60_000 });
    server.apply('services', { metadata: { name: 'a' } });
    server.apply('services', { metadata: { name: 'b' } });
    const query = { sendInitialEvents: true, resourceVersionMatch: 'NotOlderThan', allowWatchBookmarks: true };
    const recording = await watch(t, kubeConfig, '/api/v1/services', query);
    await eventCount(recording, 3);
    assert.deepEqual(recording.summary(), ['ADDED a 1001', 'ADDED b 1002', 'BOOKMARK - 1002']);
    assert.deepEqual(recording.events[2]?.object.metadata, { resourceVersion: '1002', annotations: { 'k8s.io/initial-events-end': 'true' } });
    const future = await watch(t, kubeConfig, '/api/v1/services', { ...query, resourceVersion: '2000' });
    assert.equal(await future.done, null);
    assert.deepEqual(future.summary(), ['ERROR - -']);
    assert.deepEqual([future.events[0]?.object.code, future.events[0]?.object.message], [504, 'Timeout: Too large resource version: 2000, current: 1002']);
  });

  it('from a compacted resourceVersion answers 200, one ERROR event with the 410 Status, and ends', async (t) => {
    const { server, kubeConfig } = await serve(t);
    server.apply('services', { metadata: { name: 'a' } });
    server.apply('services', { metadata: { name: 'a', labels: { v: '2' } } });
    server.expireResourceVersions();
    const recording = await watch(t, kubeConfig, '/api/v1/services', { resourceVersion: '1001' });
    assert.equal(await recording.done, null, 'a clean end, not an HTTP error');
    assert.deepEqual(recording.events, [
      {
        type: 'ERROR',
        object: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'too old resource version: 1001 (1002)', reason: 'Expired', code: 410 },
      },
    ]);
    assert.equal(server.openWatchCount(), 0);
  });

  it('sends an object entering its selection as ADDED and one leaving it as DELETED', async (t) => {
    const { server, kubeConfig } = await serve(t);
    const recording = await watch(t, kubeConfig, '/api/v1/pods', { labelSelector: 'app=web', fieldSelector: 'spec.nodeName=node-a' });
    await waitFor(() => server.openWatchCount('pods') === 1, { message: 'the watch is live' });
    server.apply('pods', { metadata: { name: 'p', labels: { app: 'db' } }, spec: { nodeName: 'node-a' } });
    server.apply('pods', { metadata: { name: 'p', labels: { app: 'web' } }, spec: { nodeName: 'node-a' } });
    server.apply('pods', { metadata: { name: 'p', labels: { app: 'web' } }, spec: { nodeName: 'node-a' }, status: { phase: 'Running' } });
    server.apply('pods', { metadata: { name: 'p', labels: { app: 'web' } }, spec: { nodeName: 'node-b' }, status: { phase: 'Running' } });
    server.remove('pods', 'default', 'p');
    server.apply('pods', { metadata: { name: 'q', labels: { app: 'web' } }, spec: { nodeName: 'node-a' } });
    server.remove('pods', 'default', 'q');
    await eventCount(recording, 5);
    assert.deepEqual(recording.summary(), ['ADDED p 1002', 'MODIFIED p 1003', 'DELETED p 1004', 'ADDED q 1006', 'DELETED q 1007']);
    // Leaving the selection: the previous content, stamped with the event's resourceVersion.
    assert.deepEqual(recording.events[2]?.object, {
      kind: 'Pod',
      apiVersion: 'v1',
      metadata: { ...recording.events[1]?.object.metadata, resourceVersion: '1004' },
      spec: { nodeName: 'node-a' },
      status: { phase: 'Running' },
    });
  });

  it('ends cleanly after timeoutSeconds', async (t) => {
    const { server, kubeConfig } = await serve(t);
    const started = Date.now();
    const recording = await watch(t, kubeConfig, '/api/v1/namespaces', { timeoutSeconds: 1 });
    assert.equal(await recording.done, null);
    assert.ok(Date.now() - started >= 900, 'not before the timeout');
    assert.equal(server.openWatchCount(), 0);
  });

  it('endWatches ends streams cleanly; dropWatches breaks them and client-node reports an error', async (t) => {
    const { server, kubeConfig } = await serve(t);
    const ended = await watch(t, kubeConfig, '/api/v1/services');
    const dropped = await watch(t, kubeConfig, '/api/v1/pods');
    await waitFor(() => server.openWatchCount() === 2, { message: 'two watches live' });
    assert.equal(server.endWatches(), 2);
    assert.deepEqual([await ended.done, await dropped.done], [null, null]);
    const broken = await watch(t, kubeConfig, '/api/v1/pods');
    await waitFor(() => server.openWatchCount('pods') === 1, { message: 'the watch is live' });
    assert.equal(server.dropWatches(), 1);
    const error = await broken.done;
    assert.ok(error instanceof Error, `an error, got ${String(error)}`);
    assert.equal(server.openWatchCount(), 0);
    assert.equal(server.requestCount('pods', 'watch'), 2);
  });

  it('flushes its headers at once and streams one JSON event per line, chunked', async (t) => {
    const { server } = await serve(t);
    const outgoing = request(`${server.url}/api/v1/services?watch=1&resourceVersion=1000`, { headers: { Authorization: `Bearer ${server.token}` } });
    outgoing.end();
    t.after(() => outgoing.destroy());
    const [response] = (await once(outgoing, 'response')) as [import('node:http').IncomingMessage];
    assert.deepEqual([response.statusCode, response.headers['content-type'], response.headers['transfer-encoding']], [200, 'application/json', 'chunked']);
    server.apply('services', { metadata: { name: 'a' } });
    server.remove('services', 'default', 'a');
    let text = '';
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      text += chunk;
    });
    await waitFor(() => text.split('\n').length === 3, { message: 'two lines' });
    const lines = text.trimEnd().split('\n').map((line) => JSON.parse(line) as { type: string; object: { metadata: { resourceVersion: string } } });
    assert.deepEqual(lines.map((line) => `${line.type} ${line.object.metadata.resourceVersion}`), ['ADDED 1001', 'DELETED 1002']);
  });

  it('rejects invalid watch parameters with an HTTP error before streaming', async (t) => {
    const { kubeConfig } = await serve(t);
    const recording = await watch(t, kubeConfig, '/api/v1/services', { resourceVersionMatch: 'NotOlderThan' });
    const error = (await recording.done) as { statusCode?: number };
    assert.equal(error.statusCode, 422);
    assert.deepEqual(recording.events, []);
  });
});
