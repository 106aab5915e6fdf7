// A Kubernetes API server test fixture on 127.0.0.1: the real wire protocol (LIST, WATCH, GET, Status errors) for namespaces, services, pods and endpointslices, SelfSubjectAccessReview, with fault injection.

import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ACCESS_REVIEW_PATH, type AccessDenial, reviewAccess } from './kube-api-access-review.ts';
import { getBody, listBody } from './kube-api-list.ts';
import { compileFilter, parseListOptions, validateListOptions } from './kube-api-query.ts';
import { discoveryDocument, parseResourcePath, type ResourceName, type ResourceRoute } from './kube-api-resources.ts';
import { KubeApiStore, type KubeObject } from './kube-api-store.ts';
import { failureStatus, injectedFailure, type KubeStatus, KubeStatusError, methodNotAllowed, pathNotFound, unauthorized } from './kube-api-status.ts';
import { WatchStream } from './kube-api-watch.ts';

export type { KubeObject } from './kube-api-store.ts';
export type { ResourceName } from './kube-api-resources.ts';
export type { AccessDenial } from './kube-api-access-review.ts';

export interface KubeApiServerOptions {
  /** 0 (default) for an ephemeral port. */
  port?: number;
  /** The bearer token the kubeconfig carries and the server demands (401 otherwise). */
  token?: string;
  /** Between BOOKMARK events of a watch that allows them; a real server sends one about every minute. Default 1000. */
  bookmarkIntervalMs?: number;
  /** How long a read of a future resourceVersion waits before its 504; a real server waits 3 s. Default 250. */
  tooLargeResourceVersionWaitMs?: number;
  /** Events kept per resource before the oldest are compacted. Default 100,000. */
  historyLimit?: number;
  /** The store's resourceVersion before the first write. Default 1000. */
  initialResourceVersion?: number;
  /**
   * Serve HTTPS with this key and certificate (PEM), as a real API server does; a pod's in-cluster client trusts
   * the certificate through its service account's ca.crt. Plain HTTP when unset.
   */
  tls?: { key: string; cert: string };
}

export type RequestVerb = 'list' | 'watch' | 'get';

export interface FailNextOptions {
  /** The HTTP code of the Status answered. Default 500. */
  status?: number;
  /** Only requests for this resource; any resource request when unset. */
  resource?: ResourceName;
}

interface FailureRule {
  remaining: number;
  readonly status: number;
  readonly resource: ResourceName | undefined;
}

// What a real API server lets through without credentials (system:public-info-viewer).
const PUBLIC_PATHS = new Set(['/version', '/healthz', '/livez', '/readyz']);
const HEALTH_PATHS = new Set(['/healthz', '/livez', '/readyz']);
const TRUE_VALUES = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);

export class KubeApiServer {
  readonly token: string;
  readonly store: KubeApiStore;
  private readonly bookmarkIntervalMs: number;
  private readonly tooLargeResourceVersionWaitMs: number;
  private server: Server | undefined;
  private boundPort: number;
  private directory = '';
  private readonly sockets = new Set<Socket>();
  private readonly watches = new Set<WatchStream>();
  private readonly counts = new Map<string, number>();
  private failures: FailureRule[] = [];
  private stalled = false;
  private stalledRequests: Array<() => void> = [];
  private denials: AccessDenial[] = [];
  private reviews = 0;
  private readonly tls: { key: string; cert: string } | undefined;

  constructor(options: KubeApiServerOptions = {}) {
    this.tls = options.tls;
    this.boundPort = options.port ?? 0;
    this.token = options.token ?? 'meshlite-test-token';
    this.bookmarkIntervalMs = options.bookmarkIntervalMs ?? 1000;
    this.tooLargeResourceVersionWaitMs = options.tooLargeResourceVersionWaitMs ?? 250;
    this.store = new KubeApiStore({ initialResourceVersion: options.initialResourceVersion, historyLimit: options.historyLimit });
  }

  get port(): number {
    return this.boundPort;
  }

  get url(): string {
    return `${this.tls === undefined ? 'http' : 'https'}://127.0.0.1:${this.boundPort}`;
  }

  /** A kubeconfig for client-node: this server, its CA (or `insecure-skip-tls-verify` over plain HTTP, which client-node refuses without it), the token. */
  get kubeconfigPath(): string {
    return join(this.directory, 'kubeconfig.yaml');
  }

  /** The current resourceVersion, as the API reports it. */
  get resourceVersion(): string {
    return String(this.store.resourceVersion);
  }

  /** Creates or replaces an object (no-op when nothing changed) and returns it as stored, with kind and apiVersion. */
  apply(resource: ResourceName, object: KubeObject): KubeObject {
    return JSON.parse(this.store.apply(resource, object).json) as KubeObject;
  }

