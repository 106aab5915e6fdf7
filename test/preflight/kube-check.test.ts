// The Kubernetes preflight against the test API server: reachable, then a SelfSubjectAccessReview per verb and resource.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { createKubeApi, loadKubeConfig } from '../../agent/discovery/kube-api.ts';
import { checkKubernetes, REQUIRED_ACCESS } from '../../agent/preflight/kube-check.ts';
import { kubeAccessOf } from '../../agent/preflight/node-access.ts';
import { type KubeApiServer, startKubeApiServer } from '../support/kube-api-server.ts';

const APPLY_RBAC =
  "apply manifests/rbac.yaml (ClusterRole meshlite: get, list, watch on services, pods, namespaces and discovery.k8s.io endpointslices) and check that its ClusterRoleBinding names the agent's ServiceAccount";

describe('checkKubernetes', () => {
  let server: KubeApiServer;
  before(async () => {
    server = await startKubeApiServer();
  });
  after(async () => {
    await server.close();
  });

  it('reports the server reachable and every permission of the ClusterRole, one review per verb and resource', async () => {
    const lines = await checkKubernetes({ connect: kubeAccessOf({ kubeconfig: server.kubeconfigPath }), timeoutMs: 5000 });
    assert.deepEqual(lines, [
      { status: 'ok', what: `Kubernetes API ${server.url}: reachable, v1.33.0-meshlite-test` },
      { status: 'ok', what: 'RBAC services: get, list, watch' },
      { status: 'ok', what: 'RBAC pods: get, list, watch' },
      { status: 'ok', what: 'RBAC namespaces: get, list, watch' },
      { status: 'ok', what: 'RBAC endpointslices.discovery.k8s.io: get, list, watch' },
    ]);
    assert.equal(server.accessReviewCount, 12);
  });

  it('names the verb and resource a denied review was about', async () => {
    const denying = await startKubeApiServer();
    try {
      denying.denyAccess({ verb: 'watch', resource: 'endpointslices', group: 'discovery.k8s.io' });
      denying.denyAccess({ verb: 'list', resource: 'pods' });
      const lines = await checkKubernetes({ connect: kubeAccessOf({ kubeconfig: denying.kubeconfigPath }), timeoutMs: 5000 });
      assert.deepEqual(lines.slice(1), [
        { status: 'ok', what: 'RBAC services: get, list, watch' },
        { status: 'fail', what: 'RBAC pods', problem: 'the agent may not list pods in every namespace', fix: APPLY_RBAC },
        { status: 'ok', what: 'RBAC namespaces: get, list, watch' },
        {
          status: 'fail',
          what: 'RBAC endpointslices.discovery.k8s.io',
          problem: 'the agent may not watch endpointslices.discovery.k8s.io in every namespace',
          fix: APPLY_RBAC,
        },
      ]);
    } finally {
      await denying.close();
    }
  });

  it('is one line when the API server is unreachable, and one when the client configuration cannot be loaded', async () => {
    const gone = await startKubeApiServer();
    await gone.stop();
    try {
      assert.deepEqual(await checkKubernetes({ connect: kubeAccessOf({ kubeconfig: gone.kubeconfigPath }), timeoutMs: 5000 }), [
        {
          status: 'fail',
          what: `Kubernetes API ${gone.url}`,
          problem: `unreachable (connect ECONNREFUSED 127.0.0.1:${gone.port})`,
          fix: "check that this node reaches the API server (its address, a firewall, the API server's health), then run the check again",
        },
      ]);
    } finally {
      await gone.close();
    }
    const [line] = await checkKubernetes({ connect: kubeAccessOf({ kubeconfig: '/nonexistent/kubeconfig' }), timeoutMs: 5000 });
    assert.equal(line.status === 'fail' && line.what, 'Kubernetes client configuration');
    assert.match(line.status === 'fail' ? line.problem : '', /^cannot load the Kubernetes client configuration from \/nonexistent\/kubeconfig: /);
  });

  it('gives up on an API server that does not answer within the timeout', async () => {
    server.stall(true);
    try {
      const lines = await checkKubernetes({ connect: kubeAccessOf({ kubeconfig: server.kubeconfigPath }), timeoutMs: 200 });
      assert.deepEqual(lines.map((line) => (line.status === 'fail' ? line.problem : line.what)), ['unreachable (no answer in time)']);
    } finally {
      server.stall(false);
    }
  });

  it('reviews exactly what manifests/rbac.yaml grants the agent', () => {
    const role = parseAllDocuments(readFileSync(new URL('../../manifests/rbac.yaml', import.meta.url), 'utf8'))
      .map((document) => document.toJSON() as { kind: string; rules?: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }> })
      .find((document) => document.kind === 'ClusterRole');
    const granted = (role?.rules ?? []).flatMap((rule) => rule.apiGroups.flatMap((group) => rule.resources.map((resource) => ({ group, resource, verbs: rule.verbs }))));
    assert.deepEqual(granted, REQUIRED_ACCESS);
  });

  it('posts through the agent\'s client: a review answered 201 by the API server', async () => {
    const api = createKubeApi(loadKubeConfig(server.kubeconfigPath));
    const answer = await api.post(
      '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
      { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: { verb: 'get', resource: 'pods' } } },
      AbortSignal.timeout(5000),
    );
    assert.deepEqual((answer as { status: unknown }).status, {
      allowed: true,
      reason: 'RBAC: allowed by ClusterRoleBinding "meshlite-test" of ClusterRole "meshlite-test" to User "meshlite-test"',
    });
    await assert.rejects(api.post('/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', { kind: 'SelfSubjectAccessReview', spec: {} }, AbortSignal.timeout(5000)), {
      name: 'KubeApiError',
      statusCode: 422,
    });
  });
});
