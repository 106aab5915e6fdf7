// One WATCH stream of the test Kubernetes API server: initial or historical events, then live ones, bookmarks, timeout, 410 as an ERROR event.

import type { ServerResponse } from 'node:http';
import { awaitResourceVersion } from './kube-api-list.ts';
import { type ListOptions, type ObjectFilter, parseResourceVersion } from './kube-api-query.ts';
import type { ResourceInfo, ResourceName } from './kube-api-resources.ts';
import type { KubeApiStore, StoreEvent, StoredObject } from './kube-api-store.ts';
import { failureStatus, type KubeStatus, KubeStatusError } from './kube-api-status.ts';

export interface WatchContext {
  readonly store: KubeApiStore;
  readonly info: ResourceInfo;
  readonly filter: ObjectFilter;
  readonly options: ListOptions;
  /** Between BOOKMARK events when the client allows them (a real server: about a minute). */
  readonly bookmarkIntervalMs: number;
  readonly tooLargeResourceVersionWaitMs: number;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

function eventLine(type: WatchEventType, objectJson: string): string {
  return `{"type":"${type}","object":${objectJson}}\n`;
}

// A MODIFIED that takes an object out of a watcher's selection is sent as DELETED of the previous version stamped with
// the event's resourceVersion (the cacheWatcher's rule); made once per event, whatever the number of watchers.
const leavingVersions = new WeakMap<StoreEvent, StoredObject>();

/** Where a watch starts: the resourceVersion it has seen, and what it is sent first. */
type WatchStart =
  | { kind: 'initial-state'; bookmarkAtEnd: boolean }
  | { kind: 'error'; status: KubeStatus }
  | { kind: 'most-recent' }
  | { kind: 'after'; revision: number };

export class WatchStream {
  readonly resource: ResourceName;
  private readonly context: WatchContext;
  private readonly response: ServerResponse;
  private unsubscribe: (() => void) | undefined;
  private bookmarkTimer: NodeJS.Timeout | undefined;
  private timeoutTimer: NodeJS.Timeout | undefined;
  /** Events at or below this were sent (or are older than the start); bookmarks never go below it. */
  private seenRevision = 0;
  private corked = false;
  private closed = false;
  private readonly closeListeners: Array<() => void> = [];

  constructor(context: WatchContext, response: ServerResponse) {
    this.context = context;
    this.resource = context.info.name;
    this.response = response;
    response.on('close', () => this.cleanUp());
    // A write racing the socket's destruction must not become an unhandled 'error'.
    response.on('error', () => this.cleanUp());
  }

  /**
   * Resolves where to start (a malformed resourceVersion is still an HTTP 400), then answers 200 with the headers
   * flushed at once (client-node awaits them before it reads events) and streams events; later failures (410, 504)
   * are ERROR events, as from a real server.
   */
  async start(): Promise<void> {
    const watchStart = await this.resolveStart();
    if (this.closed) return;
    this.response.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
    this.response.flushHeaders();
    const { store, info, filter, options } = this.context;
    if (watchStart.kind === 'error') {
      this.endWithError(watchStart.status);
      return;
    }
    if (watchStart.kind === 'after') {
      const events = store.eventsAfter(info.name, watchStart.revision);
      if (events === undefined) {
        // A real server answers 200 and then one ERROR event carrying the 410, and ends the stream.
        const compacted = store.compactedResourceVersion(info.name);
        this.endWithError(failureStatus(410, 'Expired', `too old resource version: ${watchStart.revision} (${compacted})`));
        return;
      }
      this.seenRevision = watchStart.revision;
      this.write(events.map((event) => this.convert(event) ?? '').join(''));
    } else if (watchStart.kind === 'initial-state') {
      const lines = store
        .current(info.name)
        .filter((object) => filter.matches(object))
        .map((object) => eventLine('ADDED', object.json));
      this.write(lines.join(''));
    }
    this.seenRevision = Math.max(this.seenRevision, store.resourceVersion);
    if (watchStart.kind === 'initial-state' && watchStart.bookmarkAtEnd) {
      // The one bookmark a real server annotates: the end of the initial events of a watch-list (sendInitialEvents).
      this.write(this.bookmark({ 'k8s.io/initial-events-end': 'true' }));
    }
    this.unsubscribe = store.subscribe(info.name, (event) => {
      if (event.resourceVersion <= this.seenRevision) return;
      this.seenRevision = event.resourceVersion;
      const line = this.convert(event);
      if (line !== undefined) this.write(line);
    });
    if (options.allowWatchBookmarks) {
      this.bookmarkTimer = setInterval(() => this.write(this.bookmark()), this.context.bookmarkIntervalMs);
    }
    if (options.timeoutSeconds !== undefined && options.timeoutSeconds > 0) {
      this.timeoutTimer = setTimeout(() => this.end(), options.timeoutSeconds * 1000);
    }
  }

