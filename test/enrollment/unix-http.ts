// One HTTP/1.1 request over a unix socket, as the CNI plugin makes it, with the answer's JSON parsed.

import { type Agent, request } from 'node:http';

export interface Answer {
  status: number;
  contentType: string | undefined;
  body: unknown;
}

/** One request on the unix socket, on a connection of its own unless `agent` keeps connections alive. */
export function call(socketPath: string, path: string, body?: string | object, method = body === undefined ? 'GET' : 'POST', agent: Agent | false = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
    const req = request({ socketPath, path, method, agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'], body: raw === '' ? null : JSON.parse(raw) });
      });
    });
    req.on('error', reject);
    req.end(text);
  });
}
