// The destination set interception captures: every gRPC service's ClusterIP:port and every endpoint's IP:port.

import type { ServiceSpec } from '../registry/endpoint.ts';
import type { Destination } from './desired-sets.ts';

/**
 * Both the ClusterIP:port and each endpoint IP:port, so that clients of headless Services, and CNIs that
 * translate ClusterIPs in the socket layer (the packet then already carries the pod IP), are balanced too.
 * An address two services list comes twice: the sets hold it once.
 */
export function grpcDestinations(services: Iterable<ServiceSpec>): Destination[] {
  const destinations: Destination[] = [];
  for (const service of services) {
    for (const ip of service.clusterIPs) destinations.push({ ip, port: service.port });
    for (const endpoint of service.endpoints) destinations.push({ ip: endpoint.host, port: endpoint.port });
  }
  return destinations;
}
