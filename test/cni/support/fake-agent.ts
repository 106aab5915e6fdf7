// A stand-in meshlite agent on a unix socket: answers the CNI protocol as told and records every request exactly.

import { rmSync } from 'node:fs';
import http from 'node:http';

export interface RecordedRequest {
  method: string;
  path: string;
  contentType: string | undefined;
  /** The parsed JSON body (the raw text when it is not JSON, '' for none). */
  body: unknown;
}

/** What the agent does with one request: answer (optionally late), never answer, or drop the connection. */
export type AgentAnswer = { status: number; body: unknown; delayMs?: number } | { hang: true } | { reset: true };

export type AgentBehaviour = (request: RecordedRequest) => AgentAnswer;

/** What a healthy agent says: enrolled on ADD, in agreement on CHECK, ready on STATUS, done on DEL. */
export const healthyAgent: AgentBehaviour = (request) => {
  switch (request.path) {
    case '/v1/cni/add':
      return { status: 200, body: { enrolled: true, reason: 'pod opted in' } };
    case '/v1/cni/check':
      return { status: 200, body: { enrolled: true, expected: true, reason: 'pod opted in' } };
    case '/v1/cni/status':
      return { status: 200, body: { ready: true } };
    case '/v1/cni/del':
      return { status: 200, body: {} };
    default:
      return { status: 404, body: { error: 'no such path' } };
  }
};

export interface FakeAgent {
  readonly socketPath: string;
  readonly requests: RecordedRequest[];
  behaviour: AgentBehaviour;
  close(): Promise<void>;
}

export async function startFakeAgent(socketPath: string, behaviour: AgentBehaviour = healthyAgent): Promise<FakeAgent> {
  const requests: RecordedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {}
      const recorded: RecordedRequest = { method: req.method ?? '', path: req.url ?? '', contentType: req.headers['content-type'], body };
      requests.push(recorded);
      const answer = agent.behaviour(recorded);
      if ('hang' in answer) return;
      if ('reset' in answer) {
        req.socket.destroy();
        return;
      }
      const reply = (): void => {
        res.writeHead(answer.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(answer.body));
      };
      if (answer.delayMs === undefined) return reply();
      const timer = setTimeout(() => {
        timers.delete(timer);
        reply();
      }, answer.delayMs);
      timers.add(timer);
    });
  });
  rmSync(socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, resolve);
  });
  const agent: FakeAgent = {
    socketPath,
    requests,
    behaviour,
    close: async () => {
      for (const timer of timers) clearTimeout(timer);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return agent;
}
