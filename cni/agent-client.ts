// Asks the meshlite agent over its unix socket: one HTTP/1.1 request (JSON body on POST), bounded by a timeout, never throwing.

import http from 'node:http';

/** How one exchange ended; the plugin's fail policy decides what each means for the runtime. */
export type AgentExchange =
  | { kind: 'answered'; status: number; body: string }
  | { kind: 'unreachable'; reason: string }
  | { kind: 'timeout'; afterMs: number };

export interface AgentClient {
  /** A POST with `body` as JSON; a GET when `body` is undefined. */
  request(path: string, body?: unknown): Promise<AgentExchange>;
}

export interface AgentClientOptions {
  socketPath: string;
  timeoutMs: number;
}

/** A reply larger than this is not one of the protocol's; reading on would only let a broken agent stall the runtime. */
const MAX_REPLY_BYTES = 64 * 1024;

/**
 * One connection per exchange (`agent: false`, `connection: close`): the plugin process lives for one call, and a
 * kept-alive socket would only hold its exit back. The timeout covers connect, the agent's work and the reply.
 */
export function createAgentClient({ socketPath, timeoutMs }: AgentClientOptions): AgentClient {
  return {
    request(path, body) {
      const payload = body === undefined ? '' : JSON.stringify(body);
      return new Promise<AgentExchange>((resolve) => {
        let settled = false;
        const settle = (exchange: AgentExchange): void => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          request.destroy();
          resolve(exchange);
        };
        const request = http.request({
          socketPath,
          path,
          method: body === undefined ? 'GET' : 'POST',
          agent: false,
          headers: {
            ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
            connection: 'close',
          },
        });
        const timer = setTimeout(() => settle({ kind: 'timeout', afterMs: timeoutMs }), timeoutMs);
        request.once('error', (err: NodeJS.ErrnoException) => {
          settle({ kind: 'unreachable', reason: err.code !== undefined ? `${err.code} ${socketPath}` : err.message });
        });
        request.once('response', (response) => {
          const chunks: Buffer[] = [];
          let size = 0;
          response.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_REPLY_BYTES) {
              settle({ kind: 'answered', status: response.statusCode ?? 0, body: '' });
              return;
            }
            chunks.push(chunk);
          });
          response.once('end', () => {
            settle({ kind: 'answered', status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
          });
          // An agent that dies mid-reply: 'end' never comes, 'error' or 'close' does.
          response.once('error', (err) => settle({ kind: 'unreachable', reason: `reply cut short: ${err.message}` }));
          response.once('close', () => settle({ kind: 'unreachable', reason: 'reply cut short' }));
        });
        request.end(payload);
      });
    },
  };
}
