// Odd and malformed API objects reach the running agent: each bad one is skipped with ML_KUBE_OBJECT_INVALID, and
// everything else keeps working (a slice before its Service, a headless Service, nil conditions, a huge slice).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runAgentExpectingFailure, startAgent } from '../support/agent-process.ts';
import { makeEchoClient, startGrpcServer, unary } from '../../lab/grpc-peers.ts';
import { endpointSliceObject, grpcServiceObject } from '../support/kube-api-objects.ts';
import { startKubeApiServer } from '../support/kube-api-server.ts';
import { waitFor } from '../../lab/wait-for.ts';

test('bad objects are skipped with a logged code; good ones, and ones that only look odd, keep working', async () => {
  const api = await startKubeApiServer();
  const backend = await startGrpcServer({ id: 'good' });
  const agent = await startAgent(['--discovery', 'kubernetes', '--kubeconfig', api.kubeconfigPath, '--node-name', 'node-a']);
  const clients: Array<{ close(): void }> = [];
  const call = async (service: string, port = 80): Promise<string> => {
    const client = makeEchoClient(agent.listen, { 'grpc.default_authority': `${service}.default.svc.cluster.local:${port}` });
    clients.push(client);
    return (await unary(client, Buffer.from(service))).message.toString();
  };
  try {
    // Bad: a port out of range; an FQDN slice; a slice whose endpoints field is not a list; garbage everywhere.
    api.apply('services', { metadata: { name: 'bad-port', namespace: 'default' }, spec: { ports: [{ name: 'grpc', port: 70000 }] } });
    api.apply('endpointslices', { ...endpointSliceObject('fqdn-x', 'good', backend.port, []), addressType: 'FQDN' });
    api.apply('endpointslices', { ...endpointSliceObject('garbage-x', 'good', backend.port, []), endpoints: 'none' });
    api.apply('services', { metadata: { name: 'weird', namespace: 'default' }, spec: 42 });
    // Odd but valid: the slice arrives before its Service; nil conditions mean ready; a headless Service.
    const slice = endpointSliceObject('good-abcde', 'good', backend.port, [{ ip: '127.0.0.1' }]);
    delete (slice.endpoints as Array<Record<string, unknown>>)[0].conditions;
    api.apply('endpointslices', slice);
    api.apply('services', grpcServiceObject('good'));
    api.apply('services', { ...grpcServiceObject('headless'), spec: { ...(grpcServiceObject('headless').spec as object), clusterIP: 'None', clusterIPs: ['None'] } });
    api.apply('endpointslices', endpointSliceObject('headless-abcde', 'headless', backend.port, [{ ip: '127.0.0.1' }]));
    // A huge slice (1000 endpoints, most not ready) for a service whose one ready endpoint is the backend.
    const huge = Array.from({ length: 1000 }, (_, i) => ({ ip: `10.${(i >> 8) & 255}.${i & 255}.7`, ready: false, serving: false }));
    api.apply('services', grpcServiceObject('huge'));
    api.apply('endpointslices', endpointSliceObject('huge-abcde', 'huge', backend.port, [...huge, { ip: '127.0.0.1' }]));

    await waitFor(async () => (await call('good').catch(() => '')) === 'good', { message: 'good service works' });
    assert.equal(await call('headless'), 'headless');
    assert.equal(await call('huge'), 'huge');
    await waitFor(() => agent.logs.filter((l) => l.code === 'ML_KUBE_OBJECT_INVALID').length >= 4, { message: 'four objects skipped' });
    const skipped = agent.logs.filter((l) => l.code === 'ML_KUBE_OBJECT_INVALID').map((l) => String(l.name)).sort();
    assert.deepEqual(skipped, ['bad-port', 'fqdn-x', 'garbage-x', 'weird']);
    // The Service that could not be read is unknown to the agent: UNAVAILABLE, as for any unknown target.
    await assert.rejects(call('bad-port'), /UNAVAILABLE|14/);
    assert.equal(agent.child.exitCode, null, 'still running');
  } finally {
    for (const client of clients) client.close();
    assert.equal(await agent.stop(), 0);
    await backend.close();
    await api.close();
  }
});

test('a kubeconfig that cannot be loaded stops the agent at start with ML_KUBE_CONFIG_INVALID, saying which', async () => {
  const missing = await runAgentExpectingFailure(['--discovery', 'kubernetes', '--kubeconfig', '/nonexistent/kubeconfig', '--node-name', 'node-a']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /cannot load the Kubernetes client configuration from \/nonexistent\/kubeconfig/);
  // Outside a pod the service account is not there: the message says what to do instead.
  const inCluster = await runAgentExpectingFailure(['--discovery', 'kubernetes', '--node-name', 'node-a']);
  assert.equal(inCluster.code, 1);
  assert.match(inCluster.stderr, /--kubeconfig/);
});
