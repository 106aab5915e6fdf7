// Projections of the Kubernetes API's JSON (LIST items, WATCH event objects) into meshlite's records: pure, and never throwing.

import { GRPC_PROTOCOL_ANNOTATION_VALUE, isGrpcServicePort } from './grpc-ports.ts';
import {
  annotation,
  asObject,
  injectSetting,
  invalidField,
  isAbsent,
  isPortNumber,
  type JsonObject,
  NO_WARNINGS,
  project,
  show,
  Warnings,
} from './kube-fields.ts';
import { parseKubeIp } from '../vocabulary/ip-address.ts';
import { BALANCER_NAMES, isBalancerName } from '../vocabulary/balancer-names.ts';
import type { BalancerName } from '../vocabulary/balancer-names.ts';
import {
  ANNOTATIONS,
  type GrpcServicePort,
  type NamespaceRecord,
  type ObjectIdentity,
  type PodRecord,
  type ServiceRecord,
} from './kube-objects.ts';

export { projectEndpointSlice } from './endpoint-slice-projection.ts';

/** Shared by every record that has none: a Service without gRPC ports then costs its identity and nothing else.
 *  Frozen, so that a consumer that mutated a record would fail loudly instead of changing every record at once. */
const NO_STRINGS: string[] = Object.freeze([]) as unknown as string[];
const NO_PORTS: GrpcServicePort[] = Object.freeze([]) as unknown as GrpcServicePort[];

/**
 * A Service: its gRPC ports (grpc-ports.ts) as {name, port}, its ClusterIPs, its balancer annotation.
 * - No gRPC port (or type ExternalName, which has no ClusterIP and no endpoints to balance): a valid record with
 *   ports [] and nothing else read or kept.
 * - Invalid when a gRPC port has no usable number, or two gRPC ports share a name or a number (a service key is
 *   `namespace/name:port`, slice ports are matched by name), or a ClusterIP is not an IP. Ports meshlite does not
 *   keep are not examined: a defect there would not change what meshlite does.
 * - `None` or '' as ClusterIP (headless, or not yet allocated) gives clusterIPs [].
 * - An unknown `meshlite.io/balancer` value is ignored with a warning (balancer null, so the agent's default
 *   applies) rather than making the record invalid: a typo in an optional tuning knob must not take a working
 *   Service out of balancing. An unknown `meshlite.io/protocol` value is ignored with a warning too.
 */
export function projectService(raw: unknown): ServiceRecord {
  return project(raw, true, buildService, (identity, reason) => serviceRecord(identity, reason, NO_WARNINGS, NO_STRINGS, NO_PORTS, null));
}

/** A Pod of this node: its IPs, node, phase, hostNetwork and inject annotation. Mistyped fields make it invalid
 *  (never guessed): a wrongly enrolled IP, the node's own for instance, would intercept traffic nobody opted in. */
export function projectPod(raw: unknown): PodRecord {
  return project(raw, true, buildPod, (identity, reason) => podRecord(identity, reason, NO_WARNINGS, '', NO_STRINGS, false, '', null));
}

/** A Namespace: its name (namespace '') and inject annotation. */
export function projectNamespace(raw: unknown): NamespaceRecord {
  return project(raw, false, buildNamespace, (identity, reason) => namespaceRecord(identity, reason, NO_WARNINGS, null));
}

function buildService(object: JsonObject, identity: ObjectIdentity): ServiceRecord {
  const warnings = new Warnings();
  const spec = asObject(object.spec);
  if (spec === null) invalidField('spec', `not a map (got ${show(object.spec)})`);
  const protocol = annotation(object, ANNOTATIONS.protocol, warnings);
  if (protocol !== undefined && protocol !== GRPC_PROTOCOL_ANNOTATION_VALUE) {
    warnings.add(`metadata.annotations["${ANNOTATIONS.protocol}"]`, `${show(protocol)} is not ${GRPC_PROTOCOL_ANNOTATION_VALUE}; ignored`);
  }
  const balancer = readBalancer(object, warnings);
  const ports = spec.type === 'ExternalName' ? NO_PORTS : grpcPorts(spec.ports, protocol === GRPC_PROTOCOL_ANNOTATION_VALUE);
  if (ports.length === 0) return serviceRecord(identity, null, warnings.result(), NO_STRINGS, NO_PORTS, null);
  return serviceRecord(identity, null, warnings.result(), clusterIPs(spec), ports, balancer);
}

function readBalancer(object: JsonObject, warnings: Warnings): BalancerName | null {
  const value = annotation(object, ANNOTATIONS.balancer, warnings);
  if (value === undefined) return null;
  if (isBalancerName(value)) return value;
  warnings.add(
    `metadata.annotations["${ANNOTATIONS.balancer}"]`,
    `${show(value)} is not one of ${BALANCER_NAMES.join(', ')}; ignored, the agent's default balancer applies`,
  );
  return null;
}

