// Endpoint sets per service key: takes discovery's snapshots, diffs them, emits typed updates, indexes addresses.

import { normalizeIp } from '../vocabulary/ip-address.ts';
import { serviceKey } from '../vocabulary/service-key.ts';
import { type EndpointSpec, isActive, type RegistryUpdate, type ServiceSpec } from './endpoint.ts';

export type RegistryListener = (update: RegistryUpdate) => void;
/** Gets every update of one registry call at once (a slice of 100 new pods is 100 `add`s): a balancer then builds
 *  one picker for all of them instead of one per endpoint. */
export type RegistryBatchListener = (updates: readonly RegistryUpdate[]) => void;

/** How a service claims an address: its ClusterIP:port, or one of its endpoints' ip:port. */
type ClaimKind = 'cluster' | 'endpoint';

interface AddressClaim {
  readonly key: string;
  readonly kind: ClaimKind;
}

interface ClaimedAddress {
  readonly ip: string;
  readonly port: number;
  readonly kind: ClaimKind;
}

/**
 * Holds the current ServiceSpec of every service and tells subscribers what changed. Stored specs are frozen,
 * normalised copies (endpoints deduplicated by address), so a caller mutating its input later changes nothing.
 *
 * Order of the updates of one call: `delete` for every service gone (in the order they were first seen), then per
 * given service in input order: `reset` when it is new or a service-level field changed (the reset carries the
 * endpoints too, so no per-endpoint updates follow it), otherwise its `remove`s, then `drain`s, then `add`s. A call
 * that changes nothing emits nothing. State (including the address index) is fully updated before the first
 * update is delivered, so a listener that reads the registry sees the new state.
 */
export class EndpointRegistry {
  private readonly services = new Map<string, ServiceSpec>();
  private listeners: RegistryListener[] = [];
  private batchListeners: RegistryBatchListener[] = [];
  /** ip → port → claims, ClusterIP claims first, then in the order services claimed the address. */
  private readonly byAddress = new Map<string, Map<number, AddressClaim[]>>();

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
      this.unindex(old);
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

  /** Returns whether the service was known. */
  remove(key: string): boolean {
    const old = this.services.get(key);
    if (old === undefined) return false;
    this.unindex(old);
    this.services.delete(key);
    this.emit([{ type: 'delete', key }]);
    return true;
  }

  get(key: string): ServiceSpec | undefined {
    return this.services.get(key);
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
    let ports = this.byAddress.get(ip);
    if (ports === undefined) {
      // The exact form is what the kernel and the API report; other spellings are the rare path.
      const normalized = normalizeIp(ip);
      if (normalized === ip) return undefined;
      ports = this.byAddress.get(normalized);
      if (ports === undefined) return undefined;
    }
    const claims = ports.get(port);
    return claims === undefined ? undefined : this.services.get(claims[0].key);
  }

