// One watched resource kept in sync under supervision: LIST, then WATCH from its resourceVersion, resumed or relisted as
// the API asks, and restarted with backoff after any error.

import type { ErrorCode } from '../vocabulary/errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import { type BackoffPolicy, backoffDelay } from '../vocabulary/backoff.ts';
import type { KubeApi, WatchStream } from './kube-api.ts';
import { InformerCache } from './informer-cache.ts';
import type { RecordBase } from './kube-objects.ts';
import type { Clock } from '../vocabulary/clock.ts';

export interface InformerSpec<R extends RecordBase> {
  /** The resource's plural name, for logs and metrics: services, endpointslices, pods, namespaces. */
  resource: string;
  /** The collection's path, e.g. /api/v1/services (all namespaces). */
  path: string;
  fieldSelector?: string;
  project: (raw: unknown) => R;
}

export interface InformerHandlers<R> {
  /** A new object, or a new version of one. */
  apply(record: R): void;
  /** The object is gone (a DELETED event, or absent from a relist); `record` is its last known version. */
  delete(record: R): void;
  /** Every change of state, after it happened, and every further failure while failed. */
  stateChanged(state: InformerState): void;
}

export interface SupervisedInformerOptions<R extends RecordBase> {
  spec: InformerSpec<R>;
  api: KubeApi;
  handlers: InformerHandlers<R>;
  timers: Clock;
  random: () => number;
  logger: Logger;
  backoff: BackoffPolicy;
  /** A LIST that takes longer fails (ML_KUBE_LIST_FAILED) and is retried: a stalled API server is an outage too. */
  listTimeoutMs: number;
  /** A watch that has not answered within this time counts as failed (ML_KUBE_WATCH_FAILED); an open one that
   *  stays silent this long (no event, no bookmark) is reopened from its resourceVersion. */
  watchIdleTimeoutMs: number;
}

/**
 * `syncing`: listing, or (re)opening the watch; `watching`: the watch is open; `failed`: the last attempt failed and
 * a restart is scheduled (this is "degraded": the last known objects stay in use); a failed informer stays failed
 * through its retries until one succeeds.
 */
export type InformerState =
  | { state: 'idle' }
  | { state: 'syncing' }
  | { state: 'watching' }
  | { state: 'failed'; code: ErrorCode; reason: string; since: number; failures: number }
  | { state: 'stopped' };

type StateName = InformerState['state'];

const LEGAL: Record<StateName, readonly StateName[]> = {
  idle: ['syncing', 'failed', 'stopped'],
  syncing: ['syncing', 'watching', 'failed', 'stopped'],
  watching: ['syncing', 'failed', 'stopped'],
  failed: ['watching', 'failed', 'stopped'],
  stopped: [],
};

/** How long a relisted or resumed watch is allowed to run before the server ends it: spread so that many agents do
 *  not come back in step (client-go uses 5–10 minutes the same way). */
const WATCH_TIMEOUT_SECONDS = { min: 300, max: 600 };

/**
 * LIST when there is no resourceVersion to resume from (the first start, and after 410 Gone), then WATCH from it with
 * bookmarks. How a watch ends decides what comes next:
 * - the server ends it cleanly (its timeoutSeconds, a graceful API server restart): resumed from the last
 *   resourceVersion at once; a clean close of a watch that delivered nothing, after another such, waits (backoff)
 *   first, so that a server or proxy that closes every watch at once is not hammered;
 * - silent for watchIdleTimeoutMs (no event, no bookmark): abandoned and resumed at once (the silence already waited);
 * - 410 Gone (the watch's HTTP status, or an ERROR event): the history was compacted; relisted at once, with a delete
 *   for every object that vanished meanwhile;
 * - anything else (refused, broken, another status or ERROR event, no answer in time): failed, retried with backoff
 *   from the last resourceVersion.
 */
