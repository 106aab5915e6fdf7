// Holds what the informers deliver until their first complete sync, then makes it the whole view at once.

import { EndpointRegistry } from '../registry/endpoint-registry.ts';
import type { EndpointChanges, ServiceSpec } from '../registry/endpoint.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { NamespaceRecord, PodRecord } from './kube-objects.ts';
import type { OptInSink } from './kubernetes-source.ts';
import type { ServiceStore } from './service-index.ts';

/** `holding`: before the first sync, informer events are staged here (the registry and the opt-in index may hold
 *  the state file's view meanwhile); `open`: every event goes straight through. */
export type SyncGateState = { state: 'holding' } | { state: 'open' };

export interface SyncGateOptions {
  registry: Pick<EndpointRegistry, 'get' | 'upsert' | 'patch' | 'remove' | 'replaceAll'>;
  /** This node's pods: the CNI IP claims in front of the opt-in index. */
  optIn: OptInSink & { replacePods(records: readonly PodRecord[]): void };
  logger: Logger;
}

/**
 * Sits between the Kubernetes source and the registry and opt-in index when a state file is in use. While the
 * agent serves from the state file, a half-listed view must not leak into it: the Services LIST lands before the
 * EndpointSlices LIST, and applied alone it would empty every service's endpoints until the slices came. So the
 * informers' first view is staged whole, and open() replaces the registry's services and the index's pods with it
 * in one call each (what vanished while the agent was away goes then, and nothing in between). Without a state
 * file the registry simply fills at the same moment, just before the agent would start serving anyway.
 */
export class SyncGate implements ServiceStore, OptInSink {
  state: SyncGateState = { state: 'holding' };
  private readonly options: SyncGateOptions;
  /** The staged services: a registry nobody subscribes to, so that patches cost what they change here too. */
  private readonly services = new EndpointRegistry();
  private readonly pods = new Map<string, PodRecord>();
  private readonly namespaces = new Map<string, NamespaceRecord>();

  constructor(options: SyncGateOptions) {
    this.options = options;
  }

  get(key: string): ServiceSpec | undefined {
    return this.state.state === 'open' ? this.options.registry.get(key) : this.services.get(key);
  }

  upsert(service: ServiceSpec): void {
    if (this.state.state === 'open') this.options.registry.upsert(service);
    else this.services.upsert(service);
  }

  patch(key: string, changes: EndpointChanges): boolean {
    return this.state.state === 'open' ? this.options.registry.patch(key, changes) : this.services.patch(key, changes);
  }

  remove(key: string): boolean {
    return this.state.state === 'open' ? this.options.registry.remove(key) : this.services.remove(key);
  }

  applyPod(record: PodRecord): void {
    if (this.state.state === 'open') this.options.optIn.applyPod(record);
    else this.pods.set(`${record.metadata.namespace}/${record.metadata.name}`, record);
  }

  deletePod(record: PodRecord): void {
    if (this.state.state === 'open') this.options.optIn.deletePod(record);
    else this.pods.delete(`${record.metadata.namespace}/${record.metadata.name}`);
  }

  applyNamespace(record: NamespaceRecord): void {
    if (this.state.state === 'open') this.options.optIn.applyNamespace(record);
    else this.namespaces.set(record.metadata.name, record);
  }

  deleteNamespace(record: NamespaceRecord): void {
    if (this.state.state === 'open') this.options.optIn.deleteNamespace(record);
    else this.namespaces.delete(record.metadata.name);
  }

  /**
   * Called once every informer has listed: the staged view replaces whatever the registry and the index hold.
   * Namespaces go first, so that a pod opted in through its namespace is never out in between.
   */
  open(): void {
    if (this.state.state === 'open') throw new Error('sync gate: open() twice');
    this.state = { state: 'open' };
    const { registry, optIn, logger } = this.options;
    const failed: unknown[] = [];
    const attempt = (call: () => void): void => {
      try {
        call();
      } catch (error) {
        failed.push(error);
      }
    };
    const staged = this.services.keys().map((key) => this.services.get(key) as ServiceSpec);
    attempt(() => registry.replaceAll(staged));
    for (const record of this.namespaces.values()) attempt(() => optIn.applyNamespace(record));
    attempt(() => optIn.replacePods([...this.pods.values()]));
    // A subscriber of the registry or the index threw (a bug): as with an informer event, log it and go on.
    for (const error of failed) logger.error({ code: 'ML_INTERNAL', err: error, component: 'sync-gate' }, 'applying the first synced view failed');
    logger.debug({ services: this.services.size, pods: this.pods.size, namespaces: this.namespaces.size }, 'first synced view applied');
    this.services.replaceAll([]);
    this.pods.clear();
    this.namespaces.clear();
  }
}
