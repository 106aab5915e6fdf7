// The test Kubernetes API server run inside a node's network namespace (the agent reaches it on the node's
// loopback, as a real agent reaches its API server), driven from the test through a unix socket in the run's dir.

import { request } from 'node:http';
import { createServer } from 'node:http';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type KubeObject, type ResourceName, startKubeApiServer } from '../../support/kube-api-server.ts';
import { selfSignedCertificate } from '../../support/self-signed-certificate.ts';
import type { E2eRun } from '../../../lab/e2e-harness.ts';
import type { E2eNode } from '../../../lab/node.ts';

const SELF = fileURLToPath(import.meta.url);

/** What a pod needs to reach the API in-cluster: the kubelet's KUBERNETES_SERVICE_* and the service account's files. */
export interface InClusterAccess {
  host: string;
  port: number;
  /** PEM of the CA that signed the server's certificate: the service account's ca.crt. */
  caCert: string;
  token: string;
}

export interface NamespacedKubeApi {
  /** The kubeconfig the fixture wrote; its server is 127.0.0.1:PORT inside the node namespace. */
  kubeconfigPath: string;
  /** Set when started with `tls`: the server speaks HTTPS, as a pod's in-cluster client demands. */
  inCluster: InClusterAccess | undefined;
  apply(resource: ResourceName, object: KubeObject): Promise<void>;
  remove(resource: ResourceName, namespace: string, name: string): Promise<void>;
  /** The API server goes away (connections reset, the port closed) and comes back on the same port with its store. */
  stop(): Promise<void>;
  restart(): Promise<void>;
}

/**
 * Starts the fixture in `node`'s namespace; it ends with the run's cleanup like every process of the run. With
 * `tls`, it serves HTTPS with a certificate made for the run (key and certificate beside the control socket).
 */
export async function startKubeApiInNamespace(run: E2eRun, node: E2eNode, controlSocket: string, options: { tls?: boolean } = {}): Promise<NamespacedKubeApi> {
  let caCert: string | undefined;
  const args = [SELF, controlSocket];
  if (options.tls === true) {
    const pair = selfSignedCertificate('meshlite-test-apiserver', ['127.0.0.1', '::1']);
    caCert = pair.cert;
    const keyFile = join(dirname(controlSocket), 'kube-api.key');
    const certFile = join(dirname(controlSocket), 'kube-api.crt');
    writeFileSync(keyFile, pair.key, { mode: 0o600 });
    writeFileSync(certFile, pair.cert);
    args.push(keyFile, certFile);
  }
  const server = run.spawn(node.ns, process.execPath, args);
  const line = await server.line((l) => l.startsWith('kubeconfig '), 15_000);
  const [, kubeconfigPath, port, token] = line.split(' ');
  const control = (path: string, body: unknown): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = request({ socketPath: controlSocket, path, method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`control ${path}: ${res.statusCode} ${text}`))));
      });
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });
  return {
    kubeconfigPath,
    inCluster: caCert === undefined ? undefined : { host: '127.0.0.1', port: Number(port), caCert, token },
    apply: (resource, object) => control('/apply', { resource, object }),
    remove: (resource, namespace, name) => control('/remove', { resource, namespace, name }),
    stop: () => control('/stop', {}),
    restart: () => control('/restart', {}),
  };
}

/** The process side: the fixture on the namespace's loopback, and the control socket. */
async function serve(controlSocket: string, keyFile: string | undefined, certFile: string | undefined): Promise<void> {
  const tls = keyFile === undefined || certFile === undefined ? undefined : { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8') };
  const api = await startKubeApiServer({ tls });
  rmSync(controlSocket, { force: true });
  const control = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8').on('data', (chunk: string) => {
      text += chunk;
    });
    req.on('end', async () => {
      try {
        const body = JSON.parse(text) as { resource: ResourceName; object?: KubeObject; namespace?: string; name?: string };
        if (req.url === '/apply' && body.object !== undefined) api.apply(body.resource, body.object);
        else if (req.url === '/remove') api.remove(body.resource, body.namespace ?? '', body.name ?? '');
        else if (req.url === '/stop') await api.stop();
        else if (req.url === '/restart') await api.restart();
        else throw new Error(`unknown control ${req.url}`);
        res.writeHead(200).end();
      } catch (error) {
        res.writeHead(400).end((error as Error).message);
      }
    });
  });
  control.listen(controlSocket, () => process.stdout.write(`kubeconfig ${api.kubeconfigPath} ${api.port} ${api.token}\n`));
  process.once('SIGTERM', () => {
    control.close();
    void api.close().then(() => process.exit(0));
  });
}

if (import.meta.main) await serve(process.argv[2], process.argv[3], process.argv[4]);
