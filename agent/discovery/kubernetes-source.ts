// Kubernetes discovery: four supervised informers (Services, EndpointSlices, this node's Pods, Namespaces) feeding the indexes.

import type { ErrorCode } from '../vocabulary/errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { InformerStateName } from '../telemetry/discovery-metrics.ts';
import type { BackoffPolicy } from '../vocabulary/backoff.ts';
import type { KubeApi } from './kube-api.ts';
import type { EndpointSliceRecord, NamespaceRecord, PodRecord, RecordBase, ServiceRecord } from './kube-objects.ts';
import { projectEndpointSlice, projectNamespace, projectPod, projectService } from './kube-projection.ts';
import { type InformerSpec, type InformerState, SupervisedInformer } from './supervised-informer.ts';

/** Where Services and EndpointSlices go (discovery/service-index.ts). Slice handlers return the service keys whose
 *  endpoints changed, so that the time from the change to the new picker can be measured. */
export interface ServiceSink {
  applyService(record: ServiceRecord): void;
  deleteService(record: ServiceRecord): void;
  applySlice(record: EndpointSliceRecord): readonly string[];
  deleteSlice(record: EndpointSliceRecord): readonly string[];
}

/** Where this node's Pods and the Namespaces go (discovery/opt-in-index.ts). */
export interface OptInSink {
  applyPod(record: PodRecord): void;
  deletePod(record: PodRecord): void;
  applyNamespace(record: NamespaceRecord): void;
  deleteNamespace(record: NamespaceRecord): void;
}

export interface KubernetesSourceMetrics {
  informerState(resource: string, state: InformerStateName): void;
  setDegraded(degraded: boolean): void;
  observeChangeToPicker(seconds: number): void;
  countError(code: ErrorCode): void;
}

export interface KubernetesSourceOptions {
  api: KubeApi;
  nodeName: string;
  services: ServiceSink;
  optIn: OptInSink;
  metrics: KubernetesSourceMetrics;
  logger: Logger;
  timers: { now(): number; setTimeout(callback: () => void, ms: number): unknown; clearTimeout(handle: unknown): void };
  /** Wall-clock epoch ms, for last-change-trigger-time (set by the control plane's clock). */
  wallClockMs: () => number;
  random: () => number;
  backoff: BackoffPolicy;
  listTimeoutMs: number;
  watchIdleTimeoutMs: number;
}

/** `degraded`: at least one informer failed and is retrying; everything keeps working on the last known objects. */
export type DiscoveryStatus =
  | { state: 'syncing'; waitingFor: string[] }
  | { state: 'synced' }
  | { state: 'degraded'; failing: Array<{ resource: string; code: ErrorCode; reason: string; sinceMs: number }> };

/** The last endpoint change measured from its trigger time to the new picker: how long it took, and when (epoch ms). */
export interface ChangeToPicker {
  seconds: number;
  atMs: number;
}

export class KubernetesSource {
  private readonly options: KubernetesSourceOptions;
  private readonly log: Logger;
  private latestChange: ChangeToPicker | null = null;
  private readonly informers: Array<SupervisedInformer<RecordBase>> = [];
  private readonly slices: SupervisedInformer<EndpointSliceRecord>;
  private degraded = false;
  private failureWaiters: Array<() => void> = [];

  constructor(options: KubernetesSourceOptions) {
    this.options = options;
    this.log = options.logger.child({ component: 'kubernetes-source' });
    const { services, optIn } = options;
    this.add<ServiceRecord>(
      { resource: 'services', path: '/api/v1/services', project: projectService },
      (record) => services.applyService(record),
      (record) => services.deleteService(record),
    );
    this.slices = this.add<EndpointSliceRecord>(
      { resource: 'endpointslices', path: '/apis/discovery.k8s.io/v1/endpointslices', project: projectEndpointSlice },
      (record) => this.sliceChanged(record, services.applySlice(record)),
      (record) => this.sliceChanged(record, services.deleteSlice(record)),
    );
    this.add<PodRecord>(
      {
        resource: 'pods',
        path: '/api/v1/pods',
        // Only this node's pods: a node enrolls its own pods, and a big cluster's pods would cost every agent.
        fieldSelector: `spec.nodeName=${options.nodeName}`,
        project: projectPod,
      },
      (record) => optIn.applyPod(record),
      (record) => optIn.deletePod(record),
    );
    this.add<NamespaceRecord>(
      { resource: 'namespaces', path: '/api/v1/namespaces', project: projectNamespace },
      (record) => optIn.applyNamespace(record),
      (record) => optIn.deleteNamespace(record),
    );
  }

