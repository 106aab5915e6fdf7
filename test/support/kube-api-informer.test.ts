// client-node's informer (ListWatch) against the test Kubernetes API server: sync, live changes, relist after 410, and where it gives up.

import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { ADD, CoreV1Api, DELETE, ERROR, KubeConfig, ListWatch, UPDATE, type V1Service, Watch } from '@kubernetes/client-node';
import { type KubeApiServer, type KubeApiServerOptions, startKubeApiServer } from './kube-api-server.ts';
import { waitFor } from '../../lab/wait-for.ts';

interface Informer {
  readonly informer: ListWatch<V1Service>;
  /** `add name rv`, `update name rv`, `delete name rv`, `error CODE-or-message`, in the order client-node emitted them. */
  readonly log: string[];
}

async function serve(t: TestContext, options: KubeApiServerOptions = {}): Promise<{ server: KubeApiServer; kubeConfig: KubeConfig }> {
  const server = await startKubeApiServer(options);
  t.after(() => server.close());
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(server.kubeconfigPath);
  return { server, kubeConfig };
}

async function startInformer(t: TestContext, kubeConfig: KubeConfig, labelSelector?: string): Promise<Informer> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const informer = new ListWatch<V1Service>('/api/v1/services', new Watch(kubeConfig), () => core.listServiceForAllNamespaces({ labelSelector }), false, labelSelector);
  t.after(() => informer.stop());
  const log: string[] = [];
  const record = (verb: string) => (service: V1Service) => log.push(`${verb} ${service.metadata?.name} ${service.metadata?.resourceVersion}`);
  informer.on(ADD, record('add'));
  informer.on(UPDATE, record('update'));
  informer.on(DELETE, record('delete'));
  informer.on(ERROR, (error: unknown) => {
    const { code, statusCode, message } = error as { code?: number; statusCode?: number; message?: string };
    log.push(`error ${code ?? statusCode ?? message}`);
  });
  await informer.start();
  return { informer, log };
}

describe('ListWatch (client-node informer)', () => {
  it('lists, then follows adds, updates and deletes in order', async (t) => {
    const { server, kubeConfig } = await serve(t);
    server.apply('services', { metadata: { name: 'a' } });
    const { log, informer } = await startInformer(t, kubeConfig);
    assert.deepEqual(log, ['add a 1001']);
    await waitFor(() => server.openWatchCount('services') === 1, { message: 'the informer watches' });
    server.apply('services', { metadata: { name: 'b' } });
    server.apply('services', { metadata: { name: 'a', labels: { v: '2' } } });
    server.remove('services', 'default', 'b');
    await waitFor(() => log.length === 4, { message: `four events; got ${log.join(', ')}` });
    assert.deepEqual(log, ['add a 1001', 'add b 1002', 'update a 1003', 'delete b 1004']);
    assert.equal(informer.latestResourceVersion(), '1004');
    assert.deepEqual([server.requestCount('services', 'list'), server.requestCount('services', 'watch')], [1, 1]);
  });

  it('with a label selector sees objects enter and leave the selection', async (t) => {
    const { server, kubeConfig } = await serve(t);
    const { log } = await startInformer(t, kubeConfig, 'mesh=on');
    await waitFor(() => server.openWatchCount('services') === 1, { message: 'the informer watches' });
    server.apply('services', { metadata: { name: 'a', labels: { mesh: 'off' } } });
    server.apply('services', { metadata: { name: 'a', labels: { mesh: 'on' } } });
    server.apply('services', { metadata: { name: 'a', labels: { mesh: 'off' } } });
    await waitFor(() => log.length === 2, { message: `two events; got ${log.join(', ')}` });
    assert.deepEqual(log, ['add a 1002', 'delete a 1003']);
  });

  it('resumes from its resourceVersion after a clean end, without relisting', async (t) => {
    const { server, kubeConfig } = await serve(t);
    const { log } = await startInformer(t, kubeConfig);
    await waitFor(() => server.openWatchCount('services') === 1, { message: 'the informer watches' });
    server.apply('services', { metadata: { name: 'a' } });
    await waitFor(() => log.length === 1, { message: 'the add' });
    assert.equal(server.endWatches(), 1);
    await waitFor(() => server.openWatchCount('services') === 1 && server.requestCount('services', 'watch') === 2, { message: 'a new watch' });
    server.apply('services', { metadata: { name: 'b' } });
    await waitFor(() => log.length === 2, { message: 'the second add' });
    assert.deepEqual(log, ['add a 1001', 'add b 1002']);
    assert.equal(server.requestCount('services', 'list'), 1);
  });

  it('relists after a 410 and emits deletes for objects removed while it was not watching', async (t) => {
    const { server, kubeConfig } = await serve(t);
    server.apply('services', { metadata: { name: 'a' } });
    server.apply('services', { metadata: { name: 'b' } });
    const { log } = await startInformer(t, kubeConfig);
    await waitFor(() => server.openWatchCount('services') === 1, { message: 'the informer watches' });
    // Hold the informer's next watch so that it misses the changes, then make its resourceVersion too old.
    server.stall(true);
    server.endWatches();
    await waitFor(() => server.stalledRequestCount() === 1, { message: 'the re-watch is held' });
    server.remove('services', 'default', 'a');
    server.apply('services', { metadata: { name: 'c' } });
    server.apply('services', { metadata: { name: 'b', labels: { v: '2' } } });
    server.expireResourceVersions();
    server.stall(false);
    await waitFor(() => log.length === 5, { message: `the relist's events; got ${log.join(', ')}` });
    assert.deepEqual(log, ['add a 1001', 'add b 1002', 'delete a 1001', 'update b 1005', 'add c 1004']);
    assert.equal(server.requestCount('services', 'list'), 2);
  });

  it('stops for good when its watch connection breaks: it emits error and never reconnects', async (t) => {
    const { server, kubeConfig } = await serve(t);
    const { log } = await startInformer(t, kubeConfig);
    await waitFor(() => server.openWatchCount('services') === 1, { message: 'the informer watches' });
    assert.equal(server.dropWatches(), 1);
    await waitFor(() => log.length === 1, { message: 'the error' });
    assert.match(log[0]!, /^error /);
    server.apply('services', { metadata: { name: 'unseen' } });
    // A bounded look for something that must not happen: client-node's first reconnect delay is 1 s.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    assert.deepEqual([log.length, server.requestCount('services', 'watch'), server.requestCount('services', 'list'), server.openWatchCount()], [1, 1, 1, 0]);
  });

  it('emits the error of a failed LIST and stops (why meshlite supervises its informers)', async (t) => {
    const { server, kubeConfig } = await serve(t);
    server.failNext(1, { status: 500, resource: 'services' });
    const { log } = await startInformer(t, kubeConfig);
    assert.deepEqual(log, ['error 500']);
    assert.deepEqual([server.requestCount('services', 'list'), server.requestCount('services', 'watch')], [1, 0]);
  });
});
