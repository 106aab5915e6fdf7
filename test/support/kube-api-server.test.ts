// The test Kubernetes API server driven by the real client-node: LIST semantics, GET, Status errors, fault injection, stop/restart.

import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { CoreV1Api, DiscoveryV1Api, KubeConfig } from '@kubernetes/client-node';
import { type KubeApiServer, type KubeApiServerOptions, startKubeApiServer } from './kube-api-server.ts';
import { recordWatch } from './kube-watch-recorder.ts';
import { waitFor } from '../../lab/wait-for.ts';

async function serve(t: TestContext, options: KubeApiServerOptions = {}): Promise<{ server: KubeApiServer; core: CoreV1Api; kubeConfig: KubeConfig }> {
  const server = await startKubeApiServer(options);
  t.after(() => server.close());
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(server.kubeconfigPath);
  return { server, core: kubeConfig.makeApiClient(CoreV1Api), kubeConfig };
}

/** The HTTP code and the parsed Status body of a client-node call that must fail. */
async function statusOf(call: Promise<unknown>): Promise<{ code: number; status: Record<string, unknown> }> {
  try {
    await call;
  } catch (error) {
    const { code, body } = error as { code: number; body: unknown };
    return { code, status: (typeof body === 'string' ? JSON.parse(body) : body) as Record<string, unknown> };
  }
  throw new Error('the call succeeded');
}

async function raw(server: KubeApiServer, path: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; body: unknown }> {
  const response = await fetch(`${server.url}${path}`, { ...init, headers: { Authorization: `Bearer ${server.token}`, ...init.headers } });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text.startsWith('{') ? JSON.parse(text) : text };
}

const names = (list: { items: Array<{ metadata?: { name?: string } }> }) => list.items.map((item) => item.metadata?.name);
const expiredList = {
  kind: 'Status',
  apiVersion: 'v1',
  metadata: {},
  status: 'Failure',
  message: 'The resourceVersion for the provided list is too old.',
  reason: 'Expired',
  code: 410,
};

