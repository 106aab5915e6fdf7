// One HTTP/1.1 request from inside a pod's (or node's) namespace; prints the status, headers and body as JSON.

import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { NetHost } from './netns.ts';
import type { NamespaceSpawner } from './netns-process.ts';

export interface HttpRequestOptions {
  /** `http://IP:port/path` (a ClusterIP or a pod IP). */
  url: string;
  method?: string;
  body?: string;
  timeoutMs?: number;
}

export interface HttpResponseSummary {
  status: number;
  httpVersion: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export async function runHttpRequest(
  spawn: NamespaceSpawner,
  host: NetHost,
  options: HttpRequestOptions,
): Promise<HttpResponseSummary> {
  const client = spawn(host.ns, process.execPath, [fileURLToPath(import.meta.url), JSON.stringify(options)]);
  const exit = await client.wait((options.timeoutMs ?? 5_000) + 10_000);
  if (exit.code !== 0) {
    throw new Error(`HTTP client in ${host.name} exited ${exit.code ?? exit.signal}: ${client.stderr().trim()}`);
  }
  return JSON.parse(client.stdout()) as HttpResponseSummary;
}

if (import.meta.main) {
  const options = JSON.parse(process.argv[2]) as HttpRequestOptions;
  const summary = await new Promise<HttpResponseSummary>((resolve, reject) => {
    // No keep-alive agent: one request, one connection, then the program exits.
    const req = request(options.url, { method: options.method ?? 'GET', agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          httpVersion: res.httpVersion,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      res.on('error', reject);
    });
    req.setTimeout(options.timeoutMs ?? 5_000, () => req.destroy(new Error('HTTP request timed out')));
    req.on('error', reject);
    req.end(options.body);
  });
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}
