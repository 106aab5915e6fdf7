// Serving from the state file: start from it when the API does not answer in time, give way to the first sync, persist.

import type { EndpointRegistry } from '../registry/endpoint-registry.ts';
import type { ServiceSpec } from '../registry/endpoint.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Clock } from '../vocabulary/clock.ts';
import type { ErrorCode } from '../vocabulary/errors.ts';
import type { PodRecord } from './kube-objects.ts';
import type { PodRef } from './opt-in-index.ts';
import { type PersistedPod, type PersistedView, persistedPodRecords } from './persisted-view.ts';
import type { StateFileRead } from './state-file.ts';
import type { SyncGate } from './sync-gate.ts';
import { ViewPersister } from './view-persister.ts';

/**
 * How long a start waits for the first sync before it serves from the state file, counted from the start of
 * discovery; a failed LIST or watch (the API refused or dropped the connection) ends the wait at once. The acceptance
 * bound is 5 s from start to serving: before discovery come the process start and the admin listeners (about 1 s on
 * a busy 2-core node), after the wait reading the file, binding the proxy and applying the rules (well under 1 s), so
 * 2 s leaves about a second to spare even when the API server does not answer at all (a blackholed address). A
 * healthy API server lists a small cluster in well under 2 s, so with the API up the state file is not used; a big
 * cluster whose LISTs take longer is served from a view a few seconds old until they complete.
 */
export const STATE_FILE_FALLBACK_AFTER_MS = 2_000;
/** A change reaches the file within this time, and the file is rewritten at most this often. */
export const STATE_FILE_WRITE_INTERVAL_MS = 1_000;
/** After a failed write (a full disk, say), the next attempt. */
export const STATE_FILE_RETRY_MS = 10_000;

/**
 * `syncing`: waiting for the first sync (nothing served yet); `persisted`: serving from the state file while the
 * informers keep retrying; `synced`: the informers' view replaced it, and it is persisted from now on.
 */
export type LastKnownViewState =
  | { state: 'syncing' }
  | { state: 'persisted'; savedAtMs: number; services: number; pods: number }
  | { state: 'synced' }
  | { state: 'stopped' };

export interface LastKnownViewOptions {
  stateFile: { path: string; read(): Promise<StateFileRead>; write(view: PersistedView): Promise<number> };
  gate: Pick<SyncGate, 'open'>;
  registry: Pick<EndpointRegistry, 'keys' | 'get' | 'replaceAll' | 'subscribeBatches'>;
  /** This node's pods (through the CNI IP claims): the file's pods are loaded here. */
  optIn: { replacePods(records: readonly PodRecord[]): void };
  /** This node's opted-in pods, and their changes: what is persisted. */
  index: { readonly enrolled: ReadonlyMap<string, PodRef>; subscribe(listener: () => void): () => void };
  nodeName: string;
  timers: Clock;
  /** Wall-clock epoch ms: the file says when it was written. */
  wallClockMs: () => number;
  logger: Logger;
  countError: (code: ErrorCode) => void;
}

export class LastKnownView {
  state: LastKnownViewState = { state: 'syncing' };
  private readonly options: LastKnownViewOptions;
  private readonly log: Logger;
  private readonly persister: ViewPersister;
  private unsubscribe: Array<() => void> = [];

  constructor(options: LastKnownViewOptions) {
    this.options = options;
    this.log = options.logger.child({ component: 'state-file' });
    this.persister = new ViewPersister({
      write: (view) => options.stateFile.write(view),
      snapshot: () => this.snapshot(),
      timers: options.timers,
      logger: options.logger,
      countError: options.countError,
      intervalMs: STATE_FILE_WRITE_INTERVAL_MS,
      retryMs: STATE_FILE_RETRY_MS,
    });
  }

