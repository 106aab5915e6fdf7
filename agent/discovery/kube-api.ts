// The Kubernetes API as discovery uses it: a paged LIST, a GET of one object, a WATCH stream, and a POST for the preflight.

import type { IncomingMessage } from 'node:http';
import { type KubeClientConfig, KubeConfigError, loadKubeConfig } from './kube-config.ts';
import { KubeHttp, readText } from './kube-http.ts';

export { type KubeClientConfig, KubeConfigError, loadKubeConfig };

/** What a WATCH stream tells its owner. None of these is called after `abort()`. */
export interface WatchHandlers {
  /** One event: its type (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR) and its object, as the API sent them. */
  event(type: string, object: unknown): void;
  /** Bytes arrived (an event, part of a large one, a bookmark): the stream is alive. */
  activity(): void;
  /** The stream ended: null when the server ended it cleanly, else why (a broken connection, a line that is not an event). */
  end(error: Error | null): void;
}

export interface WatchStream {
  /** Closes the stream; no handler is called any more. */
  abort(): void;
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
  /** WATCH `path` (`watch=true` and the query): resolves once the API answered 200, with the open stream; rejects
   *  with KubeApiError on another status (410 Gone: the resourceVersion is too old), or the signal's reason. */
  watch(path: string, query: Record<string, string>, handlers: WatchHandlers, signal: AbortSignal): Promise<WatchStream>;
}

/** An error status from the API server; `statusCode` is the HTTP status (410 on a watch: relist). */
export class KubeApiError extends Error {
  readonly statusCode: number;
  constructor(statusCode: number, message: string) {
    super(message);
    this.name = 'KubeApiError';
    this.statusCode = statusCode;
  }
}

/** Items per LIST page: what client-go's reflectors use, a few hundred KiB of JSON per page. */
const PAGE_SIZE = 500;

function withQuery(path: string, query: Record<string, string>): string {
  const search = new URLSearchParams(query).toString();
  return search === '' ? path : `${path}?${search}`;
}

/** Reads a non-success answer's Status message into a KubeApiError. */
async function statusError(verb: string, path: string, response: IncomingMessage): Promise<KubeApiError> {
  const body = await readText(response).catch(() => '');
  const status = response.statusCode ?? 0;
  return new KubeApiError(status, `${verb} ${path}: HTTP ${status} ${statusMessage(body)}`.trim());
}

export function createKubeApi(config: KubeClientConfig): KubeApi {
  const http = new KubeHttp(config);
  return {
    async list(path, query, project, signal) {
      const items: ReturnType<typeof project>[] = [];
      let token = '';
      for (;;) {
        const pageQuery: Record<string, string> = { ...query, limit: String(PAGE_SIZE) };
        if (token !== '') pageQuery.continue = token;
        const response = await http.request({ method: 'GET', path: withQuery(path, pageQuery), signal });
        if (response.statusCode !== 200) throw await statusError('LIST', path, response);
        const page = JSON.parse(await readText(response, signal)) as { items?: unknown; metadata?: { resourceVersion?: unknown; continue?: unknown } };
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
      const response = await http.request({ method: 'GET', path, signal });
      if (response.statusCode === 404) {
        // Read the body anyway so that the connection is reused.
        await readText(response).catch(() => '');
        return null;
      }
      if (response.statusCode !== 200) throw await statusError('GET', path, response);
      return JSON.parse(await readText(response, signal)) as unknown;
    },
    async post(path, body, signal) {
      const response = await http.request({ method: 'POST', path, body: JSON.stringify(body), signal });
      if (response.statusCode !== 200 && response.statusCode !== 201) throw await statusError('POST', path, response);
      return JSON.parse(await readText(response, signal)) as unknown;
    },
    async watch(path, query, handlers, signal) {
      const response = await http.request({ method: 'GET', path: withQuery(path, { ...query, watch: 'true' }), signal });
      if (response.statusCode !== 200) throw await statusError('WATCH', path, response);
      return streamEvents(response, handlers);
    },
  };
}

/** Splits a watch response into its events: one JSON object per line, `{"type": …, "object": …}`. */
function streamEvents(response: IncomingMessage, handlers: WatchHandlers): WatchStream {
  let ended = false;
  let pending = '';
  const finish = (error: Error | null): void => {
    if (ended) return;
    ended = true;
    response.destroy();
    handlers.end(error);
  };
  response.setEncoding('utf8');
  response.on('data', (chunk: string) => {
    if (ended) return;
    handlers.activity();
    pending += chunk;
    let newline = pending.indexOf('\n');
    while (newline >= 0 && !ended) {
      const line = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      newline = pending.indexOf('\n');
      if (line === '') continue;
      let event: { type?: unknown; object?: unknown };
      try {
        event = JSON.parse(line) as { type?: unknown; object?: unknown };
      } catch {
        // Resuming from the last resourceVersion gets this event again, whole.
        finish(new Error(`a watch line is not JSON: ${line.slice(0, 80)}`));
        return;
      }
      if (typeof event.type !== 'string') {
        finish(new Error(`a watch line is not an event: ${line.slice(0, 80)}`));
        return;
      }
      handlers.event(event.type, event.object);
    }
  });
  response.once('end', () => finish(null));
  response.once('error', (error) => finish(new Error(`the watch broke off: ${error.message}`, { cause: error })));
  response.once('close', () => finish(response.complete ? null : new Error('the API server closed the watch connection abruptly')));
  return {
    abort() {
      ended = true;
      response.destroy();
    },
  };
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
