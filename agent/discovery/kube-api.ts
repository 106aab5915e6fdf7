// The Kubernetes API as discovery uses it (a paged raw LIST, a GET of one object, client-node's Watch) and a POST for the preflight, all authenticated by client-node.

import { HttpMethod, KubeConfig, RequestContext, Watch } from '@kubernetes/client-node';
import { fetch, type Response } from 'undici';
import { MeshliteError } from '../vocabulary/errors.ts';

/** One page-joined LIST: the raw items as the API sent them, and the collection's resourceVersion. */
export interface ListResult {
  items: unknown[];
  resourceVersion: string;
}

/** What client-node's ListWatch calls to watch; the same shape as its Watch class, so tests may wrap it. */
export interface WatchClient {
  watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController>;
}

export interface KubeApi {
  /** LIST `path` with the given query, page by page (`limit`/`continue`), projecting each page as it arrives so
   *  that a large cluster's raw JSON is never held whole. Rejects with KubeApiError on a non-200 answer. */
  list<R>(path: string, query: Record<string, string>, project: (raw: unknown) => R, signal: AbortSignal): Promise<{ items: R[]; resourceVersion: string }>;
  /** GET one object (e.g. `/api/v1/namespaces/NS/pods/NAME`): its raw JSON, or null when the API answers 404.
   *  Rejects with KubeApiError on any other non-200 answer. */
  get(path: string, signal: AbortSignal): Promise<unknown | null>;
  /** POST a JSON object (e.g. a SelfSubjectAccessReview, which the preflight check sends): the raw JSON answer.
   *  Rejects with KubeApiError unless the API answers 200 or 201. */
  post(path: string, body: unknown, signal: AbortSignal): Promise<unknown>;
  /** `idleTimeoutMs` bounds both the wait for the watch's response and the silence between its events. */
  watchClient(idleTimeoutMs: number): WatchClient;
}

/** An error status from the API server; `statusCode` is the HTTP status (client-node's ListWatch reads it: 410 relists). */
export class KubeApiError extends Error {
  readonly statusCode: number;
  constructor(statusCode: number, message: string) {
    super(message);
    this.name = 'KubeApiError';
    this.statusCode = statusCode;
  }
}

/** The kubeconfig could not be loaded: the agent does not start. */
export class KubeConfigError extends MeshliteError {
  constructor(message: string, options?: ErrorOptions) {
    super('ML_KUBE_CONFIG_INVALID', message, options);
    this.name = 'KubeConfigError';
  }
}

/** In-cluster (null) or from a kubeconfig file; throws KubeConfigError with the reason. */
export function loadKubeConfig(path: string | null): KubeConfig {
  const config = new KubeConfig();
  try {
    if (path === null) config.loadFromCluster();
    else config.loadFromFile(path);
  } catch (error) {
    const where = path === null ? 'the in-cluster service account' : path;
    throw new KubeConfigError(`cannot load the Kubernetes client configuration from ${where}: ${(error as Error).message}`, { cause: error });
  }
  const cluster = config.getCurrentCluster();
  if (cluster === null) {
    throw new KubeConfigError(`no current cluster in ${path ?? 'the in-cluster configuration'}`);
  }
  if (path === null && cluster.server.includes('undefined')) {
    // loadFromCluster does not fail outside a pod; it builds "https://undefined:undefined".
    throw new KubeConfigError('not running in a cluster (KUBERNETES_SERVICE_HOST is unset): pass --kubeconfig PATH');
  }
  return config;
}

/** Items per LIST page: what client-go's reflectors use, a few hundred KiB of JSON per page. */
const PAGE_SIZE = 500;

export function createKubeApi(config: KubeConfig): KubeApi {
  const server = config.getCurrentCluster()?.server ?? '';
  return {
    async list(path, query, project, signal) {
      const items: ReturnType<typeof project>[] = [];
      let token = '';
      for (;;) {
        const url = new URL(server + path);
        for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
        url.searchParams.set('limit', String(PAGE_SIZE));
        if (token !== '') url.searchParams.set('continue', token);
        const context = new RequestContext(url.toString(), HttpMethod.GET);
        context.setHeaderParam('Accept', 'application/json');
        await config.applySecurityAuthentication(context);
        const response = await fetch(url, { method: 'GET', headers: context.getHeaders(), dispatcher: context.getDispatcher(), signal });
        if (response.status !== 200) {
          const body = await response.text().catch(() => '');
          throw new KubeApiError(response.status, `LIST ${path}: HTTP ${response.status} ${statusMessage(body)}`.trim());
        }
        const page = (await response.json()) as { items?: unknown; metadata?: { resourceVersion?: unknown; continue?: unknown } };
        if (Array.isArray(page.items)) for (const raw of page.items) items.push(project(raw));
        const next = typeof page.metadata?.continue === 'string' ? page.metadata.continue : '';
        if (next === '') {
          const version = page.metadata?.resourceVersion;
          return { items, resourceVersion: typeof version === 'string' ? version : '' };
        }
        token = next;
      }
    },
    async get(path, signal) {
      const response = await authenticatedGet(config, new URL(server + path), signal);
      if (response.status === 404) {
        // Read the body anyway so that undici can reuse the connection.
        await response.text().catch(() => '');
        return null;
      }
      if (response.status !== 200) {
        const body = await response.text().catch(() => '');
        throw new KubeApiError(response.status, `GET ${path}: HTTP ${response.status} ${statusMessage(body)}`.trim());
      }
      return (await response.json()) as unknown;
    },
    async post(path, body, signal) {
      const url = new URL(server + path);
      const context = new RequestContext(url.toString(), HttpMethod.POST);
      context.setHeaderParam('Accept', 'application/json');
      context.setHeaderParam('Content-Type', 'application/json');
      await config.applySecurityAuthentication(context);
      const response = await fetch(url, { method: 'POST', headers: context.getHeaders(), body: JSON.stringify(body), dispatcher: context.getDispatcher(), signal });
      if (response.status !== 200 && response.status !== 201) {
        const text = await response.text().catch(() => '');
        throw new KubeApiError(response.status, `POST ${path}: HTTP ${response.status} ${statusMessage(text)}`.trim());
      }
      return (await response.json()) as unknown;
    },
    watchClient: (idleTimeoutMs) => {
      const watch = new Watch(config);
      // A private field in the typings (default 30 s) but the one knob Watch has; the stall test in
      // supervised-informer.test.ts fails if a release of client-node stops honouring it.
      (watch as unknown as { requestTimeoutMs: number }).requestTimeoutMs = idleTimeoutMs;
      return watch as unknown as WatchClient;
    },
  };
}

/** A GET with client-node's authentication (token, client certificate, TLS settings) applied. */
async function authenticatedGet(config: KubeConfig, url: URL, signal: AbortSignal): Promise<Response> {
  const context = new RequestContext(url.toString(), HttpMethod.GET);
  context.setHeaderParam('Accept', 'application/json');
  await config.applySecurityAuthentication(context);
  return fetch(url, { method: 'GET', headers: context.getHeaders(), dispatcher: context.getDispatcher(), signal });
}

/** The message of a Kubernetes Status body, or nothing when the body is not one. */
function statusMessage(body: string): string {
  try {
    const status = JSON.parse(body) as { message?: unknown };
    return typeof status.message === 'string' ? status.message : '';
  } catch {
    return '';
  }
}
