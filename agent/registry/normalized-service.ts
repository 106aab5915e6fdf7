// The form the registry stores a service in: a frozen copy, its key checked, IPs normalised, endpoints one per address.

import { normalizeIp } from '../vocabulary/ip-address.ts';
import { serviceKey } from '../vocabulary/service-key.ts';
import { type EndpointSpec, endpointRank, type ServiceSpec } from './endpoint.ts';
import { heldEndpoint } from './held-service.ts';

/** A frozen copy of `service` as the registry stores it; throws a TypeError when its key does not match namespace,
 *  name and port. */
export function normalizeService(service: ServiceSpec): ServiceSpec {
  const { namespace, name, port } = service;
  if (service.key !== serviceKey(namespace, name, port)) {
    throw new TypeError(`service key ${service.key} does not match ${serviceKey(namespace, name, port)}`);
  }
  const endpoints = new Map<string, EndpointSpec>();
  for (const endpoint of service.endpoints) {
    const seen = endpoints.get(endpoint.address);
    // Endpoints listed twice (an EndpointSlice move can do that) keep the most usable state.
    if (seen !== undefined && endpointRank(seen) >= endpointRank(endpoint)) continue;
    endpoints.set(endpoint.address, heldEndpoint(endpoint));
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
