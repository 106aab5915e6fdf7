// Endpoint sets per service key: stores discovery's snapshots and delivers the typed updates they imply to subscribers.

import { type AddressListener, AddressIndex } from './address-index.ts';
import type { EndpointCounts } from './endpoint-counts.ts';
import { type EndpointChanges, type EndpointSpec, endpointRank, isActive, type RegistryUpdate, type ServiceSpec } from './endpoint.ts';
import { HeldService, heldEndpoint } from './held-service.ts';
import { normalizeService } from './normalized-service.ts';
import { diffService, sameEndpoint } from './service-diff.ts';

export type RegistryListener = (update: RegistryUpdate) => void;
/** Gets every update of one registry call at once (a slice of 100 new pods is 100 `add`s): a balancer then builds
 *  one picker for all of them instead of one per endpoint. */
export type RegistryBatchListener = (updates: readonly RegistryUpdate[]) => void;

/**
 * Holds the current ServiceSpec of every service and tells subscribers what changed. Stored specs are frozen,
 * normalised copies (endpoints deduplicated by address), so a caller mutating its input later changes nothing.
 *
 * Order of the updates of one call: `delete` for every service gone (in the order they were first seen), then per
 * given service in input order: `reset` when it is new or a service-level field changed (the reset carries the
 * endpoints too, so no per-endpoint updates follow it), otherwise its `remove`s, then `drain`s, then `add`s. A call
 * that changes nothing emits nothing. State (including the address index) is fully updated before the first
 * update is delivered, so a listener that reads the registry sees the new state.
 *
 * Cost: upsert() and replaceAll() take whole specs and diff them, O(the service's size). patch() takes only what
 * changed (discovery's delta for one EndpointSlice event) and costs O(that change): endpoints are held by address
 * (registry/held-service.ts) and the spec handed out by get() is made again only when asked for after a change.
 */
export class EndpointRegistry {
  private readonly services = new Map<string, HeldService>();
  private listeners: RegistryListener[] = [];
  private batchListeners: RegistryBatchListener[] = [];
  /** Which service holds each ClusterIP:port and endpoint ip:port. */
  private readonly byAddress = new AddressIndex();

  /** A complete snapshot from discovery: services not in it are deleted. Throws (changing nothing) on a
   *  malformed spec or a duplicate key. */
  replaceAll(services: readonly ServiceSpec[]): void {
    const next = new Map<string, ServiceSpec>();
    for (const service of services) {
      const normalized = normalizeService(service);
      if (next.has(normalized.key)) throw new TypeError(`duplicate service ${normalized.key} in snapshot`);
      next.set(normalized.key, normalized);
    }
    const updates: RegistryUpdate[] = [];
    for (const [key, old] of this.services) {
      if (next.has(key)) continue;
      this.byAddress.unindex(old.spec);
      this.services.delete(key);
      updates.push({ type: 'delete', key });
    }
    for (const service of next.values()) this.store(service, updates);
    this.emit(updates);
  }

  /** One service's complete current state. */
  upsert(service: ServiceSpec): void {
    const updates: RegistryUpdate[] = [];
    this.store(normalizeService(service), updates);
    this.emit(updates);
  }

  /**
   * Changes some endpoints of a service held already, as upsert() of the whole changed spec would (the same updates:
   * removes, then drains, then adds, each kind in the order of `changes`), in time proportional to `changes`. An endpoint listed in the state
   * it has already changes nothing; an address not held is not unlisted. Returns false, changing nothing, when the
   * service is not held (the caller then upserts it whole).
   */
  patch(key: string, changes: EndpointChanges): boolean {
    const held = this.services.get(key);
    if (held === undefined) return false;
    const updates: RegistryUpdate[] = [];
    for (const address of changes.unlisted) {
      const old = held.endpoint(address);
      if (old === undefined) continue;
      held.unlist(address);
      this.byAddress.unclaimEndpoint(key, old.host, old.port);
      updates.push({ type: 'remove', key, address });
    }
    // One state per address: listed twice, the more usable one is kept, as normalizeService() does.
    const given = new Map<string, EndpointSpec>();
    for (const endpoint of changes.listed) {
      const seen = given.get(endpoint.address);
      if (seen === undefined || endpointRank(endpoint) > endpointRank(seen)) given.set(endpoint.address, endpoint);
    }
    const adds: RegistryUpdate[] = [];
    for (const next of given.values()) {
      const endpoint = heldEndpoint(next);
      const old = held.endpoint(endpoint.address);
      if (old !== undefined && sameEndpoint(old, endpoint)) continue;
      held.list(endpoint);
      if (old === undefined) {
        this.byAddress.claimEndpoint(key, endpoint.host, endpoint.port);
      } else if (old.host !== endpoint.host || old.port !== endpoint.port) {
        this.byAddress.unclaimEndpoint(key, old.host, old.port);
        this.byAddress.claimEndpoint(key, endpoint.host, endpoint.port);
      }
      if (old !== undefined && !isActive(endpoint)) updates.push({ type: 'drain', key, address: endpoint.address, endpoint });
      else adds.push({ type: 'add', key, endpoint });
    }
    for (const add of adds) updates.push(add);
    this.emit(updates);
    return true;
  }