export class SupervisedInformer<R extends RecordBase> {
  state: InformerState = { state: 'idle' };
  /** The first complete LIST has been delivered: readiness waits for this on every informer. */
  synced = false;
  private readonly options: SupervisedInformerOptions<R>;
  private readonly log: Logger;
  private readonly cache = new InformerCache<R>();
  /** Where the next watch starts; '' means a LIST first. */
  private resourceVersion = '';
  /** The LIST or the opening watch request in flight. */
  private pending: AbortController | null = null;
  /** Counts watches: handlers of an abandoned one see another number and do nothing. */
  private watchId = 0;
  private stream: WatchStream | null = null;
  private idleTimer: unknown = null;
  private lastActivity = 0;
  private restartTimer: unknown = null;
  /** Clean closes in a row of watches that delivered no event. */
  private emptyCloses = 0;
  private syncWaiters: Array<() => void> = [];

  constructor(options: SupervisedInformerOptions<R>) {
    this.options = options;
    this.log = options.logger.child({ component: 'informer', resource: options.spec.resource });
  }

  get resource(): string {
    return this.options.spec.resource;
  }

  start(): void {
    if (this.state.state !== 'idle') throw new Error(`informer ${this.options.spec.resource}: start() in state ${this.state.state}`);
    void this.cycle();
  }

