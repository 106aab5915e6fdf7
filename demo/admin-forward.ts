// The demo's `kubectl port-forward`: the agent's admin server (and dashboard) listens on the node namespace's
// loopback, which a browser on this machine cannot reach. A relay inside the node namespace listens on a unix socket
// (a file, which both namespaces see) and connects each stream to the admin address there; the demo listens on this
// machine's loopback and connects each browser connection to that socket.

import { createServer, connect, type Server, type Socket } from 'node:net';
import { rmSync } from 'node:fs';

/** Pipes two sockets together until either ends. */
function splice(a: Socket, b: Socket): void {
  a.pipe(b);
  b.pipe(a);
  const end = (): void => {
    a.destroy();
    b.destroy();
  };
  a.on('error', end).on('close', end);
  b.on('error', end).on('close', end);
}

/** This machine's side: 127.0.0.1 on a port the kernel picks, each connection relayed to `socketPath`. */
export async function forwardToUnixSocket(socketPath: string): Promise<{ url: string; close(): Promise<void> }> {
  const open = new Set<Socket>();
  const server: Server = createServer((browser) => {
    open.add(browser);
    browser.once('close', () => open.delete(browser));
    splice(browser, connect(socketPath));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        // The dashboard's event stream never ends by itself.
        for (const socket of open) socket.destroy();
      }),
  };
}

/** The node namespace's side, run as a program there: the unix socket, each stream relayed to the admin address. */
async function relay(socketPath: string, admin: string): Promise<void> {
  const [host, port] = [admin.slice(0, admin.lastIndexOf(':')), Number(admin.slice(admin.lastIndexOf(':') + 1))];
  rmSync(socketPath, { force: true });
  const server = createServer((stream) => splice(stream, connect(port, host)));
  server.listen(socketPath, () => process.stdout.write('forwarding\n'));
  process.once('SIGTERM', () => server.close(() => process.exit(0)));
}

if (import.meta.main) await relay(process.argv[2] ?? '', process.argv[3] ?? '');
