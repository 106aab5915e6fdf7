// The agent's own Kubernetes client: in-cluster and kubeconfig loading, TLS (server CA, client certificate), bearer
// tokens re-read from their file after a 401, and what it refuses to load, against the test API server over HTTPS.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createKubeApi, loadKubeConfig } from '../../agent/discovery/kube-api.ts';
import { grpcServiceObject } from '../support/kube-api-objects.ts';
import { type KubeApiServer, startKubeApiServer } from '../support/kube-api-server.ts';
import { selfSignedCertificate } from '../support/self-signed-certificate.ts';

const SERVER_CERT = selfSignedCertificate('meshlite-test-api', ['127.0.0.1']);
const identity = (raw: unknown): string => (raw as { metadata: { name: string } }).metadata.name;

describe('Kubernetes client configuration and requests', () => {
  let api: KubeApiServer;
  let dir: string;
  before(async () => {
    api = await startKubeApiServer({ tls: SERVER_CERT, token: 'the-right-token' });
    api.apply('services', grpcServiceObject('a'));
    dir = mkdtempSync(join(tmpdir(), 'meshlite-kube-client-'));
  });
  after(async () => {
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function serviceAccount(name: string, token: string): string {
    const account = join(dir, name);
    mkdirSync(account);
    writeFileSync(join(account, 'token'), `${token}\n`);
    writeFileSync(join(account, 'ca.crt'), SERVER_CERT.cert);
    writeFileSync(join(account, 'namespace'), 'meshlite-system');
    return account;
  }

  it('in-cluster: the kubelet\'s variables and the service account; the server verified through ca.crt', async () => {
    const account = serviceAccount('in-cluster', 'the-right-token');
    const config = loadKubeConfig(null, { env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(api.port) }, serviceAccountDir: account });
    assert.equal(config.server, `https://127.0.0.1:${api.port}`);
    assert.equal(config.namespace, 'meshlite-system');
    const listed = await createKubeApi(config).list('/api/v1/services', {}, identity, AbortSignal.timeout(5000));
    assert.deepEqual(listed.items, ['a']);
    const v6 = loadKubeConfig(null, { env: { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, serviceAccountDir: account });
    assert.equal(v6.server, 'https://[fd00::1]:443');
  });

  it('in-cluster: a rotated token is read again after the API answers 401', async () => {
    const account = serviceAccount('rotating', 'an-expired-token');
    const client = createKubeApi(loadKubeConfig(null, { env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(api.port) }, serviceAccountDir: account }));
    await assert.rejects(client.get('/api/v1/namespaces/default/services/a', AbortSignal.timeout(5000)), { name: 'KubeApiError', statusCode: 401 });
    // The kubelet replaces the file with the new token.
    writeFileSync(join(account, 'token'), 'the-right-token\n');
    assert.equal(identity(await client.get('/api/v1/namespaces/default/services/a', AbortSignal.timeout(5000))), 'a');
  });

  it('in-cluster: outside a pod, or without the service account, it says what is missing with ML_KUBE_CONFIG_INVALID', () => {
    assert.throws(() => loadKubeConfig(null, { env: {}, serviceAccountDir: join(dir, 'none') }), {
      code: 'ML_KUBE_CONFIG_INVALID',
      message: 'not running in a cluster (KUBERNETES_SERVICE_HOST is unset): pass --kubeconfig PATH',
    });
    assert.throws(() => loadKubeConfig(null, { env: { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, serviceAccountDir: join(dir, 'none') }), {
      code: 'ML_KUBE_CONFIG_INVALID',
      message: /^cannot load the Kubernetes client configuration from the in-cluster service account: ENOENT/,
    });
  });

  it('kubeconfig: files named relative to the kubeconfig (certificate-authority, tokenFile), the current context\'s cluster and user', async () => {
    const home = join(dir, 'home');
    mkdirSync(join(home, 'certs'), { recursive: true });
    writeFileSync(join(home, 'certs', 'ca.pem'), SERVER_CERT.cert);
    writeFileSync(join(home, 'token'), 'the-right-token');
    const path = join(home, 'config');
    writeFileSync(
      path,
      [
        'apiVersion: v1',
        'kind: Config',
        'current-context: right',
        'clusters:',
        `- name: other\n  cluster:\n    server: https://192.0.2.1:6443`,
        `- name: test\n  cluster:\n    server: https://127.0.0.1:${api.port}/\n    certificate-authority: certs/ca.pem`,
        'users:',
        '- name: wrong\n  user:\n    token: wrong',
        '- name: right\n  user:\n    token: ignored-when-a-token-file-is-set\n    tokenFile: token',
        'contexts:',
        '- name: wrong\n  context:\n    cluster: other\n    user: wrong',
        '- name: right\n  context:\n    cluster: test\n    user: right\n    namespace: team-a',
        '',
      ].join('\n'),
    );
    const config = loadKubeConfig(path);
    assert.equal(config.server, `https://127.0.0.1:${api.port}`);
    assert.equal(config.namespace, 'team-a');
    const listed = await createKubeApi(config).list('/api/v1/services', {}, identity, AbortSignal.timeout(5000));
    assert.deepEqual(listed.items, ['a']);
  });

  it('kubeconfig: what meshlite does not implement is refused by name, not ignored', () => {
    const write = (name: string, user: string): string => {
      const path = join(dir, name);
      writeFileSync(
        path,
        `current-context: c\nclusters:\n- name: k\n  cluster:\n    server: https://127.0.0.1:6443\nusers:\n- name: u\n  user:\n${user}\ncontexts:\n- name: c\n  context:\n    cluster: k\n    user: u\n`,
      );
      return path;
    };
    const exec = write('exec.yaml', '    exec:\n      apiVersion: client.authentication.k8s.io/v1alpha1\n      command: aws');
    assert.throws(() => loadKubeConfig(exec), {
      code: 'ML_KUBE_CONFIG_INVALID',
      message: `cannot load the Kubernetes client configuration from ${exec}: user "u".exec: apiVersion "client.authentication.k8s.io/v1alpha1" is not one of client.authentication.k8s.io/v1, client.authentication.k8s.io/v1beta1`,
    });
    const provider = write('provider.yaml', '    auth-provider:\n      name: oidc');
    assert.throws(() => loadKubeConfig(provider), { code: 'ML_KUBE_CONFIG_INVALID', message: /auth-provider is not supported/ });
    const half = write('half.yaml', '    client-certificate-data: AAAA');
    assert.throws(() => loadKubeConfig(half), { code: 'ML_KUBE_CONFIG_INVALID', message: /needs both the certificate and its key/ });
    const noContext = join(dir, 'no-context.yaml');
    writeFileSync(noContext, 'clusters: []\n');
    assert.throws(() => loadKubeConfig(noContext), { code: 'ML_KUBE_CONFIG_INVALID', message: /it sets no current-context$/ });
  });

  it('kubeconfig: an exec credential plugin (relative to the kubeconfig, its args and env) is run for the first request, again after a 401, and its token reused', async () => {
    const home = join(dir, 'exec-home');
    mkdirSync(join(home, 'bin'), { recursive: true });
    const runs = join(home, 'runs');
    writeFileSync(runs, '');
    // Prints the token named by its environment, and what it was asked (KUBERNETES_EXEC_INFO) into the runs file.
    writeFileSync(
      join(home, 'bin', 'token-plugin'),
      [
        '#!/bin/sh',
        `echo "$1 $KUBERNETES_EXEC_INFO" >> ${runs}`,
        `printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"}}' "$(cat ${join(home, 'current')})"`,
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    writeFileSync(join(home, 'current'), 'a-stale-token');
    const path = join(home, 'config');
    writeFileSync(
      path,
      `current-context: c\nclusters:\n- name: k\n  cluster:\n    server: https://127.0.0.1:${api.port}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: ./bin/token-plugin\n      args: [--cluster=test]\n      interactiveMode: Never\ncontexts:\n- name: c\n  context:\n    cluster: k\n    user: u\n`,
    );
    const client = createKubeApi(loadKubeConfig(path));
    const get = (): Promise<unknown> => client.get('/api/v1/namespaces/default/services/a', AbortSignal.timeout(5000));
    await assert.rejects(get(), { name: 'KubeApiError', statusCode: 401 });
    writeFileSync(join(home, 'current'), 'the-right-token');
    assert.equal(identity(await get()), 'a');
    assert.equal(identity(await get()), 'a');
    const info = '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}';
    assert.equal(readFileSync(runs, 'utf8'), `--cluster=test ${info}\n`.repeat(2), 'run for the first request, again after the 401, then its token reused');
  });

  it('kubeconfig: a client certificate (-data) authenticates over TLS, and the server is verified by certificate-authority-data', async () => {
    const client = selfSignedCertificate('system:node:node-a', ['127.0.0.1']);
    const seen: Array<string | undefined> = [];
    const server = createServer({ ...SERVER_CERT, ca: client.cert, requestCert: true, rejectUnauthorized: true }, (request, response) => {
      const peer = (request.socket as import('node:tls').TLSSocket).getPeerCertificate();
      seen.push(peer.subject?.CN as string | undefined);
      response.writeHead(200, { 'Content-Type': 'application/json' }).end('{"gitVersion":"v1.33.0"}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const path = join(dir, 'client-cert.yaml');
      const b64 = (text: string): string => Buffer.from(text).toString('base64');
      writeFileSync(
        path,
        [
          'current-context: c',
          'clusters:',
          `- name: k\n  cluster:\n    server: https://127.0.0.1:${(server.address() as AddressInfo).port}\n    certificate-authority-data: ${b64(SERVER_CERT.cert)}`,
          'users:',
          `- name: u\n  user:\n    client-certificate-data: ${b64(client.cert)}\n    client-key-data: ${b64(client.key)}`,
          'contexts:',
          '- name: c\n  context:\n    cluster: k\n    user: u',
          '',
        ].join('\n'),
      );
      const answer = await createKubeApi(loadKubeConfig(path)).get('/version', AbortSignal.timeout(5000));
      assert.deepEqual(answer, { gitVersion: 'v1.33.0' });
      assert.deepEqual(seen, ['system:node:node-a']);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('an unverifiable server certificate fails the request; insecure-skip-tls-verify: true accepts it', async () => {
    const path = (skip: boolean): string => {
      const file = join(dir, `skip-${skip}.yaml`);
      const cluster = `    server: https://127.0.0.1:${api.port}${skip ? '\n    insecure-skip-tls-verify: true' : ''}`;
      writeFileSync(file, `current-context: c\nclusters:\n- name: k\n  cluster:\n${cluster}\nusers:\n- name: u\n  user:\n    token: the-right-token\ncontexts:\n- name: c\n  context:\n    cluster: k\n    user: u\n`);
      return file;
    };
    await assert.rejects(createKubeApi(loadKubeConfig(path(false))).get('/version', AbortSignal.timeout(5000)), (error: Error) => {
      assert.equal((error.cause as { code?: string }).code, 'DEPTH_ZERO_SELF_SIGNED_CERT');
      return true;
    });
    const version = await createKubeApi(loadKubeConfig(path(true))).get('/version', AbortSignal.timeout(5000));
    assert.equal((version as { gitVersion: string }).gitVersion, 'v1.33.0-meshlite-test');
  });
});
