// The test Kubernetes API server as a process run inside a network namespace (`ip netns exec NS node this-file DENIALS`):
// it prints `kubeconfig PATH` once it listens on the namespace's loopback, and stops on SIGTERM.

import { type AccessDenial, startKubeApiServer } from '../support/kube-api-server.ts';

async function serve(denials: AccessDenial[]): Promise<void> {
  const api = await startKubeApiServer();
  for (const denial of denials) api.denyAccess(denial);
  process.stdout.write(`kubeconfig ${api.kubeconfigPath}\n`);
  process.once('SIGTERM', () => {
    void api.close().then(() => process.exit(0));
  });
}

if (import.meta.main) await serve(JSON.parse(process.argv[2] ?? '[]') as AccessDenial[]);
