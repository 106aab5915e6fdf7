// The updates one service's change implies: a reset when a service-level field changed, else per endpoint remove, drain, add.

import { type EndpointSpec, isActive, type RegistryUpdate, type ServiceSpec } from './endpoint.ts';

/** Appends to `updates` what changed from `old` to `next` (the same key): nothing when they are equal. */
export function diffService(old: ServiceSpec, next: ServiceSpec, updates: RegistryUpdate[]): void {
  if (old.balancer !== next.balancer || !sameSet(old.clusterIPs, next.clusterIPs)) {
    updates.push({ type: 'reset', key: next.key, service: next });
  } else {
    diffEndpoints(next.key, old.endpoints, next.endpoints, updates);
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

/** Same address assumed: whether anything the registry tells subscribers about differs. */
export function sameEndpoint(a: EndpointSpec, b: EndpointSpec): boolean {
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
