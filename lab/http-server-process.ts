// An HTTP/1.1 service pod: a node:http server in a pod's namespace that says who it is, for non-gRPC traffic tests.

import { once } from 'node:events';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { NetHost } from './netns.ts';
import type { NamespaceProcess, NamespaceSpawner } from './netns-process.ts';

/** Response header naming the server that answered (as META.servedBy does for gRPC). */
export const HTTP_SERVED_BY = 'x-served-by';

export interface HttpServer {
  id: string;
  host: NetHost;
  port: number;
  /** `podIPv4:port`. */
  address: string;
  process: NamespaceProcess;
}

/** Starts the server bound to the host's IPv4 (or every address, for dual-stack tests) and waits until it listens. */
export async function startHttpServer(
  spawn: NamespaceSpawner,
  host: NetHost,
  options: { id?: string; port?: number; bindAny?: boolean } = {},
): Promise<HttpServer> {
  const id = options.id ?? host.name;
  const bindTo = options.bindAny === true ? '::' : host.ipv4;
  const proc = spawn(host.ns, process.execPath, [fileURLToPath(import.meta.url), id, bindTo, String(options.port ?? 8080)]);
  const port = Number(await proc.line((line) => /^\d+$/.test(line.trim()), 15_000));
  return { id, host, port, address: `${host.ipv4}:${port}`, process: proc };
}

if (import.meta.main) {
  const [id, host, port] = process.argv.slice(2);
  // Echoes what it received, so a test can tell that nothing between client and server rewrote the request.
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = JSON.stringify({
        servedBy: id,
        method: req.method,
        url: req.url,
        httpVersion: req.httpVersion,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        remoteAddress: req.socket.remoteAddress,
      });
      res.writeHead(200, { 'content-type': 'application/json', [HTTP_SERVED_BY]: id });
      res.end(body);
    });
  });
  server.listen(Number(port), host);
  await once(server, 'listening');
  const address = server.address();
  process.stdout.write(`${typeof address === 'object' && address !== null ? address.port : port}\n`);
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}
