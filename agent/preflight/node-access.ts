// The real dependencies of `meshlite check` on a node: files, bind attempts, the Kubernetes client; main wires them.

import { constants } from 'node:fs';
import { access, readdir, readFile, stat } from 'node:fs/promises';
import net from 'node:net';
import type { Config } from '../config/agent-config.ts';
import type { FileAccess } from './cni-check.ts';
import type { KubeAccess } from './kube-check.ts';
import type { BindOutcome, BindProbe } from './ports-check.ts';

export const nodeFiles: FileAccess = {
  list: (directory) => readdir(directory),
  read: (path) => readFile(path, 'utf8'),
  async stat(path) {
    const found = await stat(path).catch(() => null);
    if (found === null) return null;
    const executable = await access(path, constants.X_OK).then(
      () => true,
      () => false,
    );
    return { directory: found.isDirectory(), executable };
  },
};

/** Binds a TCP listener and closes it at once; `reusePort` as the agent binds (SO_REUSEPORT). */
export const bindOnce: BindProbe = (address, reusePort) =>
  new Promise<BindOutcome>((resolve) => {
    const server = net.createServer();
    server.once('error', (error: NodeJS.ErrnoException) => resolve({ bound: false, code: error.code ?? 'UNKNOWN', message: error.message }));
    server.listen({ host: address.host, port: address.port, reusePort, exclusive: true }, () => {
      server.close(() => resolve({ bound: true }));
    });
  });

/** The agent's Kubernetes client (in-cluster, or --kubeconfig); loaded only when it is asked for. */
export function kubeAccessOf(config: Pick<Config, 'kubeconfig'>): () => Promise<KubeAccess> {
  return async () => {
    const { createKubeApi, loadKubeConfig } = await import('../discovery/kube-api.ts');
    const kubeConfig = loadKubeConfig(config.kubeconfig);
    return { server: kubeConfig.server, api: createKubeApi(kubeConfig) };
  };
}
