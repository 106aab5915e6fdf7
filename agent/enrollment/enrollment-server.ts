// The CNI enrollment server: HTTP/1.1 JSON on a unix socket on the host, where the chained plugin asks the agent to enroll a sandbox.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { MeshliteError, type ErrorCode } from '../vocabulary/errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import {
  CniRequestError,
  type CniAddRequest,
  type CniCheckRequest,
  type CniDelRequest,
  type CniReply,
  errorReply,
  parseAddRequest,
  parseCheckRequest,
  parseDelRequest,
} from './cni-protocol.ts';
import { type PreviousSocket, releaseSocketPath, takeOverSocketPath } from './socket-path.ts';

/** What answers the commands: CniEnrollment (enrollment.ts). */
export interface EnrollmentHandler {
  add(request: CniAddRequest): Promise<CniReply>;
  del(request: CniDelRequest): CniReply;
  check(request: CniCheckRequest): Promise<CniReply>;
}

export interface EnrollmentServerOptions {
  /** The socket's path on the host (the plugin's `agentSocket`, /run/meshlite/cni.sock by default). */
  path: string;
  enrollment: EnrollmentHandler;
  logger: Logger;
  countError(code: ErrorCode): void;
  /** How long a connection to a socket already at the path may take before it counts as a live agent. */
  probeTimeoutMs: number;
}

export type EnrollmentServerState =
  | { state: 'idle' }
  | { state: 'listening'; path: string; previous: PreviousSocket; inode: number }
  | { state: 'closed' };

/** A body is a few hundred bytes; anything much larger is not from the plugin. */
const MAX_BODY_BYTES = 64 * 1024;
/** A plugin that connects and sends nothing must not hold a connection forever. */
const REQUEST_TIMEOUT_MS = 30_000;

/** The socket cannot be put at its path: the agent does not start (ML_LISTEN_FAILED). */
export class EnrollmentSocketError extends MeshliteError {
  constructor(message: string, options?: ErrorOptions) {
    super('ML_LISTEN_FAILED', message, options);
    this.name = 'EnrollmentSocketError';
  }
}

/**
 * Routes: POST /v1/cni/add, /v1/cni/del, /v1/cni/check (JSON bodies, see cni-protocol.ts) and GET /v1/cni/status
 * (200 `{"ready":true}`: the socket is at its path only once the agent is ready). Every answer is JSON; every
 * error carries `{code, message}`; nothing a client sends can throw out of a handler.
 */
export class EnrollmentServer {
  state: EnrollmentServerState = { state: 'idle' };
  private readonly options: EnrollmentServerOptions;
  private readonly log: Logger;
  private readonly server: Server;

  constructor(options: EnrollmentServerOptions) {
    this.options = options;
    this.log = options.logger.child({ component: 'cni-server' });
    this.server = createServer({ requestTimeout: REQUEST_TIMEOUT_MS }, (request, response) => {
      this.handle(request, response).catch((error: unknown) => this.internalError(response, error));
    });
  }

  /** Takes the socket path over (socket-path.ts); call it once the agent is ready to decide and to apply rules. */
  async start(): Promise<EnrollmentServerState> {
    const { path, probeTimeoutMs } = this.options;
    if (this.state.state !== 'idle') throw new Error(`the enrollment server cannot start in state ${this.state.state}`);
    try {
      const { previous, inode } = await takeOverSocketPath(path, (temporary) => this.bind(temporary), probeTimeoutMs);
      this.state = { state: 'listening', path, previous, inode };
      this.log.info({ path, previous }, previous === 'live' ? 'CNI enrollment socket taken over from the running agent' : 'CNI enrollment socket listening');
      return this.state;
    } catch (error) {
      this.server.close();
      throw new EnrollmentSocketError(`cannot listen on the CNI enrollment socket ${path}: ${(error as Error).message}`, { cause: error });
    }
  }