  /** Deletes an object at once; returns it as the DELETED event carries it, or undefined if it did not exist. */
  remove(resource: ResourceName, namespace: string, name: string): KubeObject | undefined {
    const removed = this.store.remove(resource, namespace, name);
    return removed === undefined ? undefined : (JSON.parse(removed.json) as KubeObject);
  }

  get(resource: ResourceName, namespace: string, name: string): KubeObject | undefined {
    const stored = this.store.get(resource, namespace, name);
    return stored === undefined ? undefined : (JSON.parse(stored.json) as KubeObject);
  }

  list(resource: ResourceName, namespace?: string): KubeObject[] {
    return this.store
      .current(resource)
      .filter((stored) => namespace === undefined || stored.namespace === namespace)
      .map((stored) => JSON.parse(stored.json) as KubeObject);
  }

  /** Destroys every open watch connection mid-stream; returns how many. */
  dropWatches(): number {
    const open = [...this.watches];
    for (const watch of open) watch.drop();
    return open.length;
  }

  /** Ends every open watch cleanly; returns how many. */
  endWatches(): number {
    const open = [...this.watches];
    for (const watch of open) watch.end();
    return open.length;
  }

  /** While enabled, new requests get no answer; disabling serves the held ones, in order. */
  stall(enabled: boolean): void {
    this.stalled = enabled;
    if (enabled) return;
    for (const serve of this.stalledRequests.splice(0)) serve();
  }

  /** The next `count` resource requests (of `options.resource` if given) are answered with a Status of that code. */
  failNext(count: number, options: FailNextOptions = {}): void {
    this.failures.push({ remaining: count, status: options.status ?? 500, resource: options.resource });
  }

  /** From now on SelfSubjectAccessReviews of this verb on this resource answer `allowed: false` (RBAC has no rule). */
  denyAccess(denial: AccessDenial): void {
    this.denials.push(denial);
  }

  /** SelfSubjectAccessReviews received. */
  get accessReviewCount(): number {
    return this.reviews;
  }

  /** Compacts the history to now: a watch or an exact LIST from any earlier resourceVersion gets 410 Expired. */
  expireResourceVersions(): void {
    this.store.compact();
  }

  /** Requests received for `resource` (of `verb`, or all verbs), counted on arrival, even if stalled or failed. */
  requestCount(resource: ResourceName, verb?: RequestVerb): number {
    if (verb !== undefined) return this.counts.get(`${resource} ${verb}`) ?? 0;
    return (['list', 'watch', 'get'] as const).reduce((sum, each) => sum + (this.counts.get(`${resource} ${each}`) ?? 0), 0);
  }

  /** Watches streaming now (of `resource`, or all); a watch counts once its headers are sent and it is live. */
  openWatchCount(resource?: ResourceName): number {
    let count = 0;
    for (const watch of this.watches) if (resource === undefined || watch.resource === resource) count++;
    return count;
  }

  stalledRequestCount(): number {
    return this.stalledRequests.length;
  }

