// The destination set interception captures: every gRPC service's ClusterIP:port and every endpoint's IP:port.

import type { ServiceSpec } from '../registry/endpoint.ts';
import type { Destination } from './desired-sets.ts';

/**
 * Both the ClusterIP:port and each endpoint IP:port, so that clients of headless Services, and CNIs that
 * translate ClusterIPs in the socket layer (the packet then already carries the pod IP), are balanced too.
 * Duplicates (an endpoint shared by two services) are given once.
 */
export function grpcDestinations(services: Iterable<ServiceSpec>): Destination[] {
  const seen = new Set<string>();
  const destinations: Destination[] = [];
  const add = (ip: string, port: number): void => {
    const key = `${ip}|${port}`;
    if (seen.has(key)) return;
    seen.add(key);
    destinations.push({ ip, port });
  };
  for (const service of services) {
    for (const ip of service.clusterIPs) add(ip, service.port);
    for (const endpoint of service.endpoints) add(endpoint.host, endpoint.port);
  }
  return destinations;
}
