// HTTP(S) requests to the Kubernetes API over node:http/https: one keep-alive agent, the configured TLS, a bearer token.

import { readFile } from 'node:fs/promises';
import { Agent as HttpAgent, type IncomingMessage, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { KubeClientConfig } from './kube-config.ts';
import { runExecPlugin } from './kube-exec-credential.ts';

/** A token file is read again at most this often: the kubelet replaces a bound token well before it expires. */
const TOKEN_FILE_REFRESH_MS = 60_000;
/** An exec plugin's token is renewed this long before it expires. */
const EXEC_EXPIRY_MARGIN_MS = 10_000;

export interface KubeRequest {
  method: 'GET' | 'POST';
  /** The API path and query, e.g. `/api/v1/pods?limit=500`. */
  path: string;
  body?: string;
  /** Aborts the request until its response headers arrived; the rejection is the signal's reason. */
  signal?: AbortSignal;
}

export class KubeHttp {
  private readonly config: KubeClientConfig;
  private readonly base: URL;
  private readonly agent: HttpAgent;
  private readonly secure: boolean;
  private token: { value: string; readAt: number } | null = null;
  /** An exec plugin's token (expiresAt: epoch ms, null: until refused), or its run in progress. */
  private execToken: Promise<{ token: string; expiresAt: number | null }> | null = null;

  constructor(config: KubeClientConfig) {
    this.config = config;
    this.base = new URL(config.server);
    this.secure = this.base.protocol === 'https:';
    this.agent = this.secure
      ? new HttpsAgent({
          keepAlive: true,
          ca: config.ca,
          rejectUnauthorized: config.verifyServer,
          servername: config.serverName,
          cert: config.clientCertificate?.cert,
          key: config.clientCertificate?.key,
        })
      : new HttpAgent({ keepAlive: true });
  }

  /** Resolves with the response once its headers arrived (the body is the caller's to read); rejects with the cause of a failed connection. */
  async request(req: KubeRequest): Promise<IncomingMessage> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    const token = await this.bearerToken();
    if (token !== '') headers.Authorization = `Bearer ${token}`;
    if (req.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(req.body));
    }
    const { signal } = req;
    if (signal?.aborted) throw signal.reason;
    const prefix = this.base.pathname === '/' ? '' : this.base.pathname.replace(/\/+$/, '');
    const options = {
      agent: this.agent,
      protocol: this.base.protocol,
      hostname: this.base.hostname.replace(/^\[|\]$/g, ''),
      port: this.base.port === '' ? (this.secure ? 443 : 80) : Number(this.base.port),
      method: req.method,
      path: prefix + req.path,
      headers,
    };
    return new Promise<IncomingMessage>((resolve, reject) => {
      const outgoing = (this.secure ? httpsRequest : httpRequest)(options);
      const onAbort = (): void => {
        outgoing.destroy();
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      outgoing.once('response', (response) => {
        signal?.removeEventListener('abort', onAbort);
        if (response.statusCode === 401) {
          this.token = null;
          this.execToken = null;
        }
        resolve(response);
      });
      outgoing.once('error', (error) => {
        signal?.removeEventListener('abort', onAbort);
        reject(new Error(`${req.method} ${req.path}: ${error.message}`, { cause: error }));
      });
      outgoing.end(req.body);
    });
  }

  /** Ends idle keep-alive connections (open watches end when they are aborted). */
  close(): void {
    this.agent.destroy();
  }

  private async bearerToken(): Promise<string> {
    const { credential } = this.config;
    if (credential.kind === 'none') return '';
    if (credential.kind === 'token') return credential.token;
    if (credential.kind === 'exec') {
      const cached = this.execToken === null ? null : await this.execToken.catch(() => null);
      // Run again once expired (a little early, so that no request carries a token that expires in flight).
      if (cached !== null && (cached.expiresAt === null || cached.expiresAt - Date.now() > EXEC_EXPIRY_MARGIN_MS)) return cached.token;
      const running = runExecPlugin(credential.plugin);
      this.execToken = running;
      running.catch(() => {
        if (this.execToken === running) this.execToken = null;
      });
      return (await running).token;
    }
    const now = performance.now();
    if (this.token !== null && now - this.token.readAt < TOKEN_FILE_REFRESH_MS) return this.token.value;
    // Read again after the refresh period or a 401 (a rotated token); on a failed read the last good one is still tried.
    const value = await readFile(credential.path, 'utf8').then(
      (text) => text.trim(),
      () => this.token?.value ?? credential.fallback,
    );
    this.token = { value, readAt: now };
    return value;
  }
}

/** Reads a whole response body as text. */
export function readText(response: IncomingMessage, signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const onAbort = (): void => {
      response.destroy();
      reject(signal?.reason);
    };
    if (signal?.aborted) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    response.on('data', (chunk: Buffer) => chunks.push(chunk));
    response.once('end', () => {
      signal?.removeEventListener('abort', onAbort);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    response.once('error', (error) => {
      signal?.removeEventListener('abort', onAbort);
      reject(new Error(`the answer broke off: ${error.message}`, { cause: error }));
    });
    response.once('close', () => {
      signal?.removeEventListener('abort', onAbort);
      // After 'end' this settles nothing; without it the connection closed before the whole answer arrived.
      if (!response.complete) reject(new Error('the API server closed the connection before the whole answer arrived'));
    });
  });
}