describe('LIST', () => {
  it('serves a ServiceList whose items carry no kind or apiVersion, as the real server does', async (t) => {
    const { server, core } = await serve(t);
    const stored = server.apply('services', { metadata: { name: 'web', namespace: 'shop' }, spec: { ports: [{ port: 80 }] } });
    const response = await raw(server, '/api/v1/services');
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'application/json');
    const { uid, creationTimestamp } = stored.metadata as { uid: string; creationTimestamp: string };
    assert.deepEqual(response.body, {
      kind: 'ServiceList',
      apiVersion: 'v1',
      metadata: { resourceVersion: '1001' },
      items: [{ metadata: { name: 'web', namespace: 'shop', uid, resourceVersion: '1001', creationTimestamp }, spec: { ports: [{ port: 80 }] } }],
    });
    const list = await core.listServiceForAllNamespaces();
    assert.deepEqual(names(list), ['web']);
    assert.equal(list.metadata?.resourceVersion, '1001');
  });

  it('reads most recent, any, not older than, and exact resourceVersions', async (t) => {
    const { server, core } = await serve(t);
    server.apply('services', { metadata: { name: 'a' } });
    server.apply('services', { metadata: { name: 'b' } });
    server.apply('services', { metadata: { name: 'a', labels: { v: '2' } } });
    server.remove('services', 'default', 'b');
    server.apply('services', { metadata: { name: 'c' } });
    const read = async (query: Record<string, string | number>) => {
      const list = await core.listServiceForAllNamespaces(query);
      return [list.metadata?.resourceVersion, ...list.items.map((item) => `${item.metadata?.name}@${item.metadata?.resourceVersion}`)];
    };
    const latest = ['1005', 'a@1003', 'c@1005'];
    assert.deepEqual(await read({}), latest);
    assert.deepEqual(await read({ resourceVersion: '0' }), latest);
    assert.deepEqual(await read({ resourceVersion: '0', limit: 1 }), latest, 'the watch cache ignores limit for "0"');
    assert.deepEqual(await read({ resourceVersion: '1002' }), latest, 'not older than');
    assert.deepEqual(await read({ resourceVersion: '1002', resourceVersionMatch: 'NotOlderThan' }), latest);
    assert.deepEqual(await read({ resourceVersion: '1002', resourceVersionMatch: 'Exact' }), ['1002', 'a@1001', 'b@1002']);
    assert.deepEqual(await read({ resourceVersion: '1002', limit: 10 }), ['1002', 'a@1001', 'b@1002'], 'a limit makes it exact');
    server.expireResourceVersions();
    assert.deepEqual(await statusOf(core.listServiceForAllNamespaces({ resourceVersion: '1002', resourceVersionMatch: 'Exact' })), { code: 410, status: expiredList });
    assert.deepEqual(await read({ resourceVersion: '1002' }), latest, 'not older than a compacted version is still served');
    assert.deepEqual(await read({ resourceVersion: '1005', resourceVersionMatch: 'Exact' }), latest, 'the compaction point itself is kept');
    assert.deepEqual(await statusOf(core.listServiceForAllNamespaces({ resourceVersion: '2000' })), {
      code: 504,
      status: {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'Timeout: Too large resource version: 2000, current: 1005',
        reason: 'Timeout',
        details: { causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }], retryAfterSeconds: 1 },
        code: 504,
      },
    });
  });

  it('serves a future resourceVersion once the store reaches it within the wait', async (t) => {
    const { server, core } = await serve(t, { tooLargeResourceVersionWaitMs: 10_000 });
    const pending = core.listPodForAllNamespaces({ resourceVersion: '1001' });
    await waitFor(() => server.requestCount('pods', 'list') === 1, { message: 'the list arrived' });
    server.apply('pods', { metadata: { name: 'p' } });
    const list = await pending;
    assert.equal(list.metadata?.resourceVersion, '1001');
    assert.deepEqual(names(list), ['p']);
  });

  it('pages with limit and continue through one consistent snapshot', async (t) => {
    const { server, core } = await serve(t);
    for (const name of ['a', 'b', 'c', 'd', 'e']) server.apply('services', { metadata: { name } });
    const first = await core.listServiceForAllNamespaces({ limit: 2 });
    assert.deepEqual([names(first), first.metadata?.resourceVersion, first.metadata?.remainingItemCount], [['a', 'b'], '1005', 3]);
    // Changes after the first page do not show in the next ones: they read the first page's snapshot.
    server.apply('services', { metadata: { name: 'c', labels: { changed: 'yes' } } });
    server.remove('services', 'default', 'd');
    server.apply('services', { metadata: { name: 'bb' } });
    const second = await core.listServiceForAllNamespaces({ limit: 2, _continue: first.metadata?._continue });
    assert.deepEqual([names(second), second.metadata?.resourceVersion, second.metadata?.remainingItemCount], [['c', 'd'], '1005', 1]);
    assert.equal(second.items[0]?.metadata?.labels, undefined);
    const third = await core.listServiceForAllNamespaces({ limit: 2, _continue: second.metadata?._continue });
    assert.deepEqual([names(third), third.metadata?._continue, third.metadata?.remainingItemCount], [['e'], undefined, undefined]);
  });

  it('answers an expired continue token with 410 and a token that goes on from the latest state', async (t) => {
    const { server, core } = await serve(t);
    for (const name of ['a', 'b', 'c']) server.apply('services', { metadata: { name } });
    const first = await core.listServiceForAllNamespaces({ limit: 1 });
    server.apply('services', { metadata: { name: 'b', labels: { changed: 'yes' } } });
    server.expireResourceVersions();
    const { code, status } = await statusOf(core.listServiceForAllNamespaces({ limit: 1, _continue: first.metadata?._continue }));
    assert.equal(code, 410);
    assert.equal(status.reason, 'Expired');
    assert.match(String(status.message), /^The provided continue parameter is too old/);
    const token = (status.metadata as { continue?: string }).continue;
    assert.equal(typeof token, 'string');
    const rest = await core.listServiceForAllNamespaces({ limit: 5, _continue: token });
    assert.deepEqual([names(rest), rest.metadata?.resourceVersion, rest.items[0]?.metadata?.labels], [['b', 'c'], '1004', { changed: 'yes' }]);
  });

  it('rejects what the real server rejects, with its codes and messages', async (t) => {
    const { server, core } = await serve(t);
    assert.deepEqual(await statusOf(core.listServiceForAllNamespaces({ resourceVersionMatch: 'Exact' })), {
      code: 422,
      status: {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided',
        reason: 'Invalid',
        details: {
          group: 'meta.k8s.io',
          kind: 'ListOptions',
          causes: [{ reason: 'FieldValueForbidden', message: 'Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided', field: 'resourceVersionMatch' }],
        },
        code: 422,
      },
    });
    const messageOf = async (call: Promise<unknown>) => {
      const { code, status } = await statusOf(call);
      return `${code} ${status.reason}: ${status.message}`;
    };
    assert.equal(await messageOf(core.listServiceForAllNamespaces({ resourceVersion: '0', resourceVersionMatch: 'Exact' })), '422 Invalid: ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0"');
    assert.equal(await messageOf(core.listServiceForAllNamespaces({ _continue: 'x', resourceVersion: '1000' })), '400 BadRequest: specifying resource version is not allowed when using continue');
    assert.match(await messageOf(core.listServiceForAllNamespaces({ _continue: 'not-a-token' })), /^400 BadRequest: invalid continue token: /);
    assert.equal(await messageOf(core.listServiceForAllNamespaces({ fieldSelector: 'spec.foo=x' })), '400 BadRequest: field label not supported: spec.foo');
    assert.match(await messageOf(core.listPodForAllNamespaces({ labelSelector: 'app in (' })), /^400 BadRequest: unable to parse requirement/);
    assert.equal(await messageOf(core.listPodForAllNamespaces({ resourceVersion: 'abc' })), '400 BadRequest: invalid resource version: "abc"');
    assert.equal((await raw(server, '/api/v1/services', { method: 'POST', body: '{}' })).status, 405);
  });

  it('filters by namespace, labels and fields, for every resource', async (t) => {
    const { server, core, kubeConfig } = await serve(t);
    server.apply('namespaces', { metadata: { name: 'shop' } });
    server.apply('services', { metadata: { name: 'web', namespace: 'shop', labels: { app: 'web', tier: 'front' } } });
    server.apply('services', { metadata: { name: 'db', namespace: 'shop', labels: { app: 'db', tier: 'back' } } });
    server.apply('services', { metadata: { name: 'web', namespace: 'other', labels: { app: 'web' } } });
    server.apply('pods', { metadata: { name: 'p1', namespace: 'shop' }, spec: { nodeName: 'node-a' } });
    server.apply('pods', { metadata: { name: 'p2', namespace: 'shop' }, spec: { nodeName: 'node-b' } });
    server.apply('endpointslices', { metadata: { name: 'web-x1', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } }, addressType: 'IPv4', endpoints: [] });
    server.apply('endpointslices', { metadata: { name: 'db-x1', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'db' } }, addressType: 'IPv4', endpoints: [] });
    assert.deepEqual(names(await core.listNamespacedService({ namespace: 'shop' })), ['db', 'web']);
    assert.deepEqual(names(await core.listServiceForAllNamespaces({ labelSelector: 'app in (web,db),tier!=back' })), ['web', 'web']);
    assert.deepEqual(names(await core.listServiceForAllNamespaces({ fieldSelector: 'metadata.namespace!=shop' })), ['web']);
    assert.deepEqual(names(await core.listPodForAllNamespaces({ fieldSelector: 'spec.nodeName=node-b' })), ['p2']);
    assert.deepEqual(names(await core.listNamespace()), ['shop']);
    const discovery = kubeConfig.makeApiClient(DiscoveryV1Api);
    const slices = await discovery.listEndpointSliceForAllNamespaces({ labelSelector: 'kubernetes.io/service-name=web' });
    assert.deepEqual(names(slices), ['web-x1']);
    assert.deepEqual(((await raw(server, '/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices')).body as { kind: string }).kind, 'EndpointSliceList');
  });
});