  /** The API server is gone: stops listening and destroys every connection, keeping the store for `restart`. */
  async stop(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    this.stalledRequests = [];
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const watch of [...this.watches]) watch.drop();
    for (const socket of this.sockets) socket.destroy();
    server.closeAllConnections();
    await closed;
  }

  /** Listens again on the same port (the kubeconfig stays valid). */
  async restart(): Promise<void> {
    if (this.server !== undefined) return;
    await this.listen();
  }

  /** Stops and removes the kubeconfig's directory. */
  async close(): Promise<void> {
    await this.stop();
    if (this.directory !== '') await rm(this.directory, { recursive: true, force: true });
  }

  /** Listens and writes the kubeconfig; `startKubeApiServer` is the usual way in. */
  async open(): Promise<void> {
    await this.listen();
    this.directory = await mkdtemp(join(tmpdir(), 'meshlite-kube-api-'));
    await writeFile(this.kubeconfigPath, this.kubeconfig(), { mode: 0o600 });
  }

  private async listen(): Promise<void> {
    const receive = (request: IncomingMessage, response: ServerResponse): void => this.receive(request, response);
    const server: Server = this.tls === undefined ? createServer(receive) : createTlsServer({ ...this.tls }, receive);
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.boundPort, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.boundPort = (server.address() as AddressInfo).port;
    this.server = server;
  }

  private kubeconfig(): string {
    return [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '  - name: meshlite-test',
      '    cluster:',
      `      server: ${this.url}`,
      this.tls === undefined ? '      insecure-skip-tls-verify: true' : `      certificate-authority-data: ${Buffer.from(this.tls.cert).toString('base64')}`,
      'users:',
      '  - name: meshlite-test',
      '    user:',
      `      token: ${this.token}`,
      'contexts:',
      '  - name: meshlite-test',
      '    context:',
      '      cluster: meshlite-test',
      '      user: meshlite-test',
      'current-context: meshlite-test',
      '',
    ].join('\n');
  }

  private receive(request: IncomingMessage, response: ServerResponse): void {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const route = parseResourcePath(url.pathname);
    if (route !== null) {
      const watch = route.legacyWatch || TRUE_VALUES.has(url.searchParams.get('watch') ?? '');
      const verb: RequestVerb = watch ? 'watch' : route.name === undefined ? 'list' : 'get';
      const key = `${route.resource.name} ${verb}`;
      this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    }
    const serve = () => {
      // A request whose client gave up while it was held is not answered.
      if (request.socket.destroyed) return;
      this.serve(request, response, url, route).catch((error: unknown) => this.fail(response, error));
    };
    if (this.stalled) this.stalledRequests.push(serve);
    else serve();
  }

  private async serve(request: IncomingMessage, response: ServerResponse, url: URL, route: ResourceRoute | null): Promise<void> {
    if (!PUBLIC_PATHS.has(url.pathname) && request.headers.authorization !== `Bearer ${this.token}`) throw unauthorized();
    if (url.pathname === ACCESS_REVIEW_PATH) {
      if (request.method !== 'POST') throw methodNotAllowed();
      this.reviews++;
      const review = reviewAccess(await readBody(request), this.denials);
      this.sendJson(response, 201, JSON.stringify(review));
      return;
    }
    if (route === null) {
      if (HEALTH_PATHS.has(url.pathname)) {
        response.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
        response.end('ok');
        return;
      }
      const document = discoveryDocument(url.pathname, `127.0.0.1:${this.boundPort}`);
      if (document === undefined) throw pathNotFound();
      this.sendJson(response, 200, JSON.stringify(document));
      return;
    }
    const injected = this.takeFailure(route.resource.name);
    if (injected !== undefined) throw injectedFailure(injected);
    if (request.method !== 'GET') throw methodNotAllowed();
    const { resource: info, namespace, name } = route;
    const options = parseListOptions(url.searchParams, route.legacyWatch);
    const readContext = { store: this.store, info, options, tooLargeResourceVersionWaitMs: this.tooLargeResourceVersionWaitMs };
    if (!options.watch && name !== undefined) {
      this.sendJson(response, 200, await getBody(this.store, info, namespace, name, options.resourceVersion, this.tooLargeResourceVersionWaitMs));
      return;
    }
    validateListOptions(options);
    // A watch on an object's own path is a watch of the collection narrowed to that name.
    const filter = compileFilter(info, namespace, name, options);
    if (!options.watch) {
      this.sendJson(response, 200, await listBody({ ...readContext, filter }));
      return;
    }
    const watch = new WatchStream({ ...readContext, filter, bookmarkIntervalMs: this.bookmarkIntervalMs }, response);
    await watch.start();
    this.watches.add(watch);
    watch.onClose(() => this.watches.delete(watch));
  }

  private takeFailure(resource: ResourceName): number | undefined {
    const rule = this.failures.find((candidate) => candidate.remaining > 0 && (candidate.resource === undefined || candidate.resource === resource));
    if (rule === undefined) return undefined;
    rule.remaining--;
    this.failures = this.failures.filter((candidate) => candidate.remaining > 0);
    return rule.status;
  }

  private fail(response: ServerResponse, error: unknown): void {
    const status: KubeStatus =
      error instanceof KubeStatusError
        ? error.status
        : failureStatus(500, 'InternalError', `Internal error occurred: ${error instanceof Error ? error.message : String(error)}`);
    if (response.headersSent) {
      // Too late for a status code: the stream breaks, as a real server's would.
      response.destroy();
      return;
    }
    const retryAfter = status.details?.retryAfterSeconds;
    this.sendJson(response, status.code, JSON.stringify(status), retryAfter === undefined ? {} : { 'Retry-After': String(retryAfter) });
  }

  private sendJson(response: ServerResponse, code: number, body: string, headers: Record<string, string> = {}): void {
    if (response.destroyed) return;
    response.writeHead(code, {
      'Content-Type': 'application/json',
      'Cache-Control': 'no-cache, private',
      'Audit-Id': randomUUID(),
      ...headers,
    });
    response.end(body);
  }
}

async function readBody(request: IncomingMessage): Promise<string> {
  let text = '';
  request.setEncoding('utf8');
  for await (const chunk of request) text += chunk as string;
  return text;
}

/** Starts a server on 127.0.0.1 and writes its kubeconfig; `close()` it when done. */
export async function startKubeApiServer(options: KubeApiServerOptions = {}): Promise<KubeApiServer> {
  const server = new KubeApiServer(options);
  await server.open();
  return server;
}
