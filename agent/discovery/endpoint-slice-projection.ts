// EndpointSlice (discovery.k8s.io/v1) JSON → EndpointSliceRecord: TCP ports, IP endpoints with conditions resolved, skips reported.

import { isTcp } from './grpc-ports.ts';
import {
  annotation,
  asObject,
  field,
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
import {
  ANNOTATIONS,
  type EndpointSliceRecord,
  type ObjectIdentity,
  SERVICE_NAME_LABEL,
  type SliceAddressType,
  type SliceEndpoint,
  type SlicePort,
} from './kube-objects.ts';
import { parseRfc3339Ms } from './rfc3339.ts';

const NO_PORTS: SlicePort[] = Object.freeze([]) as unknown as SlicePort[];
const NO_ENDPOINTS: SliceEndpoint[] = Object.freeze([]) as unknown as SliceEndpoint[];

/** The API's bound on addresses per endpoint; more is garbage, and would be kept in memory. */
const MAX_ADDRESSES = 100;

/**
 * One EndpointSlice. The whole record is invalid only when nothing in it could be used: `addressType` FQDN
 * (meshlite dials IPs only) or unknown, or `ports`/`endpoints` not lists. A bad entry inside the lists skips that
 * entry alone and says so in `warnings`:
 * - a port is kept when it is TCP (protocol absent means TCP) with a number; UDP/SCTP ports are left out quietly;
 *   a port without a number ("all ports" in the API) is skipped with a warning, as kube-proxy skips it, since
 *   there is no number to dial; name absent means '';
 * - an endpoint is kept when every address is an IP of the slice's family; conditions follow the API's rules
 *   for absent values: ready nil → true, serving nil → ready, terminating nil → false; a condition of the wrong
 *   type skips the endpoint rather than guessing its state;
 * - targetRef, nodeName, zone, hints and hostname are not kept.
 * A slice without the service-name label belongs to no Service: its identity and that fact are all that is kept.
 */
export function projectEndpointSlice(raw: unknown): EndpointSliceRecord {
  return project(raw, true, buildSlice, (identity, reason) =>
    sliceRecord(identity, reason, NO_WARNINGS, null, 'IPv4', NO_PORTS, NO_ENDPOINTS, null),
  );
}

function buildSlice(object: JsonObject, identity: ObjectIdentity): EndpointSliceRecord {
  const warnings = new Warnings();
  const addressType = readAddressType(object.addressType);
  const serviceName = readServiceName(object, warnings);
  const changedMs = readTriggerTime(object, warnings);
  if (serviceName === null) return sliceRecord(identity, null, warnings.result(), null, addressType, NO_PORTS, NO_ENDPOINTS, changedMs);
  const ports = slicePorts(object.ports, warnings);
  const endpoints = sliceEndpoints(object.endpoints, addressType === 'IPv4' ? 4 : 6, warnings);
  return sliceRecord(identity, null, warnings.result(), serviceName, addressType, ports, endpoints, changedMs);
}

function readAddressType(value: unknown): SliceAddressType {
  if (value === 'IPv4' || value === 'IPv6') return value;
  if (value === 'FQDN') invalidField('addressType', 'FQDN slices are not used: meshlite dials IP addresses only');
  return invalidField('addressType', `not IPv4 or IPv6 (got ${show(value)})`);
}

function readServiceName(object: JsonObject, warnings: Warnings): string | null {
  const labels = field(object.metadata, 'labels');
  if (isAbsent(labels)) return null;
  const map = asObject(labels);
  const value = map?.[SERVICE_NAME_LABEL];
  if (typeof value === 'string' && value !== '') return value;
  if (map === null) warnings.add('metadata.labels', `not a map (got ${show(labels)}); the slice belongs to no Service`);
  else if (!isAbsent(value) && value !== '') {
    warnings.add(`metadata.labels["${SERVICE_NAME_LABEL}"]`, `not a string (got ${show(value)}); the slice belongs to no Service`);
  }
  return null;
}

/** Only feeds a latency metric, so an unreadable value costs that one observation, not the slice. */
function readTriggerTime(object: JsonObject, warnings: Warnings): number | null {
  const value = annotation(object, ANNOTATIONS.lastChangeTriggerTime, warnings);
  if (value === undefined) return null;
  const ms = parseRfc3339Ms(value);
  if (ms === null) warnings.add(`metadata.annotations["${ANNOTATIONS.lastChangeTriggerTime}"]`, `not an RFC 3339 time (got ${show(value)}); ignored`);
  return ms;
}

function slicePorts(raw: unknown, warnings: Warnings): SlicePort[] {
  if (isAbsent(raw)) return NO_PORTS;
  if (!Array.isArray(raw)) invalidField('ports', `not a list (got ${show(raw)})`);
  const ports: SlicePort[] = [];
  for (let i = 0; i < raw.length; i++) {
    const path = `ports[${i}]`;
    const entry = asObject(raw[i]);
    if (entry === null) {
      warnings.add(path, `not a map (got ${show(raw[i])}); skipped`);
      continue;
    }
    if (!isTcp(entry.protocol)) {
      if (typeof entry.protocol !== 'string') warnings.add(`${path}.protocol`, `not a string (got ${show(entry.protocol)}); skipped`);
      continue;
    }
    if (isAbsent(entry.port)) {
      warnings.add(`${path}.port`, 'missing ("all ports" gives no number to dial); skipped');
      continue;
    }
    if (!isPortNumber(entry.port)) {
      warnings.add(`${path}.port`, `not an integer 1..65535 (got ${show(entry.port)}); skipped`);
      continue;
    }
    const name = isAbsent(entry.name) ? '' : entry.name;
    if (typeof name !== 'string') {
      warnings.add(`${path}.name`, `not a string (got ${show(entry.name)}); skipped`);
      continue;
    }
    if (ports.some((port) => port.name === name)) {
      warnings.add(`${path}.name`, `${show(name)} is the name of an earlier TCP port too; skipped`);
      continue;
    }
    ports.push({ name, port: entry.port });
  }
  return ports.length === 0 ? NO_PORTS : ports;
}

function sliceEndpoints(raw: unknown, family: 4 | 6, warnings: Warnings): SliceEndpoint[] {
  if (isAbsent(raw)) return NO_ENDPOINTS;
  if (!Array.isArray(raw)) invalidField('endpoints', `not a list (got ${show(raw)})`);
  const endpoints: SliceEndpoint[] = [];
  for (let i = 0; i < raw.length; i++) {
    const endpoint = sliceEndpoint(raw[i], `endpoints[${i}]`, family, warnings);
    if (endpoint !== null) endpoints.push(endpoint);
  }
  return endpoints.length === 0 ? NO_ENDPOINTS : endpoints;
}

/** The endpoint, or null (with a warning) when any part of it cannot be trusted. */
function sliceEndpoint(raw: unknown, path: string, family: 4 | 6, warnings: Warnings): SliceEndpoint | null {
  const entry = asObject(raw);
  if (entry === null) {
    warnings.add(path, `not a map (got ${show(raw)}); skipped`);
    return null;
  }
  const list = entry.addresses;
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_ADDRESSES) {
    const got = Array.isArray(list) ? `${list.length} addresses` : show(list);
    warnings.add(`${path}.addresses`, `not a list of 1 to ${MAX_ADDRESSES} addresses (got ${got}); endpoint skipped`);
    return null;
  }
  const addresses: string[] = [];
  for (let j = 0; j < list.length; j++) {
    const parsed = parseKubeIp(list[j]);
    if (parsed === null || parsed.family !== family) {
      const what = parsed === null ? 'not an IP address' : `not an IPv${family} address, as the slice's addressType says`;
      warnings.add(`${path}.addresses[${j}]`, `${what} (got ${show(list[j])}); endpoint skipped`);
      return null;
    }
    if (!addresses.includes(parsed.ip)) addresses.push(parsed.ip);
  }
  const conditions = isAbsent(entry.conditions) ? {} : asObject(entry.conditions);
  if (conditions === null) {
    warnings.add(`${path}.conditions`, `not a map (got ${show(entry.conditions)}); endpoint skipped`);
    return null;
  }
  const ready = condition(conditions, 'ready', true, path, warnings);
  if (ready === null) return null;
  const serving = condition(conditions, 'serving', ready, path, warnings);
  if (serving === null) return null;
  const terminating = condition(conditions, 'terminating', false, path, warnings);
  if (terminating === null) return null;
  return { addresses, ready, serving, terminating };
}

function condition(conditions: JsonObject, name: string, absent: boolean, path: string, warnings: Warnings): boolean | null {
  const value = conditions[name];
  if (isAbsent(value)) return absent;
  if (typeof value === 'boolean') return value;
  warnings.add(`${path}.conditions.${name}`, `not a boolean (got ${show(value)}); endpoint skipped`);
  return null;
}

function sliceRecord(
  metadata: ObjectIdentity,
  invalid: string | null,
  warnings: readonly string[],
  serviceName: string | null,
  addressType: SliceAddressType,
  ports: SlicePort[],
  endpoints: SliceEndpoint[],
  lastChangeTriggerTimeMs: number | null,
): EndpointSliceRecord {
  return { kind: 'EndpointSlice', metadata, invalid, warnings, serviceName, addressType, ports, endpoints, lastChangeTriggerTimeMs };
}
