// What the service index puts in the registry: one gRPC Service port's ServiceSpec, and whether it changes what is held.

import type { EndpointSpec, ServiceSpec } from '../registry/endpoint.ts';
import { serviceKey } from '../vocabulary/service-key.ts';
import type { EndpointSliceRecord, GrpcServicePort, ServiceRecord } from './kube-objects.ts';
import { mergeSliceEndpoints, slicePortNamed } from './slice-endpoints.ts';

/** The spec of `port` of the Service `record`: its clusterIPs and balancer, and the endpoints on the slice port of the
 *  same name in every one of `slices` (one per address). */
export function buildSpec(
  record: ServiceRecord,
  port: GrpcServicePort,
  slices: ReadonlyMap<string, EndpointSliceRecord> | undefined,
): ServiceSpec {
  const { namespace, name } = record.metadata;
  const endpoints = new Map<string, EndpointSpec>();
  if (slices !== undefined) {
    for (const slice of slices.values()) {
      const slicePort = slicePortNamed(slice, port.name);
      if (slicePort !== undefined) mergeSliceEndpoints(endpoints, slice, slicePort.port);
    }
  }
  return {
    key: serviceKey(namespace, name, port.port),
    namespace,
    name,
    port: port.port,
    clusterIPs: record.clusterIPs,
    balancer: record.balancer,
    endpoints: [...endpoints.values()],
  };
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