describe('GET', () => {
  it('returns one object with kind and apiVersion, or a NotFound Status', async (t) => {
    const { server, core, kubeConfig } = await serve(t);
    server.apply('services', { metadata: { name: 'web', namespace: 'shop' } });
    const service = await raw(server, '/api/v1/namespaces/shop/services/web');
    assert.deepEqual([(service.body as { kind: string }).kind, (service.body as { apiVersion: string }).apiVersion], ['Service', 'v1']);
    assert.equal((await core.readNamespacedService({ name: 'web', namespace: 'shop' })).metadata?.resourceVersion, '1001');
    assert.deepEqual(await statusOf(core.readNamespacedService({ name: 'web', namespace: 'other' })), {
      code: 404,
      status: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'services "web" not found', reason: 'NotFound', details: { name: 'web', kind: 'services' }, code: 404 },
    });
    const discovery = kubeConfig.makeApiClient(DiscoveryV1Api);
    const missing = await statusOf(discovery.readNamespacedEndpointSlice({ name: 'x', namespace: 'shop' }));
    assert.deepEqual([missing.code, missing.status.message, missing.status.details], [404, 'endpointslices.discovery.k8s.io "x" not found', { name: 'x', group: 'discovery.k8s.io', kind: 'endpointslices' }]);
    server.apply('namespaces', { metadata: { name: 'shop' } });
    assert.equal((await core.readNamespace({ name: 'shop' })).status?.phase, 'Active');
  });

  it('answers discovery, demands the token, and answers unknown paths with a Status', async (t) => {
    const { server } = await serve(t);
    const version = await fetch(`${server.url}/version`);
    assert.equal(((await version.json()) as { major: string }).major, '1');
    assert.deepEqual(((await raw(server, '/api')).body as { versions: string[] }).versions, ['v1']);
    assert.equal(((await raw(server, '/apis')).body as { groups: Array<{ name: string }> }).groups[0]?.name, 'discovery.k8s.io');
    assert.deepEqual(
      ((await raw(server, '/apis/discovery.k8s.io/v1')).body as { resources: Array<{ name: string }> }).resources.map((r) => r.name),
      ['endpointslices'],
    );
    const denied = await raw(server, '/api/v1/pods', { headers: { Authorization: 'Bearer wrong' } });
    assert.deepEqual([denied.status, denied.body], [401, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 }]);
    const unknown = await raw(server, '/api/v1/configmaps');
    assert.deepEqual([unknown.status, (unknown.body as { reason: string }).reason], [404, 'NotFound']);
  });
});

