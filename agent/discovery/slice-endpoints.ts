// EndpointSlice endpoints → EndpointSpecs of one Service port, merged across slices: a duplicate keeps its most usable state.

import { formatHostPort } from '../vocabulary/host-port.ts';
import { type EndpointSpec, endpointRank } from '../registry/endpoint.ts';
import type { EndpointSliceRecord, SlicePort } from './kube-objects.ts';

/** How usable an endpoint's state is (registry/endpoint.ts). The EndpointSlice controller moves endpoints between
 *  slices by adding to one before removing from the other, and a pod's state may change in between; the higher rank
 *  wins so that the move itself never takes an endpoint out of rotation. */
export { endpointRank };

/** The slice's port that carries the Service port `name`. The Service port's targetPort (a number or a container
 *  port's name) was resolved by the controller into this port's number, per pod; that is the number to dial. */
export function slicePortNamed(slice: EndpointSliceRecord, name: string): SlicePort | undefined {
  for (const port of slice.ports) if (port.name === name) return port;
  return undefined;
}

/**
 * Adds one EndpointSpec per address of every endpoint of `slice` on `port` to `into` (keyed by address), keeping an
 * address already there unless the new state ranks higher; the first listing wins a tie, so that the result does not
 * depend on anything but the order of the slices. Addresses are the projection's normalised IPs.
 */
export function mergeSliceEndpoints(into: Map<string, EndpointSpec>, slice: EndpointSliceRecord, port: number): void {
  for (const endpoint of slice.endpoints) {
    for (const host of endpoint.addresses) {
      const address = formatHostPort(host, port);
      const spec: EndpointSpec = {
        address,
        host,
        port,
        ready: endpoint.ready,
        serving: endpoint.serving,
        terminating: endpoint.terminating,
      };
      const held = into.get(address);
      if (held === undefined || endpointRank(spec) > endpointRank(held)) into.set(address, spec);
    }
  }
}
