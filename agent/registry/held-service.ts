// One service as the registry holds it: its endpoints by address, and the frozen ServiceSpec made of them when asked.

import { normalizeIp } from '../vocabulary/ip-address.ts';
import type { EndpointSpec, ServiceSpec } from './endpoint.ts';
import { countEndpoints, type EndpointCounts, endpointState } from './endpoint-counts.ts';

/**
 * The endpoints live in a map by address, in the order they were first listed, so that a change of a few endpoints
 * costs those few: the ServiceSpec that `get()`, `reset` updates and snapshots hand out is made from the map only
 * when someone asks for it after a change (a copy of the pointers), and is then kept until the next change. Specs
 * handed out are frozen and never change afterwards.
 */
export class HeldService {
  /** The service-level fields and, until the next change, the endpoints: as last handed out or stored whole. */
  private whole: ServiceSpec;
  /** Whether `whole.endpoints` is out of date (endpoints changed since it was made). */
  private stale = false;
  /** Frozen, normalised EndpointSpecs by address. */
  private readonly byAddress: Map<string, EndpointSpec>;
  /** The endpoints by state, kept with every list and unlist. */
  private readonly counts: EndpointCounts;

  /** `spec` is a normalised, frozen spec (normalized-service.ts). */
  constructor(spec: ServiceSpec) {
    this.whole = spec;
    this.byAddress = new Map(spec.endpoints.map((endpoint) => [endpoint.address, endpoint]));
    this.counts = countEndpoints(this.byAddress.values());
  }

  /** The endpoints by state, without making the spec: a copy. */
  get endpointCounts(): EndpointCounts {
    return { ...this.counts };
  }

  get key(): string {
    return this.whole.key;
  }

  /** The current state as one frozen ServiceSpec. */
  get spec(): ServiceSpec {
    if (this.stale) {
      this.whole = Object.freeze({ ...this.whole, endpoints: Object.freeze([...this.byAddress.values()]) as EndpointSpec[] });
      this.stale = false;
    }
    return this.whole;
  }

  endpoint(address: string): EndpointSpec | undefined {
    return this.byAddress.get(address);
  }

  /** Lists `endpoint` (a frozen, normalised spec) in place of the one at its address, or after the others. */
  list(endpoint: EndpointSpec): void {
    const old = this.byAddress.get(endpoint.address);
    if (old !== undefined) this.counts[endpointState(old)]--;
    this.counts[endpointState(endpoint)]++;
    this.byAddress.set(endpoint.address, endpoint);
    this.stale = true;
  }

  unlist(address: string): void {
    const old = this.byAddress.get(address);
    if (old === undefined) return;
    this.counts[endpointState(old)]--;
    this.byAddress.delete(address);
    this.stale = true;
  }
}

/** The frozen, normalised copy the registry stores of one endpoint. */
export function heldEndpoint(endpoint: EndpointSpec): EndpointSpec {
  return Object.freeze({
    address: endpoint.address,
    host: normalizeIp(endpoint.host),
    port: endpoint.port,
    ready: endpoint.ready,
    serving: endpoint.serving,
    terminating: endpoint.terminating,
  });
}