  /** Returns whether the service was known. */
  remove(key: string): boolean {
    const old = this.services.get(key);
    if (old === undefined) return false;
    this.byAddress.unindex(old.spec);
    this.services.delete(key);
    this.emit([{ type: 'delete', key }]);
    return true;
  }

  get(key: string): ServiceSpec | undefined {
    return this.services.get(key)?.spec;
  }

  /** A service's endpoints by state (what meshlite_endpoints shows), without making its spec. */
  endpointCounts(key: string): EndpointCounts | undefined {
    return this.services.get(key)?.endpointCounts;
  }

  keys(): string[] {
    return [...this.services.keys()];
  }

  get size(): number {
    return this.services.size;
  }

  /**
   * The service a client meant when it dialled `ip:port` (transparent mode; see docs/architecture.md,
   * Interception): a ClusterIP:port, or an endpoint's ip:port (headless Services, socket-level ClusterIP
   * translation). When two services list the same endpoint address, the one that listed it first keeps it, so the
   * answer does not flap with unrelated updates.
   */
  lookupByAddress(ip: string, port: number): ServiceSpec | undefined {
    const key = this.byAddress.keyAt(ip, port);
    return key === undefined ? undefined : this.services.get(key)?.spec;
  }

  /**
   * Every ClusterIP:port and endpoint ip:port some service claims now, then each as it becomes claimed or is given
   * up (AddressIndex.subscribe): what interception's destinations follow, in time proportional to the change and
   * not to the services. Returns the unsubscribe function.
   */
  subscribeAddresses(listener: AddressListener): () => void {
    return this.byAddress.subscribe(listener);
  }

  /** The key of the service lookupByAddress() would answer, without making its spec (the relay's per-connection
   *  lookup: after a change, the spec would be made again for it). */
  keyAtAddress(ip: string, port: number): string | undefined {
    return this.byAddress.keyAt(ip, port);
  }

  /**
   * `listener` gets a `reset` for every current service at once (so it does not matter whether it subscribed
   * before or after discovery's first snapshot), then every update. Returns the unsubscribe function.
   */
  subscribe(listener: RegistryListener): () => void {
    this.listeners = [...this.listeners, listener];
    for (const held of this.services.values()) listener({ type: 'reset', key: held.key, service: held.spec });
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  /** As subscribe(), one call per registry change: batch listeners run before per-update ones, so pickers are new
   *  by the time the others look. */
  subscribeBatches(listener: RegistryBatchListener): () => void {
    this.batchListeners = [...this.batchListeners, listener];
    const resets: RegistryUpdate[] = [];
    for (const held of this.services.values()) resets.push({ type: 'reset', key: held.key, service: held.spec });
    if (resets.length > 0) listener(resets);
    return () => {
      this.batchListeners = this.batchListeners.filter((l) => l !== listener);
    };
  }

  /** Diffs `next` against the stored state, stores and indexes it, and appends the updates it implies. */
  private store(next: ServiceSpec, updates: RegistryUpdate[]): void {
    const old = this.services.get(next.key)?.spec;
    if (old === undefined) {
      this.services.set(next.key, new HeldService(next));
      this.byAddress.reindex(undefined, next);
      updates.push({ type: 'reset', key: next.key, service: next });
      return;
    }
    const before = updates.length;
    diffService(old, next, updates);
    if (updates.length === before) return;
    this.services.set(next.key, new HeldService(next));
    this.byAddress.reindex(old, next);
  }

  /** Delivers every update to every listener; a throwing listener neither stops the others nor loses updates
   *  for them; the first error is rethrown at the end so the caller (discovery) sees it. */
  private emit(updates: readonly RegistryUpdate[]): void {
    if (updates.length === 0) return;
    const listeners = this.listeners;
    let failure: { error: unknown } | null = null;
    for (const listener of this.batchListeners) {
      try {
        listener(updates);
      } catch (error) {
        failure ??= { error };
      }
    }
    for (const update of updates) {
      for (const listener of listeners) {
        try {
          listener(update);
        } catch (error) {
          failure ??= { error };
        }
      }
    }
    if (failure !== null) throw failure.error;
  }
}
