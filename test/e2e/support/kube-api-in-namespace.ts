// The test Kubernetes API server run inside a node's network namespace (the agent reaches it on the node's
// loopback, as a real agent reaches its API server), driven from the test through a unix socket in the run's dir.

import { request } from 'node:http';
import { createServer } from 'node:http';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type KubeObject, type ResourceName, startKubeApiServer } from '../../support/kube-api-server.ts';
import type { E2eRun } from '../../../lab/e2e-harness.ts';
import type { E2eNode } from '../../../lab/node.ts';

const SELF = fileURLToPath(import.meta.url);

export interface NamespacedKubeApi {
  /** The kubeconfig the fixture wrote; its server is 127.0.0.1:PORT inside the node namespace. */
  kubeconfigPath: string;
  apply(resource: ResourceName, object: KubeObject): Promise<void>;
  remove(resource: ResourceName, namespace: string, name: string): Promise<void>;
}

/** Starts the fixture in `node`'s namespace; it ends with the run's cleanup like every process of the run. */
export async function startKubeApiInNamespace(run: E2eRun, node: E2eNode, controlSocket: string): Promise<NamespacedKubeApi> {
  const server = run.spawn(node.ns, process.execPath, [SELF, controlSocket]);
  const line = await server.line((l) => l.startsWith('kubeconfig '), 15_000);
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
    kubeconfigPath: line.slice('kubeconfig '.length),
    apply: (resource, object) => control('/apply', { resource, object }),
    remove: (resource, namespace, name) => control('/remove', { resource, namespace, name }),
  };
}

/** The process side: the fixture on the namespace's loopback, and the control socket. */
async function serve(controlSocket: string): Promise<void> {
  const api = await startKubeApiServer();
  rmSync(controlSocket, { force: true });
  const control = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8').on('data', (chunk: string) => {
      text += chunk;
    });
    req.on('end', () => {
      try {
        const body = JSON.parse(text) as { resource: ResourceName; object?: KubeObject; namespace?: string; name?: string };
        if (req.url === '/apply' && body.object !== undefined) api.apply(body.resource, body.object);
        else if (req.url === '/remove') api.remove(body.resource, body.namespace ?? '', body.name ?? '');
        else throw new Error(`unknown control ${req.url}`);
        res.writeHead(200).end();
      } catch (error) {
        res.writeHead(400).end((error as Error).message);
      }
    });
  });
  control.listen(controlSocket, () => process.stdout.write(`kubeconfig ${api.kubeconfigPath}\n`));
  process.once('SIGTERM', () => {
    control.close();
    void api.close().then(() => process.exit(0));
  });
}

if (import.meta.main) await serve(process.argv[2]);
