// What the service index puts in the registry: one gRPC Service port's ServiceSpec, and whether it changes what is held.

import type { EndpointSpec, ServiceSpec } from '../registry/endpoint.ts';
import { serviceKey } from '../vocabulary/service-key.ts';
import type { GrpcServicePort, ServiceRecord } from './kube-objects.ts';

/** The spec of `port` of the Service `record`: its clusterIPs and balancer, and `endpoints` (port-endpoints.ts: those on
 *  the slice port of the same name in every slice of the Service, one per address). */
export function portSpec(record: ServiceRecord, port: GrpcServicePort, endpoints: EndpointSpec[]): ServiceSpec {
  const { namespace, name } = record.metadata;
  return {
    key: serviceKey(namespace, name, port.port),
    namespace,
    name,
    port: port.port,
    clusterIPs: record.clusterIPs,
    balancer: record.balancer,
    endpoints,
  };
}

/** Whether two versions of a Service make the same specs apart from endpoints: same ports (names and numbers, in
 *  order), clusterIPs and balancer. Its other fields (labels, annotations other than meshlite's) change nothing. */
export function sameServiceFields(a: ServiceRecord, b: ServiceRecord): boolean {
  if (a.balancer !== b.balancer || a.ports.length !== b.ports.length || a.clusterIPs.length !== b.clusterIPs.length) return false;
  for (let i = 0; i < a.ports.length; i++) if (a.ports[i].name !== b.ports[i].name || a.ports[i].port !== b.ports[i].port) return false;
  for (let i = 0; i < a.clusterIPs.length; i++) if (a.clusterIPs[i] !== b.clusterIPs[i]) return false;
  return true;
}

/** Whether upserting `next` would change nothing, by the registry's own measure: clusterIPs as a set, endpoints by
 *  address (order is not a change). */
export function sameSpec(held: ServiceSpec | undefined, next: ServiceSpec): boolean {
  if (held === undefined || held.balancer !== next.balancer) return false;
  if (held.clusterIPs.length !== next.clusterIPs.length || held.endpoints.length !== next.endpoints.length) return false;
  const clusterIPs = new Set(held.clusterIPs);
  if (!next.clusterIPs.every((ip) => clusterIPs.has(ip))) return false;
  const endpoints = new Map(held.endpoints.map((endpoint) => [endpoint.address, endpoint]));
  return next.endpoints.every((endpoint) => {
    const old = endpoints.get(endpoint.address);
    return (
      old !== undefined &&
      old.host === endpoint.host &&
      old.port === endpoint.port &&
      old.ready === endpoint.ready &&
      old.serving === endpoint.serving &&
      old.terminating === endpoint.terminating
    );
  });
}