  /** Ends the stream cleanly (the terminating chunk): client-node resumes from its last resourceVersion. */
  end(): void {
    if (this.closed) return;
    this.cleanUp();
    this.uncork();
    this.response.end();
  }

  /** Destroys the connection mid-stream, as a crashed API server or a broken network does. */
  drop(): void {
    if (this.closed) return;
    this.cleanUp();
    if (this.response.socket !== null) this.response.socket.destroy();
    else this.response.destroy();
  }

  onClose(listener: () => void): void {
    if (this.closed) listener();
    else this.closeListeners.push(listener);
  }

  private async resolveStart(): Promise<WatchStart> {
    const { store, options } = this.context;
    const raw = options.resourceVersion;
    if (options.sendInitialEvents === true) {
      if (raw !== undefined && raw !== '0') {
        const requested = parseResourceVersion(raw);
        try {
          await awaitResourceVersion(store, requested, this.context.tooLargeResourceVersionWaitMs);
        } catch (error) {
          // Past validation, the watch cache reports a storage error as a watch event (newErrWatcher), not a status code.
          if (error instanceof KubeStatusError) return { kind: 'error', status: error.status };
          throw error;
        }
      }
      return { kind: 'initial-state', bookmarkAtEnd: true };
    }
    if (raw === undefined || raw === '0') {
      // "Get state and start at most recent" (unset) or "at any" ("0"): both begin with a synthetic ADDED per object.
      return options.sendInitialEvents === false ? { kind: 'most-recent' } : { kind: 'initial-state', bookmarkAtEnd: false };
    }
    // "Start at exact": every event after it. A future resourceVersion simply waits for its events, as the cache does.
    return { kind: 'after', revision: parseResourceVersion(raw) };
  }

  /** The event as this watcher sees it through its filter, or undefined if it does not concern it. */
  private convert(event: StoreEvent): string | undefined {
    const { filter } = this.context;
    const matchesNow = event.type !== 'DELETED' && filter.matches(event.object);
    const matchedBefore = event.previous !== undefined && filter.matches(event.previous);
    if (matchesNow) return eventLine(matchedBefore ? 'MODIFIED' : 'ADDED', event.object.json);
    if (!matchedBefore) return undefined;
    if (event.type === 'DELETED') return eventLine('DELETED', event.object.json);
    let leaving = leavingVersions.get(event);
    if (leaving === undefined) {
      leaving = this.context.store.restamp(this.resource, event.previous!, event.resourceVersion);
      leavingVersions.set(event, leaving);
    }
    return eventLine('DELETED', leaving.json);
  }

  private bookmark(annotations?: Record<string, string>): string {
    const { info, store } = this.context;
    // Every event of this resource up to the store's revision has been sent: like the watch cache's bookmarks (fed by
    // etcd progress notifications), a bookmark carries the global revision, so a quiet resource's watcher moves on too.
    this.seenRevision = Math.max(this.seenRevision, store.resourceVersion);
    const metadata = { resourceVersion: String(this.seenRevision), ...(annotations === undefined ? {} : { annotations }) };
    return eventLine('BOOKMARK', JSON.stringify({ kind: info.kind, apiVersion: info.apiVersion, metadata }));
  }

  private endWithError(status: KubeStatus): void {
    this.write(eventLine('ERROR', JSON.stringify(status)));
    this.end();
  }

  private write(text: string): void {
    if (this.closed || text === '') return;
    // Events of one tick (a bulk apply) go out as one chunk rather than one small write each.
    if (!this.corked) {
      this.corked = true;
      this.response.cork();
      process.nextTick(() => this.uncork());
    }
    this.response.write(text);
  }

  private uncork(): void {
    // Only this stream's own cork: once ended, the socket may already serve the connection's next request.
    if (!this.corked) return;
    this.corked = false;
    this.response.uncork();
  }

  private cleanUp(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe?.();
    clearInterval(this.bookmarkTimer);
    clearTimeout(this.timeoutTimer);
    for (const listener of this.closeListeners.splice(0)) listener();
  }
}
