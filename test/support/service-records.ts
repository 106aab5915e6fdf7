// Service and EndpointSlice records built by hand, the registry updates they should produce, and a recording registry.

import type {
  EndpointSliceRecord,
  GrpcServicePort,
  ServiceRecord,
  SliceAddressType,
  SliceEndpoint,
  SlicePort,
} from '../../agent/discovery/kube-objects.ts';
import { ServiceIndex } from '../../agent/discovery/service-index.ts';
import { EndpointRegistry } from '../../agent/registry/endpoint-registry.ts';
import type { EndpointSpec, RegistryUpdate, ServiceSpec } from '../../agent/registry/endpoint.ts';
import type { BalancerName } from '../../agent/vocabulary/balancer-names.ts';

/** `active`: ready, serving; `terminating`: serving while terminating; `dark`: terminating, not serving;
 *  `not-ready`: neither ready nor serving. */
export type EndpointState = 'active' | 'terminating' | 'dark' | 'not-ready';

export const CLUSTER_IP = '10.96.0.10';

export function grpcPort(port = 50051, name = 'grpc'): GrpcServicePort {
  return { name, port };
}

export interface ServiceOptions {
  namespace?: string;
  ports?: GrpcServicePort[];
  clusterIPs?: string[];
  balancer?: BalancerName | null;
  resourceVersion?: string;
  invalid?: string | null;
}

export function serviceRecord(name: string, options: ServiceOptions = {}): ServiceRecord {
  return {
    kind: 'Service',
    metadata: { name, namespace: options.namespace ?? 'default', resourceVersion: options.resourceVersion ?? '1' },
    invalid: options.invalid ?? null,
    clusterIPs: options.clusterIPs ?? [CLUSTER_IP],
    ports: options.ports ?? [grpcPort()],
    balancer: options.balancer ?? null,
  };
}

/** What the projection makes of a Service it cannot read: identity and reason, nothing else. */
export function invalidServiceRecord(name: string, resourceVersion: string, namespace = 'default'): ServiceRecord {
  return serviceRecord(name, { namespace, resourceVersion, invalid: 'spec.ports: not a list', clusterIPs: [], ports: [] });
}

export function sliceEndpoint(ip: string, state: EndpointState = 'active'): SliceEndpoint {
  return {
    addresses: [ip],
    ready: state === 'active',
    serving: state === 'active' || state === 'terminating',
    terminating: state === 'terminating' || state === 'dark',
  };
}

export interface SliceOptions {
  namespace?: string;
  ports?: SlicePort[];
  addressType?: SliceAddressType;
  resourceVersion?: string;
  invalid?: string | null;
  lastChangeTriggerTimeMs?: number | null;
}

/** A slice of `serviceName` listing `endpoints` (IPs, active, or SliceEndpoints) on port grpc:50051 by default. */
export function sliceRecord(
  name: string,
  serviceName: string | null,
  endpoints: Array<string | SliceEndpoint>,
  options: SliceOptions = {},
): EndpointSliceRecord {
  const listed = endpoints.map((e) => (typeof e === 'string' ? sliceEndpoint(e) : e));
  return {
    kind: 'EndpointSlice',
    metadata: { name, namespace: options.namespace ?? 'default', resourceVersion: options.resourceVersion ?? '1' },
    invalid: options.invalid ?? null,
    serviceName,
    addressType: options.addressType ?? (listed.some((e) => e.addresses[0].includes(':')) ? 'IPv6' : 'IPv4'),
    ports: options.ports ?? [{ name: 'grpc', port: 50051 }],
    endpoints: listed,
    lastChangeTriggerTimeMs: options.lastChangeTriggerTimeMs ?? null,
  };
}

export function invalidSliceRecord(name: string, resourceVersion: string, namespace = 'default'): EndpointSliceRecord {
  return { ...sliceRecord(name, null, [], { namespace, resourceVersion, ports: [] }), invalid: 'addressType: FQDN' };
}

/** The EndpointSpec the index should make of `host` on `port` in `state`. */
export function endpointSpec(host: string, port = 50051, state: EndpointState = 'active'): EndpointSpec {
  const e = sliceEndpoint(host, state);
  return {
    address: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`,
    host,
    port,
    ready: e.ready,
    serving: e.serving,
    terminating: e.terminating,
  };
}

export interface SpecOptions {
  namespace?: string;
  port?: number;
  clusterIPs?: string[];
  balancer?: BalancerName | null;
}

export function serviceSpec(name: string, endpoints: EndpointSpec[], options: SpecOptions = {}): ServiceSpec {
  const namespace = options.namespace ?? 'default';
  const port = options.port ?? 50051;
  return {
    key: `${namespace}/${name}:${port}`,
    namespace,
    name,
    port,
    clusterIPs: options.clusterIPs ?? [CLUSTER_IP],
    balancer: options.balancer ?? null,
    endpoints,
  };
}

export function reset(service: ServiceSpec): RegistryUpdate {
  return { type: 'reset', key: service.key, service };
}

export function add(key: string, endpoint: EndpointSpec): RegistryUpdate {
  return { type: 'add', key, endpoint };
}

export function remove(key: string, endpoint: EndpointSpec): RegistryUpdate {
  return { type: 'remove', key, address: endpoint.address };
}

export function drain(key: string, endpoint: EndpointSpec): RegistryUpdate {
  return { type: 'drain', key, address: endpoint.address, endpoint };
}

export function deleted(key: string): RegistryUpdate {
  return { type: 'delete', key };
}

export interface IndexUnderTest {
  registry: EndpointRegistry;
  index: ServiceIndex;
  /** Every update the registry emitted; tests clear it (`updates.length = 0`) between steps. */
  updates: RegistryUpdate[];
}

/** A real registry, subscribed to from the start, and an index writing to it. */
export function indexUnderTest(): IndexUnderTest {
  const registry = new EndpointRegistry();
  const updates: RegistryUpdate[] = [];
  registry.subscribe((update) => updates.push(update));
  return { registry, index: new ServiceIndex(registry), updates };
}