  /**
   * Resolves once the agent may serve: when `discovery.synced` resolves (the informers listed everything), or when it
   * has not by `discovery.startedAt` + STATE_FILE_FALLBACK_AFTER_MS, or `discovery.failing` resolved first, and the
   * state file holds a usable view, which is then loaded. Without one it waits for the sync as an agent without a
   * state file does.
   */
  async start(discovery: { startedAt: number; synced: Promise<void>; failing: Promise<void> }): Promise<void> {
    if (this.state.state !== 'syncing') throw new Error(`last known view: start() in state ${this.state.state}`);
    const { synced, failing, startedAt } = discovery;
    void synced.then(() => this.synced());
    let timer: unknown = null;
    const waited = new Promise<'late'>((resolve) => {
      const leftMs = Math.max(0, startedAt + STATE_FILE_FALLBACK_AFTER_MS - this.options.timers.now());
      timer = this.options.timers.setTimeout(() => resolve('late'), leftMs);
    });
    const first = await Promise.race([synced.then(() => 'synced' as const), failing.then(() => 'failing' as const), waited]);
    this.options.timers.clearTimeout(timer);
    if (first === 'synced' || (await this.loadStateFile(first))) return;
    await synced;
  }

  status(api: unknown): unknown {
    const { state } = this;
    if (state.state !== 'persisted') return api;
    return {
      state: 'persisted',
      savedAt: new Date(state.savedAtMs).toISOString(),
      services: state.services,
      pods: state.pods,
      stateFile: this.options.stateFile.path,
      api,
    };
  }

  stop(): void {
    this.state = { state: 'stopped' };
    this.persister.stop();
    for (const unsubscribe of this.unsubscribe) unsubscribe();
    this.unsubscribe = [];
  }

  /** Loads the file into the registry and the index when it is usable; says whether it did. */
  private async loadStateFile(why: 'failing' | 'late'): Promise<boolean> {
    const { stateFile, registry, optIn, nodeName } = this.options;
    const read = await stateFile.read();
    if (this.state.state !== 'syncing') return this.state.state === 'synced';
    const waited = why === 'late' ? `no answer within ${STATE_FILE_FALLBACK_AFTER_MS} ms` : 'the API failed';
    if (read.state === 'missing') {
      this.log.info({ path: stateFile.path, waited }, 'no first sync yet and no state file: waiting for the Kubernetes API');
      return false;
    }
    if (read.state === 'rejected') {
      const { code, reason } = read.rejection;
      this.options.countError(code);
      this.log.error({ code, path: stateFile.path, err: reason }, 'state file not used: waiting for the Kubernetes API');
      return false;
    }
    const { view } = read;
    registry.replaceAll(view.services);
    optIn.replacePods(persistedPodRecords(view.pods, nodeName));
    this.state = { state: 'persisted', savedAtMs: view.savedAtMs, services: view.services.length, pods: view.pods.length };
    const ageMs = Math.max(0, this.options.wallClockMs() - view.savedAtMs);
    this.options.countError('ML_SERVING_FROM_STATE_FILE');
    this.log.warn(
      { code: 'ML_SERVING_FROM_STATE_FILE', path: stateFile.path, savedAt: new Date(view.savedAtMs).toISOString(), ageMs, services: view.services.length, pods: view.pods.length, waited },
      'no first sync yet: serving from the state file until the Kubernetes API answers',
    );
    return true;
  }

  /** The informers listed everything: their view replaces whatever is held, and persisting starts. */
  private synced(): void {
    if (this.state.state === 'stopped') return;
    const was = this.state;
    this.options.gate.open();
    this.state = { state: 'synced' };
    if (was.state === 'persisted') this.log.info({ savedAt: new Date(was.savedAtMs).toISOString() }, 'first sync done: the state file\'s view is replaced');
    const changed = (): void => this.persister.changed();
    this.unsubscribe = [this.options.registry.subscribeBatches(changed), this.options.index.subscribe(changed)];
    // Even an empty view is written: it is the cluster's, and it replaces an older file.
    changed();
  }

  private snapshot(): PersistedView {
    const { registry } = this.options;
    const services: ServiceSpec[] = [];
    for (const key of registry.keys()) {
      const service = registry.get(key);
      if (service !== undefined) services.push(service);
    }
    return { savedAtMs: this.options.wallClockMs(), nodeName: this.options.nodeName, services, pods: podsOf(this.options.index.enrolled) };
  }
}

/** Enrolled IPs grouped by pod, in the order first seen. */
export function podsOf(enrolled: ReadonlyMap<string, PodRef>): PersistedPod[] {
  const pods = new Map<string, PersistedPod>();
  for (const [ip, ref] of enrolled) {
    const key = `${ref.namespace}/${ref.name}`;
    const pod = pods.get(key);
    if (pod === undefined) pods.set(key, { namespace: ref.namespace, name: ref.name, ips: [ip] });
    else pod.ips.push(ip);
  }
  return [...pods.values()];
}
