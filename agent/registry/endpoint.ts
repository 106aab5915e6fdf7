// The shared vocabulary of discovery, registry and balancers: endpoints, services, registry updates, eligibility.

import type { BalancerName } from '../vocabulary/balancer-names.ts';

/** What discovery knows about one endpoint (the EndpointSlice conditions, or the static file). */
export interface EndpointSpec {
  /** `host:port`, IPv6 as `[::1]:50051`; the identity of the endpoint within its service. */
  address: string;
  /** The IP without brackets. */
  host: string;
  port: number;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
}

/** One service port, as discovery knows it. */
export interface ServiceSpec {
  /** `${namespace}/${name}:${port}`, see vocabulary/service-key.ts. */
  key: string;
  namespace: string;
  name: string;
  /** The port clients dial (the Service port, not the target port). */
  port: number;
  /** May be empty (headless Service, or a static service without one). */
  clusterIPs: string[];
  /** Per-service override of the agent's default policy. */
  balancer: BalancerName | null;
  endpoints: EndpointSpec[];
}

/**
 * What the registry tells its subscribers, in the order it happened. A `reset` carries the complete service and
 * replaces whatever the receiver knew about it (receivers reconcile, keeping state of endpoints that stay);
 * the per-endpoint updates describe a change of an already known service.
 */
export type RegistryUpdate =
  /** First time seen, or service-level fields (balancer, clusterIPs) changed. */
  | { type: 'reset'; key: string; service: ServiceSpec }
  /** A new endpoint, or a listed one whose state changed so that it takes new requests again. */
  | { type: 'add'; key: string; endpoint: EndpointSpec }
  /** The endpoint is no longer listed: in-flight requests may finish, then its connections close. */
  | { type: 'remove'; key: string; address: string }
  /** Still listed, but its state changed so that it takes no new requests on its own (terminating, not ready,
   *  not serving); `endpoint` is the new state (a terminating endpoint may still be used when no other is left). */
  | { type: 'drain'; key: string; address: string; endpoint: EndpointSpec }
  /** The service is gone. */
  | { type: 'delete'; key: string };

/** Takes new requests on its own: ready, serving, not terminating (a `ready` endpoint is serving by definition;
 *  checking `serving` too keeps the "never serving === false" rule true whatever discovery sends). */
export function isActive(endpoint: EndpointSpec): boolean {
  return endpoint.ready && endpoint.serving && !endpoint.terminating;
}

/**
 * How usable an endpoint's state is: 2 takes new requests on its own, 1 is terminating but still serving (used only
 * when no active one is left), 0 takes none. Where one address is listed twice (an EndpointSlice move lists it in
 * two slices for a moment), the higher rank is kept, so that the move itself never takes it out of rotation.
 */
export function endpointRank(endpoint: EndpointSpec): number {
  if (isActive(endpoint)) return 2;
  return endpoint.serving ? 1 : 0;
}

/** A change of some endpoints of one service the registry holds (discovery's delta, see EndpointRegistry.patch). */
export interface EndpointChanges {
  /** Endpoints listed in this state from now on: new ones, or listed ones whose state changed. One per address. */
  listed: readonly EndpointSpec[];
  /** Addresses no longer listed; none of them is in `listed`. */
  unlisted: readonly string[];
}

/**
 * The endpoints that may get new requests (kube-proxy's rule; see docs/architecture.md, Balancing): the ready,
 * non-terminating ones; when there are none, the ones that are terminating but still serving (better a pod on its
 * way out than a failed request); never one that is not serving. Returns a new array, in the given order.
 */
export function eligibleEndpoints(endpoints: readonly EndpointSpec[]): EndpointSpec[] {
  const active = endpoints.filter(isActive);
  if (active.length > 0) return active;
  return endpoints.filter((endpoint) => endpoint.serving && endpoint.terminating);
}