describe('fault injection', () => {
  it('failNext answers Statuses of the given code for the given resource, then recovers', async (t) => {
    const { server, core } = await serve(t);
    server.failNext(2, { status: 503, resource: 'services' });
    assert.deepEqual(names(await core.listPodForAllNamespaces()), [], 'other resources are unaffected');
    const failure = await statusOf(core.listServiceForAllNamespaces());
    assert.deepEqual([failure.code, failure.status.reason, failure.status.code], [503, 'ServiceUnavailable', 503]);
    assert.equal((await statusOf(core.listServiceForAllNamespaces())).code, 503);
    assert.deepEqual(names(await core.listServiceForAllNamespaces()), []);
    server.failNext(1);
    assert.equal((await statusOf(core.listNamespace())).code, 500);
    assert.deepEqual([server.requestCount('services', 'list'), server.requestCount('namespaces'), server.requestCount('pods', 'list')], [3, 1, 1]);
  });

  it('stall holds requests unanswered until released', async (t) => {
    const { server, core } = await serve(t);
    server.stall(true);
    let answered = false;
    const pending = core.listServiceForAllNamespaces().then((list) => {
      answered = true;
      return list;
    });
    await waitFor(() => server.stalledRequestCount() === 1, { message: 'the request is held' });
    server.apply('services', { metadata: { name: 'late' } });
    assert.equal(answered, false);
    server.stall(false);
    const list = await pending;
    assert.deepEqual([names(list), list.metadata?.resourceVersion], [['late'], '1001'], 'a released request reads the state at its release');
  });

  it('stop makes the API server unreachable; restart listens on the same port with the same store', async (t) => {
    const { server, core, kubeConfig } = await serve(t);
    server.apply('services', { metadata: { name: 'kept' } });
    const port = server.port;
    const watching = await recordWatch(kubeConfig, '/api/v1/services', { resourceVersion: '1001' });
    t.after(() => watching.abort());
    await waitFor(() => server.openWatchCount() === 1, { message: 'the watch is live' });
    await server.stop();
    assert.ok((await watching.done) instanceof Error, 'an open watch breaks');
    assert.equal(server.openWatchCount(), 0);
    await assert.rejects(core.listServiceForAllNamespaces(), (error: Error) => (error.cause as { code?: string }).code === 'ECONNREFUSED');
    server.apply('services', { metadata: { name: 'while-down' } });
    await server.restart();
    assert.equal(server.port, port);
    const list = await core.listServiceForAllNamespaces();
    assert.deepEqual([names(list), list.metadata?.resourceVersion], [['kept', 'while-down'], '1002']);
  });
});