  /** Resolves once the first complete LIST was delivered (at once when it was). */
  whenSynced(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  /** The objects as last seen (the informer's cache). */
  records(): readonly R[] {
    return this.cache.records();
  }

  stop(): void {
    if (this.state.state === 'stopped') return;
    this.transition({ state: 'stopped' });
    const { timers } = this.options;
    if (this.restartTimer !== null) timers.clearTimeout(this.restartTimer);
    this.restartTimer = null;
    this.pending?.abort(new Error('stopped'));
    this.pending = null;
    this.abandonWatch();
  }

  private get stopped(): boolean {
    return this.state.state === 'stopped';
  }

  private async cycle(): Promise<void> {
    this.restartTimer = null;
    if (this.stopped) return;
    if (this.state.state !== 'failed') this.transition({ state: 'syncing' });
    if (this.resourceVersion === '') {
      let listed: { items: R[]; resourceVersion: string };
      try {
        listed = await this.list();
      } catch (error) {
        this.failed(error);
        return;
      }
      if (this.stopped) return;
      const { applied, deleted } = this.cache.replace(listed.items);
      for (const record of deleted) this.deliver('delete', record);
      for (const record of applied) this.deliver('apply', record);
      this.resourceVersion = listed.resourceVersion;
    }
    this.markSynced();
    await this.openWatch();
  }

  private async list(): Promise<{ items: R[]; resourceVersion: string }> {
    const { spec, api, timers, listTimeoutMs } = this.options;
    const abort = new AbortController();
    this.pending = abort;
    const timer = timers.setTimeout(() => abort.abort(new Error(`no answer within ${listTimeoutMs} ms`)), listTimeoutMs);
    try {
      // resourceVersion=0: any recent state, served from the API server's watch cache instead of a quorum read of
      // etcd, as client-go's informers list. Every node runs an agent: on 5,000 nodes a rollout or a restart after
      // an outage is 5,000 LISTs of every Service and EndpointSlice (docs/performance.md, 5,000 nodes). The watch
      // that follows starts from the list's resourceVersion, so nothing between the two is missed.
      const query: Record<string, string> = { resourceVersion: '0' };
      if (spec.fieldSelector !== undefined) query.fieldSelector = spec.fieldSelector;
      return await api.list(spec.path, query, spec.project, abort.signal);
    } catch (error) {
      const reason = abort.signal.aborted ? (abort.signal.reason as Error).message : describeError(error);
      throw new InformerFailure('ML_KUBE_LIST_FAILED', `LIST ${spec.path}: ${reason}`, error);
    } finally {
      timers.clearTimeout(timer);
      if (this.pending === abort) this.pending = null;
    }
  }

  private async openWatch(): Promise<void> {
    const { spec, api, timers, random, watchIdleTimeoutMs } = this.options;
    const span = WATCH_TIMEOUT_SECONDS.max - WATCH_TIMEOUT_SECONDS.min;
    const query: Record<string, string> = {
      resourceVersion: this.resourceVersion,
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(WATCH_TIMEOUT_SECONDS.min + Math.floor(random() * span)),
    };
    if (spec.fieldSelector !== undefined) query.fieldSelector = spec.fieldSelector;
    const id = ++this.watchId;
    const live = (): boolean => id === this.watchId && !this.stopped;
    let delivered = false;
    let ended = false;
    const abort = new AbortController();
    this.pending = abort;
    // The same bound as an open watch's silence: a watch that gets no answer counts as failed.
    const timer = timers.setTimeout(() => abort.abort(new Error(`no answer within ${watchIdleTimeoutMs} ms`)), watchIdleTimeoutMs);
    this.lastActivity = timers.now();
    let stream: WatchStream;
    try {
      stream = await api.watch(
        spec.path,
        query,
        {
          event: (type, object) => {
            if (!live()) return;
            if (type !== 'ERROR') delivered = true;
            this.onEvent(type, object);
          },
          activity: () => {
            this.lastActivity = timers.now();
          },
          end: (error) => {
            ended = true;
            if (live()) this.watchEnded(error, delivered);
          },
        },
        abort.signal,
      );
    } catch (error) {
      if (!live()) return;
      if ((error as { statusCode?: unknown }).statusCode === 410) {
        this.relist();
        return;
      }
      const reason = abort.signal.aborted ? (abort.signal.reason as Error).message : describeError(error);
      this.failed(new InformerFailure('ML_KUBE_WATCH_FAILED', `WATCH ${spec.path}: ${reason}`, error));
      return;
    } finally {
      timers.clearTimeout(timer);
      if (this.pending === abort) this.pending = null;
    }
    if (!live()) {
      stream.abort();
      return;
    }
    if (ended) return;
    this.stream = stream;
    this.transition({ state: 'watching' });
    this.armIdleTimer(id, watchIdleTimeoutMs);
  }

  /** Checks the watch's silence when it may have lasted `ms`; re-armed for the rest while bytes keep arriving. */
  private armIdleTimer(id: number, ms: number): void {
    const { timers, watchIdleTimeoutMs } = this.options;
    this.idleTimer = timers.setTimeout(() => {
      this.idleTimer = null;
      if (id !== this.watchId || this.stopped) return;
      const quietMs = timers.now() - this.lastActivity;
      if (quietMs < watchIdleTimeoutMs) {
        this.armIdleTimer(id, watchIdleTimeoutMs - quietMs);
        return;
      }
      this.log.info({ quietMs: Math.round(quietMs) }, 'watch silent past its idle timeout; reopening it');
      this.abandonWatch();
      this.emptyCloses = 0;
      void this.cycle();
    }, ms);
  }

  /** Closes the current watch, if any; its handlers do nothing from now on. */
  private abandonWatch(): void {
    this.watchId++;
    if (this.idleTimer !== null) this.options.timers.clearTimeout(this.idleTimer);
    this.idleTimer = null;
    this.stream?.abort();
    this.stream = null;
  }

  private onEvent(type: string, object: unknown): void {
    const { spec } = this.options;
    if (type === 'ERROR') {
      const status = object as { code?: unknown; message?: unknown } | null;
      if (status?.code === 410) {
        this.relist();
        return;
      }
      this.abandonWatch();
      const what = `${typeof status?.code === 'number' ? status.code : 'no code'}: ${typeof status?.message === 'string' ? status.message : 'no message'}`;
      this.failed(new InformerFailure('ML_KUBE_WATCH_FAILED', `WATCH ${spec.path}: ERROR event ${what}`, null));
      return;
    }
    if (type === 'ADDED' || type === 'MODIFIED') {
      const record = spec.project(object);
      if (this.cache.apply(record)) this.deliver('apply', record);
    } else if (type === 'DELETED') {
      const record = spec.project(object);
      if (this.cache.delete(record)) this.deliver('delete', record);
    } else if (type !== 'BOOKMARK') {
      return;
    }
    const version = (object as { metadata?: { resourceVersion?: unknown } } | null)?.metadata?.resourceVersion;
    if (typeof version === 'string' && version !== '') this.resourceVersion = version;
  }

  /** The history from our resourceVersion is gone: a fresh LIST, at once. */
  private relist(): void {
    this.abandonWatch();
    this.resourceVersion = '';
    this.emptyCloses = 0;
    void this.cycle();
  }

  private watchEnded(error: Error | null, delivered: boolean): void {
    const { spec, timers, backoff, random } = this.options;
    // The stream is over already: nothing to abort.
    this.stream = null;
    this.abandonWatch();
    if (error !== null) {
      this.failed(new InformerFailure('ML_KUBE_WATCH_FAILED', `WATCH ${spec.path}: ${describeError(error)}`, error));
      return;
    }
    this.emptyCloses = delivered ? 0 : this.emptyCloses + 1;
    if (this.emptyCloses <= 1) {
      void this.cycle();
      return;
    }
    if (this.state.state !== 'failed') this.transition({ state: 'syncing' });
    this.restartTimer = timers.setTimeout(() => void this.cycle(), backoffDelay(backoff, this.emptyCloses - 1, random));
  }

  private markSynced(): void {
    if (this.synced) return;
    this.synced = true;
    this.log.info({ objects: this.cache.size }, 'initial list synced');
    for (const resolve of this.syncWaiters) resolve();
    this.syncWaiters = [];
  }

  private deliver(kind: 'apply' | 'delete', record: R): void {
    // An exception here would break the watch's event loop, or abort a LIST half-applied: contain it.
    try {
      this.options.handlers[kind](record);
    } catch (error) {
      this.log.error({ code: 'ML_INTERNAL', err: error, name: record.metadata.name, namespace: record.metadata.namespace }, 'handling an object failed');
    }
  }

  private failed(error: unknown): void {
    if (this.stopped) return;
    const failure = error instanceof InformerFailure ? error : new InformerFailure('ML_KUBE_WATCH_FAILED', describeError(error), error);
    const failures = this.state.state === 'failed' ? this.state.failures + 1 : 1;
    const since = this.state.state === 'failed' ? this.state.since : this.options.timers.now();
    this.transition({ state: 'failed', code: failure.code, reason: failure.message, since, failures });
    const retryInMs = backoffDelay(this.options.backoff, failures, this.options.random);
    this.log.warn({ code: failure.code, err: failure.message, failures, retryInMs }, 'Kubernetes API unavailable; keeping the last known objects');
    this.restartTimer = this.options.timers.setTimeout(() => void this.cycle(), retryInMs);
  }

  private transition(next: InformerState): void {
    const from = this.state;
    if (!LEGAL[from.state].includes(next.state)) {
      throw new Error(`informer ${this.options.spec.resource}: illegal transition ${from.state} → ${next.state}`);
    }
    this.state = next;
    if (from.state === 'failed' && next.state === 'watching') {
      this.log.info({ downMs: Math.round(this.options.timers.now() - from.since), failures: from.failures }, 'Kubernetes API reachable again');
    }
    if (from.state !== next.state || next.state === 'failed') this.options.handlers.stateChanged(next);
  }
}

/** A failure with the error code it is reported under. */
class InformerFailure extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, cause: unknown) {
    super(message, { cause });
    this.code = code;
  }
}

function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code ?? (error.cause as { code?: unknown } | undefined)?.code;
    return typeof code === 'string' && !error.message.includes(code) ? `${error.message} (${code})` : error.message;
  }
  return String(error);
}