  /** Stops accepting, lets the requests in flight finish (each is bounded), and unlinks the path if it is still ours. */
  async stop(): Promise<void> {
    const current = this.state;
    this.state = { state: 'closed' };
    if (current.state !== 'listening') return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    await closed;
    const released = await releaseSocketPath(current.path, current.inode).catch(() => false);
    this.log.info({ path: current.path, released }, released ? 'CNI enrollment socket closed' : 'CNI enrollment socket closed; the path belongs to a newer agent');
  }

  private bind(path: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ path }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = request.url ?? '';
    const route = ROUTES[url];
    if (route === undefined) return this.reply(response, errorReply(404, 'ML_CNI_BAD_REQUEST', `no such path: ${url.slice(0, 200)}`));
    if (request.method !== route.method) {
      response.setHeader('allow', route.method);
      return this.reply(response, errorReply(405, 'ML_CNI_BAD_REQUEST', `${url} takes ${route.method}, not ${request.method}`));
    }
    if (route.method === 'GET') return this.reply(response, { status: 200, body: { ready: true } });
    const body = await readBody(request);
    if (body === 'too-large') {
      // Not worth reading the rest of a body this size: the connection closes after the answer.
      response.setHeader('connection', 'close');
      return this.reply(response, errorReply(413, 'ML_CNI_BAD_REQUEST', `the body is larger than ${MAX_BODY_BYTES} bytes`));
    }
    if (body === 'cut-short') return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch (error) {
      return this.reply(response, errorReply(400, 'ML_CNI_BAD_REQUEST', `the body is not JSON: ${(error as Error).message}`));
    }
    const { enrollment } = this.options;
    try {
      if (url === '/v1/cni/add') return this.reply(response, await enrollment.add(parseAddRequest(parsed)));
      if (url === '/v1/cni/del') return this.reply(response, enrollment.del(parseDelRequest(parsed)));
      return this.reply(response, await enrollment.check(parseCheckRequest(parsed)));
    } catch (error) {
      if (!(error instanceof CniRequestError)) throw error;
      return this.reply(response, errorReply(400, 'ML_CNI_BAD_REQUEST', `${url}: ${error.message}`));
    }
  }

  private reply(response: ServerResponse, reply: CniReply): void {
    if (reply.status !== 200 && 'code' in reply.body && reply.body.code === 'ML_CNI_BAD_REQUEST') {
      this.options.countError('ML_CNI_BAD_REQUEST');
      this.log.warn({ code: 'ML_CNI_BAD_REQUEST', status: reply.status, err: reply.body.message }, 'CNI request refused');
    }
    if (response.headersSent) return;
    // A keep-alive connection that stayed open after its answer would hold stop() until the client let go.
    if (this.state.state !== 'listening') response.setHeader('connection', 'close');
    const text = JSON.stringify(reply.body);
    response.writeHead(reply.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    response.end(text);
  }

  private internalError(response: ServerResponse, error: unknown): void {
    this.options.countError('ML_INTERNAL');
    this.log.error({ code: 'ML_INTERNAL', err: error }, 'CNI request failed unexpectedly');
    if (!response.headersSent) this.reply(response, errorReply(500, 'ML_INTERNAL', 'unexpected failure in the agent; see its log'));
    else response.destroy();
  }
}

const ROUTES: Record<string, { method: 'GET' | 'POST' } | undefined> = {
  '/v1/cni/add': { method: 'POST' },
  '/v1/cni/del': { method: 'POST' },
  '/v1/cni/check': { method: 'POST' },
  '/v1/cni/status': { method: 'GET' },
};

/** The body as text; 'too-large' past MAX_BODY_BYTES; 'cut-short' when the client went away mid-body. */
function readBody(request: IncomingMessage): Promise<string | 'too-large' | 'cut-short'> {
  return new Promise((resolve) => {
    if (Number(request.headers['content-length'] ?? 0) > MAX_BODY_BYTES) {
      resolve('too-large');
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) {
        chunks.push(chunk);
        return;
      }
      request.off('data', onData);
      resolve('too-large');
    };
    request.on('data', onData);
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', () => resolve('cut-short'));
    request.on('aborted', () => resolve('cut-short'));
  });
}