  /**
   * `listener` gets a `reset` for every current service at once (so it does not matter whether it subscribed
   * before or after discovery's first snapshot), then every update. Returns the unsubscribe function.
   */
  subscribe(listener: RegistryListener): () => void {
    this.listeners = [...this.listeners, listener];
    for (const service of this.services.values()) listener({ type: 'reset', key: service.key, service });
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  /** As subscribe(), one call per registry change: batch listeners run before per-update ones, so pickers are new
   *  by the time the others look. */
  subscribeBatches(listener: RegistryBatchListener): () => void {
    this.batchListeners = [...this.batchListeners, listener];
    const resets: RegistryUpdate[] = [];
    for (const service of this.services.values()) resets.push({ type: 'reset', key: service.key, service });
    if (resets.length > 0) listener(resets);
    return () => {
      this.batchListeners = this.batchListeners.filter((l) => l !== listener);
    };
  }

  /** Diffs `next` against the stored state, stores and indexes it, and appends the updates it implies. */
  private store(next: ServiceSpec, updates: RegistryUpdate[]): void {
    const old = this.services.get(next.key);
    if (old === undefined) {
      this.services.set(next.key, next);
      this.reindex(undefined, next);
      updates.push({ type: 'reset', key: next.key, service: next });
      return;
    }
    const before = updates.length;
    if (old.balancer !== next.balancer || !sameSet(old.clusterIPs, next.clusterIPs)) {
      updates.push({ type: 'reset', key: next.key, service: next });
    } else {
      diffEndpoints(next.key, old.endpoints, next.endpoints, updates);
    }
    if (updates.length === before) return;
    this.services.set(next.key, next);
    this.reindex(old, next);
  }

  /** Moves the claims of a service from its old to its new state, touching only addresses that changed. */
  private reindex(old: ServiceSpec | undefined, next: ServiceSpec): void {
    const before = old === undefined ? new Map<string, ClaimedAddress>() : claimedAddresses(old);
    const after = claimedAddresses(next);
    for (const [id, claimed] of before) if (!after.has(id)) this.unclaim(next.key, claimed);
    for (const [id, claimed] of after) if (!before.has(id)) this.claim(next.key, claimed);
  }

  private unindex(service: ServiceSpec): void {
    for (const claimed of claimedAddresses(service).values()) this.unclaim(service.key, claimed);
  }

  private claim(key: string, { ip, port, kind }: ClaimedAddress): void {
    let ports = this.byAddress.get(ip);
    if (ports === undefined) {
      ports = new Map();
      this.byAddress.set(ip, ports);
    }
    let claims = ports.get(port);
    if (claims === undefined) {
      claims = [];
      ports.set(port, claims);
    }
    const claim: AddressClaim = { key, kind };
    if (kind === 'cluster') {
      // A ClusterIP belongs to exactly one service; it outranks a pod address some other service also lists.
      const firstEndpoint = claims.findIndex((c) => c.kind === 'endpoint');
      claims.splice(firstEndpoint === -1 ? claims.length : firstEndpoint, 0, claim);
    } else {
      claims.push(claim);
    }
  }

  private unclaim(key: string, { ip, port, kind }: ClaimedAddress): void {
    const ports = this.byAddress.get(ip);
    const claims = ports?.get(port);
    if (ports === undefined || claims === undefined) return;
    const index = claims.findIndex((c) => c.key === key && c.kind === kind);
    if (index !== -1) claims.splice(index, 1);
    if (claims.length > 0) return;
    ports.delete(port);
    if (ports.size === 0) this.byAddress.delete(ip);
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

function diffEndpoints(
  key: string,
  before: readonly EndpointSpec[],
  after: readonly EndpointSpec[],
  updates: RegistryUpdate[],
): void {
  const oldByAddress = new Map(before.map((e) => [e.address, e]));
  const newAddresses = new Set(after.map((e) => e.address));
  for (const endpoint of before) {
    if (!newAddresses.has(endpoint.address)) updates.push({ type: 'remove', key, address: endpoint.address });
  }
  const adds: RegistryUpdate[] = [];
  for (const endpoint of after) {
    const old = oldByAddress.get(endpoint.address);
    if (old !== undefined && sameEndpoint(old, endpoint)) continue;
    if (old !== undefined && !isActive(endpoint)) {
      updates.push({ type: 'drain', key, address: endpoint.address, endpoint });
    } else {
      adds.push({ type: 'add', key, endpoint });
    }
  }
  for (const add of adds) updates.push(add);
}

function sameEndpoint(a: EndpointSpec, b: EndpointSpec): boolean {
  return (
    a.host === b.host &&
    a.port === b.port &&
    a.ready === b.ready &&
    a.serving === b.serving &&
    a.terminating === b.terminating
  );
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(a);
  return b.every((x) => set.has(x));
}

/** Every address through which clients may reach the service, keyed by a string unique per (kind, ip, port). */
function claimedAddresses(service: ServiceSpec): Map<string, ClaimedAddress> {
  const claimed = new Map<string, ClaimedAddress>();
  for (const ip of service.clusterIPs) claimed.set(`c ${ip} ${service.port}`, { ip, port: service.port, kind: 'cluster' });
  for (const endpoint of service.endpoints) {
    claimed.set(`e ${endpoint.host} ${endpoint.port}`, { ip: endpoint.host, port: endpoint.port, kind: 'endpoint' });
  }
  return claimed;
}

/** Endpoints listed twice (an EndpointSlice move can do that) keep the most usable state. */
function rank(endpoint: EndpointSpec): number {
  if (isActive(endpoint)) return 2;
  return endpoint.serving ? 1 : 0;
}

function normalizeService(service: ServiceSpec): ServiceSpec {
  const { namespace, name, port } = service;
  if (service.key !== serviceKey(namespace, name, port)) {
    throw new TypeError(`service key ${service.key} does not match ${serviceKey(namespace, name, port)}`);
  }
  const endpoints = new Map<string, EndpointSpec>();
  for (const endpoint of service.endpoints) {
    const seen = endpoints.get(endpoint.address);
    if (seen !== undefined && rank(seen) >= rank(endpoint)) continue;
    endpoints.set(
      endpoint.address,
      Object.freeze({
        address: endpoint.address,
        host: normalizeIp(endpoint.host),
        port: endpoint.port,
        ready: endpoint.ready,
        serving: endpoint.serving,
        terminating: endpoint.terminating,
      }),
    );
  }
  return Object.freeze({
    key: service.key,
    namespace,
    name,
    port,
    clusterIPs: Object.freeze([...new Set(service.clusterIPs.map(normalizeIp))]) as string[],
    balancer: service.balancer,
    endpoints: Object.freeze([...endpoints.values()]) as EndpointSpec[],
  });
}