function grpcPorts(raw: unknown, annotatedGrpc: boolean): GrpcServicePort[] {
  if (isAbsent(raw)) return NO_PORTS;
  if (!Array.isArray(raw)) invalidField('spec.ports', `not a list (got ${show(raw)})`);
  const ports: GrpcServicePort[] = [];
  const paths: string[] = [];
  for (let i = 0; i < raw.length; i++) {
    const path = `spec.ports[${i}]`;
    const entry = asObject(raw[i]);
    if (entry === null) invalidField(path, `not a map (got ${show(raw[i])})`);
    if (!isGrpcServicePort(entry, annotatedGrpc)) continue;
    if (!isPortNumber(entry.port)) invalidField(`${path}.port`, `not an integer 1..65535 (got ${show(entry.port)})`);
    const name = isAbsent(entry.name) ? '' : entry.name;
    if (typeof name !== 'string') invalidField(`${path}.name`, `not a string (got ${show(entry.name)})`);
    const port = entry.port;
    for (let j = 0; j < ports.length; j++) {
      if (ports[j].name === name) invalidField(`${path}.name`, `${show(name)} is also the name of ${paths[j]}`);
      if (ports[j].port === port) invalidField(`${path}.port`, `${port} is also the port of ${paths[j]}`);
    }
    ports.push({ name, port });
    paths.push(path);
  }
  return ports.length === 0 ? NO_PORTS : ports;
}

/** spec.clusterIPs (primary first), or spec.clusterIP on objects written before dual-stack. */
function clusterIPs(spec: JsonObject): string[] {
  const list = spec.clusterIPs;
  let values: unknown[];
  let path: string;
  if (Array.isArray(list) && list.length > 0) {
    values = list;
    path = 'spec.clusterIPs';
  } else {
    if (!isAbsent(list) && !Array.isArray(list)) invalidField('spec.clusterIPs', `not a list (got ${show(list)})`);
    values = isAbsent(spec.clusterIP) ? [] : [spec.clusterIP];
    path = 'spec.clusterIP';
  }
  const ips: string[] = [];
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (value === 'None' || value === '') continue;
    const parsed = parseKubeIp(value);
    const where = path === 'spec.clusterIP' ? path : `${path}[${i}]`;
    if (parsed === null) invalidField(where, `not an IP address (got ${show(value)})`);
    if (!ips.includes(parsed.ip)) ips.push(parsed.ip);
  }
  return ips.length === 0 ? NO_STRINGS : ips;
}

function buildPod(object: JsonObject, identity: ObjectIdentity): PodRecord {
  const warnings = new Warnings();
  const spec = asObject(object.spec);
  if (spec === null) invalidField('spec', `not a map (got ${show(object.spec)})`);
  const status = isAbsent(object.status) ? {} : asObject(object.status);
  if (status === null) invalidField('status', `not a map (got ${show(object.status)})`);
  const nodeName = optionalString(spec.nodeName, 'spec.nodeName');
  const phase = optionalString(status.phase, 'status.phase');
  const hostNetwork = isAbsent(spec.hostNetwork) ? false : spec.hostNetwork;
  if (typeof hostNetwork !== 'boolean') invalidField('spec.hostNetwork', `not a boolean (got ${show(spec.hostNetwork)})`);
  const inject = injectSetting(object, ANNOTATIONS.inject, warnings);
  return podRecord(identity, null, warnings.result(), nodeName, podIPs(status), hostNetwork, phase, inject);
}

/** status.podIPs (one per family, primary first), or status.podIP on objects written before dual-stack. */
function podIPs(status: JsonObject): string[] {
  const list = status.podIPs;
  if (!isAbsent(list) && !Array.isArray(list)) invalidField('status.podIPs', `not a list (got ${show(list)})`);
  const ips: string[] = [];
  if (Array.isArray(list) && list.length > 0) {
    for (let i = 0; i < list.length; i++) {
      const entry = asObject(list[i]);
      if (entry === null) invalidField(`status.podIPs[${i}]`, `not a map (got ${show(list[i])})`);
      const parsed = parseKubeIp(entry.ip);
      if (parsed === null) invalidField(`status.podIPs[${i}].ip`, `not an IP address (got ${show(entry.ip)})`);
      if (!ips.includes(parsed.ip)) ips.push(parsed.ip);
    }
  } else if (!isAbsent(status.podIP) && status.podIP !== '') {
    const parsed = parseKubeIp(status.podIP);
    if (parsed === null) invalidField('status.podIP', `not an IP address (got ${show(status.podIP)})`);
    ips.push(parsed.ip);
  }
  return ips.length === 0 ? NO_STRINGS : ips;
}

function buildNamespace(object: JsonObject, identity: ObjectIdentity): NamespaceRecord {
  const warnings = new Warnings();
  const inject = injectSetting(object, ANNOTATIONS.inject, warnings);
  return namespaceRecord(identity, null, warnings.result(), inject);
}

function optionalString(value: unknown, path: string): string {
  if (isAbsent(value)) return '';
  if (typeof value !== 'string') invalidField(path, `not a string (got ${show(value)})`);
  return value;
}

// One constructor per kind, so that every record of a kind has the same fields in the same order (one V8 shape).

function serviceRecord(
  metadata: ObjectIdentity,
  invalid: string | null,
  warnings: readonly string[],
  clusterIPs: string[],
  ports: GrpcServicePort[],
  balancer: BalancerName | null,
): ServiceRecord {
  return { kind: 'Service', metadata, invalid, warnings, clusterIPs, ports, balancer };
}

function podRecord(
  metadata: ObjectIdentity,
  invalid: string | null,
  warnings: readonly string[],
  nodeName: string,
  ips: string[],
  hostNetwork: boolean,
  phase: string,
  inject: PodRecord['inject'],
): PodRecord {
  return { kind: 'Pod', metadata, invalid, warnings, nodeName, ips, hostNetwork, phase, inject };
}

function namespaceRecord(metadata: ObjectIdentity, invalid: string | null, warnings: readonly string[], inject: NamespaceRecord['inject']): NamespaceRecord {
  return { kind: 'Namespace', metadata, invalid, warnings, inject };
}