  /** Starts every informer; resolves once each has delivered its first complete LIST (readiness waits for this). */
  async start(): Promise<void> {
    for (const informer of this.informers) informer.start();
    await Promise.all(this.informers.map((informer) => informer.whenSynced()));
    this.log.info({ resources: this.informers.length }, 'Kubernetes discovery synced');
  }

  /** Resolves when an informer fails (at once when one is failing): the API did not answer, whatever comes next. */
  whenFailing(): Promise<void> {
    if (this.degraded) return Promise.resolve();
    return new Promise((resolve) => this.failureWaiters.push(resolve));
  }

  status(): DiscoveryStatus {
    const failing = [];
    for (const informer of this.informers) {
      const state = informer.state;
      if (state.state === 'failed') {
        failing.push({ resource: informer.resource, code: state.code, reason: state.reason, sinceMs: state.since });
      }
    }
    if (failing.length > 0) return { state: 'degraded', failing };
    const waitingFor = this.informers.filter((informer) => !informer.synced).map((informer) => informer.resource);
    return waitingFor.length > 0 ? { state: 'syncing', waitingFor } : { state: 'synced' };
  }

  /** The last measured endpoint change (the dashboard's header); null before the first one after the initial sync. */
  get latestChangeToPicker(): ChangeToPicker | null {
    return this.latestChange;
  }

  stop(): void {
    for (const informer of this.informers) informer.stop();
  }

  private add<R extends RecordBase>(spec: InformerSpec<R>, apply: (record: R) => void, remove: (record: R) => void): SupervisedInformer<R> {
    const informer: SupervisedInformer<R> = new SupervisedInformer<R>({
      spec,
      api: this.options.api,
      timers: this.options.timers,
      random: this.options.random,
      logger: this.options.logger,
      backoff: this.options.backoff,
      listTimeoutMs: this.options.listTimeoutMs,
      watchIdleTimeoutMs: this.options.watchIdleTimeoutMs,
      handlers: {
        apply: (record) => {
          this.reportInvalid(spec.resource, record);
          apply(record);
        },
        delete: remove,
        stateChanged: (state) => this.informerStateChanged(spec.resource, state),
      },
    });
    this.informers.push(informer as unknown as SupervisedInformer<RecordBase>);
    return informer;
  }

  /** Once per object version (the informer delivers a version once): a skipped object, or parts of one skipped. */
  private reportInvalid(resource: string, record: RecordBase): void {
    const warnings = record.warnings ?? [];
    if (record.invalid === null && warnings.length === 0) return;
    const { name, namespace, resourceVersion } = record.metadata;
    this.options.metrics.countError('ML_KUBE_OBJECT_INVALID');
    const fields = { code: 'ML_KUBE_OBJECT_INVALID', resource, namespace, name, resourceVersion };
    if (record.invalid !== null) this.log.error({ ...fields, err: record.invalid }, 'object skipped');
    else this.log.warn({ ...fields, skipped: warnings }, 'parts of the object skipped');
  }

  private sliceChanged(record: EndpointSliceRecord, changedKeys: readonly string[]): void {
    // The initial LIST delivers every slice as new, stamped with whenever it last changed (days ago, maybe): that is
    // the age of the cluster's state, not a propagation delay. A relist after an outage is measured: what changed
    // meanwhile did reach the pickers that late (and what did not change updates no key).
    if (!this.slices.synced) return;
    const trigger = record.lastChangeTriggerTimeMs;
    // Pickers are rebuilt synchronously by the registry's subscribers: by now the new one is in place.
    if (changedKeys.length === 0 || trigger === null) return;
    const atMs = this.options.wallClockMs();
    const seconds = Math.max(0, (atMs - trigger) / 1000);
    this.options.metrics.observeChangeToPicker(seconds);
    this.latestChange = { seconds, atMs };
  }

  private informerStateChanged(resource: string, state: InformerState): void {
    this.options.metrics.informerState(resource, state.state);
    if (state.state === 'failed') this.options.metrics.countError(state.code);
    const degraded = this.informers.some((informer) => informer.state.state === 'failed');
    if (degraded !== this.degraded) {
      this.degraded = degraded;
      this.options.metrics.setDegraded(degraded);
      if (degraded) {
        this.options.metrics.countError('ML_DISCOVERY_DEGRADED');
        this.log.warn({ code: 'ML_DISCOVERY_DEGRADED', status: this.status() }, 'discovery degraded: serving from the last known endpoints');
      }
      else this.log.info('discovery recovered');
    }
    if (degraded) {
      for (const resolve of this.failureWaiters) resolve();
      this.failureWaiters = [];
    }
  }
}
