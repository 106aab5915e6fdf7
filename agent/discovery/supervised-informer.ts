// One watched resource kept in sync under supervision: client-node's ListWatch, restarted with backoff after any error.

import { ListWatch } from '@kubernetes/client-node';
import type { ErrorCode } from '../vocabulary/errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import { type BackoffPolicy, backoffDelay } from '../vocabulary/backoff.ts';
import type { KubeApi, WatchClient } from './kube-api.ts';
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

export class SupervisedInformer<R extends RecordBase> {
  state: InformerState = { state: 'idle' };
  /** The first complete LIST has been delivered: readiness waits for this on every informer. */
  synced = false;
  private readonly options: SupervisedInformerOptions<R>;
  private readonly log: Logger;
  private readonly informer: ListWatch<R & { metadata: { name: string; namespace: string; resourceVersion: string } }>;
  private readonly watcher: WatchClient;
  private restartTimer: unknown = null;
  private syncWaiters: Array<() => void> = [];

  constructor(options: SupervisedInformerOptions<R>) {
    this.options = options;
    const { spec } = options;
    this.log = options.logger.child({ component: 'informer', resource: spec.resource });
    this.watcher = options.api.watchClient(options.watchIdleTimeoutMs);
    this.informer = new ListWatch(
      spec.path,
      // ListWatch only calls watch(); anything with that method will do, and ours projects every event.
      { watch: this.watch.bind(this) } as never,
      () => this.list() as never,
      false,
      undefined,
      spec.fieldSelector,
    );
    this.informer.on('add', (record) => this.deliver('apply', record));
    this.informer.on('update', (record) => this.deliver('apply', record));
    this.informer.on('delete', (record) => this.deliver('delete', record));
    this.informer.on('connect', () => {
      if (this.state.state !== 'failed' && this.state.state !== 'stopped') this.transition({ state: 'syncing' });
    });
    this.informer.on('error', (error) => this.failed(error));
  }

  get resource(): string {
    return this.options.spec.resource;
  }

  start(): void {
    if (this.state.state !== 'idle') throw new Error(`informer ${this.options.spec.resource}: start() in state ${this.state.state}`);
    void this.informer.start();
  }

  /** Resolves once the first complete LIST was delivered (at once when it was). */
  whenSynced(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  /** The objects as last seen (the informer's cache). */
  records(): readonly R[] {
    return this.informer.list();
  }

  stop(): void {
    if (this.state.state === 'stopped') return;
    this.transition({ state: 'stopped' });
    if (this.restartTimer !== null) this.options.timers.clearTimeout(this.restartTimer);
    this.restartTimer = null;
    void this.informer.stop();
  }

  private async list(): Promise<{ items: R[]; metadata: { resourceVersion: string } }> {
    const { spec, api, timers, listTimeoutMs } = this.options;
    const abort = new AbortController();
    const timer = timers.setTimeout(() => abort.abort(new Error(`no answer within ${listTimeoutMs} ms`)), listTimeoutMs);
    try {
      const query: Record<string, string> = {};
      if (spec.fieldSelector !== undefined) query.fieldSelector = spec.fieldSelector;
      const { items, resourceVersion } = await api.list(spec.path, query, spec.project, abort.signal);
      return { items, metadata: { resourceVersion } };
    } catch (error) {
      const reason = abort.signal.aborted ? (abort.signal.reason as Error).message : (error as Error).message;
      throw new InformerFailure('ML_KUBE_LIST_FAILED', `LIST ${spec.path}: ${reason}`, error);
    } finally {
      timers.clearTimeout(timer);
    }
  }

  /** Called by ListWatch after every LIST (so the list is delivered by now) and to resume after a clean close. */
  private async watch(
    path: string,
    params: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, object: unknown, event?: unknown) => void,
    done: (error: unknown) => void,
  ): Promise<AbortController> {
    this.markSynced();
    const { spec, random } = this.options;
    const span = WATCH_TIMEOUT_SECONDS.max - WATCH_TIMEOUT_SECONDS.min;
    const query = {
      ...params,
      allowWatchBookmarks: true,
      timeoutSeconds: WATCH_TIMEOUT_SECONDS.min + Math.floor(random() * span),
    };
    let opened = false;
    let finished = false;
    const project = (phase: string, object: unknown, event?: unknown): void => {
      // BOOKMARK and ERROR objects are not the resource: ListWatch reads only their resourceVersion or code.
      callback(phase, phase === 'ADDED' || phase === 'MODIFIED' || phase === 'DELETED' ? spec.project(object) : object, event);
    };
    const finish = (error: unknown): void => {
      finished = true;
      // Before the watch opened, any failure (a timeout included, which ListWatch would otherwise retry at once and
      // silently) is an outage to report and back off from.
      if (error !== null && error !== undefined && !opened) {
        done(new InformerFailure('ML_KUBE_WATCH_FAILED', `WATCH ${path}: ${describeError(error)}`, error));
      } else {
        done(error);
      }
    };
    const controller = await this.watcher.watch(path, query, project, finish);
    if (!finished) {
      opened = true;
      if (this.state.state !== 'stopped') this.transition({ state: 'watching' });
    }
    return controller;
  }

  private markSynced(): void {
    if (this.synced) return;
    this.synced = true;
    this.log.info({ objects: this.informer.list().length }, 'initial list synced');
    for (const resolve of this.syncWaiters) resolve();
    this.syncWaiters = [];
  }

  private deliver(kind: 'apply' | 'delete', record: R): void {
    // An exception here would be swallowed by the watch's line parser, or abort a LIST half-applied: contain it.
    try {
      this.options.handlers[kind](record);
    } catch (error) {
      this.log.error({ code: 'ML_INTERNAL', err: error, name: record.metadata.name, namespace: record.metadata.namespace }, 'handling an object failed');
    }
  }

  private failed(error: unknown): void {
    if (this.state.state === 'stopped') return;
    const failure = error instanceof InformerFailure ? error : new InformerFailure('ML_KUBE_WATCH_FAILED', describeError(error), error);
    const failures = this.state.state === 'failed' ? this.state.failures + 1 : 1;
    const since = this.state.state === 'failed' ? this.state.since : this.options.timers.now();
    this.transition({ state: 'failed', code: failure.code, reason: failure.message, since, failures });
    const retryInMs = backoffDelay(this.options.backoff, failures, this.options.random);
    this.log.warn({ code: failure.code, err: failure.message, failures, retryInMs }, 'Kubernetes API unavailable; keeping the last known objects');
    this.restartTimer = this.options.timers.setTimeout(() => {
      this.restartTimer = null;
      if (this.state.state === 'failed') void this.informer.start();
    }, retryInMs);
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
  readonly statusCode: number | undefined;
  constructor(code: ErrorCode, message: string, cause: unknown) {
    super(message, { cause });
    this.code = code;
    // ListWatch relists (rather than failing) when it sees 410 here.
    const status = (cause as { statusCode?: unknown } | null)?.statusCode;
    this.statusCode = typeof status === 'number' ? status : undefined;
  }
}

function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code ?? (error.cause as { code?: unknown } | undefined)?.code;
    return typeof code === 'string' ? `${error.message} (${code})` : error.message;
  }
  return String(error);
}
