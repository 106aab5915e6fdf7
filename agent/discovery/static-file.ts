// The static discovery file (YAML): parsed and validated into ServiceSpecs; every error names the file, line and field.

import { isIP } from 'node:net';
import { isMap, isNode, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import { MeshliteError } from '../vocabulary/errors.ts';
import { canonicalIPv6, formatHostPort, parseHostPort } from '../vocabulary/host-port.ts';
import type { EndpointSpec, ServiceSpec } from '../registry/endpoint.ts';
import { serviceKey } from '../vocabulary/service-key.ts';
import { BALANCER_NAMES } from '../vocabulary/balancer-names.ts';
import type { BalancerName } from '../vocabulary/balancer-names.ts';

/** A local pod and its opt-in, for interception without a cluster (used from issue 5 on). */
export interface PodSpec {
  namespace: string;
  name: string;
  /** null when the file leaves it out: the pod's IP then comes from the CNI plugin when the pod starts. */
  ip: string | null;
  inject: 'enabled' | 'disabled';
}

export interface StaticConfig {
  services: ServiceSpec[];
  pods: PodSpec[];
}

/** The file is unreadable or malformed; the message is ready to print: `file:line:col: field.path: what is wrong`. */
export class StaticFileError extends MeshliteError {
  constructor(message: string, options?: ErrorOptions) {
    super('ML_STATIC_FILE_INVALID', message, options);
    this.name = 'StaticFileError';
  }
}

type Path = readonly (string | number)[];
type Fields = Record<string, unknown>;

// Kubernetes' own rules: a Service name is a DNS-1035 label, a namespace a DNS-1123 label, a pod name a subdomain.
const DNS_1035_LABEL = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_1123_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * Pure: text in, specs out. Strict on purpose: unknown keys are errors (a typo like `terminatng: true` must not
 * silently route to a pod on its way out), and an empty file is an error (an editor that truncates before it
 * writes would otherwise remove every service for a moment).
 */
export function parseStaticFile(text: string, fileName: string): StaticConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const at = (offset: number): string => {
    const { line, col } = lineCounter.linePos(offset);
    return `${fileName}:${line}:${col}`;
  };
  if (doc.errors.length > 0) {
    const error = doc.errors[0];
    throw new StaticFileError(`${at(error.pos[0])}: not valid YAML: ${firstLine(error.message)}`, { cause: error });
  }

  /** Throws for the field at `path`, at the line of its key, or of the nearest enclosing node in the document. */
  const fail = (path: Path, what: string): never => {
    let where = fileName;
    for (let depth = path.length; depth >= 0; depth--) {
      const offset = nodeOffset(doc.contents, path.slice(0, depth));
      if (offset !== null) {
        where = at(offset);
        break;
      }
    }
    throw new StaticFileError(path.length === 0 ? `${where}: ${what}` : `${where}: ${formatPath(path)}: ${what}`);
  };

  const root: unknown = doc.toJS({ maxAliasCount: 100 });
  if (root === null || root === undefined) fail([], 'the file is empty; expected a mapping with a "services" list');
  const top = fields(root, [], ['services', 'pods'], ['services'], fail);
  const parsed = list(top.services, ['services'], fail).map((item, i) => parseService(item, ['services', i], fail));
  const pods = top.pods === undefined ? [] : list(top.pods, ['pods'], fail).map((item, i) => parsePod(item, ['pods', i], fail));
  checkServicesUnique(parsed, fail);
  checkPodsUnique(pods, fail);
  return { services: parsed.map(({ spec }) => spec), pods };
}

type Fail = (path: Path, what: string) => never;

/** A service and where each of its ClusterIPs stands in the file (for the duplicate check's message). */
interface ParsedService {
  spec: ServiceSpec;
  clusterIPPaths: Path[];
}

function parseService(item: unknown, path: Path, fail: Fail): ParsedService {
  const f = fields(item, path, ['name', 'namespace', 'port', 'clusterIP', 'clusterIPs', 'balancer', 'endpoints'], ['name', 'port', 'endpoints'], fail);
  const name = dnsName(f.name, [...path, 'name'], DNS_1035_LABEL, 'a Service name (lower-case letters, digits and "-", starting with a letter, at most 63)', fail);
  const namespace =
    f.namespace === undefined
      ? 'default'
      : dnsName(f.namespace, [...path, 'namespace'], DNS_1123_LABEL, 'a namespace (lower-case letters, digits and "-", at most 63)', fail);
  const port = portNumber(f.port, [...path, 'port'], fail);
  const { ips: clusterIPs, paths: clusterIPPaths } = parseClusterIPs(f, path, fail);
  let balancer: BalancerName | null = null;
  if (f.balancer !== undefined) {
    if (typeof f.balancer !== 'string' || !(BALANCER_NAMES as readonly string[]).includes(f.balancer)) {
      fail([...path, 'balancer'], `${show(f.balancer)} is not a balancer; expected one of ${BALANCER_NAMES.join(', ')}`);
    }
    balancer = f.balancer as BalancerName;
  }
  const endpointsPath = [...path, 'endpoints'];
  const endpoints = list(f.endpoints, endpointsPath, fail).map((e, i) => parseEndpoint(e, [...endpointsPath, i], fail));
  const seen = new Map<string, number>();
  endpoints.forEach((endpoint, i) => {
    const earlier = seen.get(endpoint.address);
    if (earlier !== undefined) fail([...endpointsPath, i, 'address'], `${endpoint.address} is listed twice (also endpoints[${earlier}])`);
    seen.set(endpoint.address, i);
  });
  return { spec: { key: serviceKey(namespace, name, port), namespace, name, port, clusterIPs, balancer, endpoints }, clusterIPPaths };
}

/**
 * `clusterIP` (one address) or, for a dual-stack Service, `clusterIPs` (one per family, primary first), with
 * Kubernetes' own rules for the two: when both are given, `clusterIP` is `clusterIPs[0]`.
 */
function parseClusterIPs(f: Fields, path: Path, fail: Fail): { ips: string[]; paths: Path[] } {
  const singlePath = [...path, 'clusterIP'];
  const single = f.clusterIP === undefined ? null : ipAddress(f.clusterIP, singlePath, fail);
  if (f.clusterIPs === undefined) return single === null ? { ips: [], paths: [] } : { ips: [single], paths: [singlePath] };
  const listPath = [...path, 'clusterIPs'];
  const items = list(f.clusterIPs, listPath, fail);
  if (items.length < 1 || items.length > 2) fail(listPath, `${items.length} addresses; expected one, or one IPv4 and one IPv6 (primary first)`);
  const paths = items.map((_, i) => [...listPath, i]);
  const ips = items.map((item, i) => ipAddress(item, paths[i], fail));
  if (ips.length === 2 && isIP(ips[0]) === isIP(ips[1])) fail(paths[1], `${ips[1]} is of the same family as ${ips[0]}; expected one IPv4 and one IPv6`);
  if (single !== null && single !== ips[0]) fail(singlePath, `${single} is not clusterIPs[0] (${ips[0]}); when both are given, clusterIP is the primary`);
  return { ips, paths };
}

function parseEndpoint(item: unknown, path: Path, fail: Fail): EndpointSpec {
  const f = fields(item, path, ['address', 'terminating'], ['address'], fail);
  if (typeof f.address !== 'string') fail([...path, 'address'], `${show(f.address)} is not a string; expected IP:port`);
  const parsed = parseHostPort(f.address as string, { allowHostname: false, allowPortZero: false });
  if (!parsed.ok) {
    fail([...path, 'address'], `${show(f.address)} is not IP:port (${parsed.reason}); endpoints are IPs, e.g. 10.0.0.7:50051 or [fd00::7]:50051`);
  }
  const { host, port } = (parsed as { ok: true; value: { host: string; port: number } }).value;
  if (f.terminating !== undefined && typeof f.terminating !== 'boolean') {
    fail([...path, 'terminating'], `${show(f.terminating)} is not true or false`);
  }
  const terminating = f.terminating === true;
  // What an EndpointSlice says of a terminating pod: not ready, still serving (kube-proxy may still use it).
  return { address: formatHostPort(host, port), host, port, ready: !terminating, serving: true, terminating };
}

function parsePod(item: unknown, path: Path, fail: Fail): PodSpec {
  const f = fields(item, path, ['name', 'namespace', 'ip', 'inject'], ['name', 'inject'], fail);
  const name = dnsName(f.name, [...path, 'name'], DNS_1123_SUBDOMAIN, 'a pod name (a DNS subdomain)', fail);
  const namespace =
    f.namespace === undefined ? 'default' : dnsName(f.namespace, [...path, 'namespace'], DNS_1123_LABEL, 'a namespace', fail);
  const ip = f.ip === undefined ? null : ipAddress(f.ip, [...path, 'ip'], fail);
  if (f.inject !== 'enabled' && f.inject !== 'disabled') fail([...path, 'inject'], `${show(f.inject)} is not enabled or disabled`);
  return { namespace, name, ip, inject: f.inject as PodSpec['inject'] };
}

function checkServicesUnique(services: readonly ParsedService[], fail: Fail): void {
  const byKey = new Map<string, number>();
  const byClusterAddress = new Map<string, number>();
  services.forEach(({ spec: service, clusterIPPaths }, i) => {
    const earlier = byKey.get(service.key);
    if (earlier !== undefined) fail(['services', i], `duplicate of services[${earlier}] (${service.key})`);
    byKey.set(service.key, i);
    service.clusterIPs.forEach((ip, j) => {
      // Transparent mode finds the service by the address a client dialled: two services there would be ambiguous.
      const address = formatHostPort(ip, service.port);
      const other = byClusterAddress.get(address);
      if (other !== undefined) fail(clusterIPPaths[j], `${address} is also the address of services[${other}]`);
      byClusterAddress.set(address, i);
    });
  });
}

function checkPodsUnique(pods: readonly PodSpec[], fail: Fail): void {
  const byIp = new Map<string, number>();
  const byName = new Map<string, number>();
  pods.forEach((pod, i) => {
    if (pod.ip !== null) {
      const sameIp = byIp.get(pod.ip);
      if (sameIp !== undefined) fail(['pods', i, 'ip'], `${pod.ip} is also the IP of pods[${sameIp}]`);
      byIp.set(pod.ip, i);
    }
    const sameName = byName.get(`${pod.namespace}/${pod.name}`);
    if (sameName !== undefined) fail(['pods', i, 'name'], `duplicate of pods[${sameName}] (${pod.namespace}/${pod.name})`);
    byName.set(`${pod.namespace}/${pod.name}`, i);
  });
}

/** A mapping with only `allowed` keys and every `required` one present. */
function fields(value: unknown, path: Path, allowed: readonly string[], required: readonly string[], fail: Fail): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Map) {
    fail(path, `${show(value)} is not a mapping; expected keys ${allowed.join(', ')}`);
  }
  const record = value as Fields;
  for (const key of Object.keys(record)) {
    if (!allowed.includes(key)) fail([...path, key], `unknown key; expected one of ${allowed.join(', ')}`);
  }
  for (const key of required) {
    if (record[key] === undefined || record[key] === null) fail(path, `"${key}" is missing`);
  }
  return record;
}

function list(value: unknown, path: Path, fail: Fail): unknown[] {
  if (!Array.isArray(value)) fail(path, `${show(value)} is not a list`);
  return value as unknown[];
}

function dnsName(value: unknown, path: Path, rule: RegExp, expected: string, fail: Fail): string {
  if (typeof value !== 'string' || !rule.test(value)) fail(path, `${show(value)} is not ${expected}`);
  return value as string;
}

function portNumber(value: unknown, path: Path, fail: Fail): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65535) {
    fail(path, `${show(value)} is not a port; expected an integer from 1 to 65535`);
  }
  return value as number;
}

function ipAddress(value: unknown, path: Path, fail: Fail): string {
  if (typeof value !== 'string' || isIP(value) === 0 || value.includes('%')) fail(path, `${show(value)} is not an IP address`);
  const ip = value as string;
  return isIP(ip) === 6 ? canonicalIPv6(ip) : ip;
}

/** Where the field at `path` starts: its key when it is a mapping entry (so an unknown key is pointed at itself). */
function nodeOffset(root: unknown, path: Path): number | null {
  let node: unknown = root;
  let offset: number | null = isNode(root) && root.range ? root.range[0] : null;
  for (const part of path) {
    if (isMap(node)) {
      const pair = node.items.find((item) => isScalar(item.key) && item.key.value === part);
      if (pair === undefined) return null;
      offset = isNode(pair.key) && pair.key.range ? pair.key.range[0] : null;
      node = pair.value;
    } else if (isSeq(node) && typeof part === 'number') {
      node = node.items[part];
      offset = isNode(node) && node.range ? node.range[0] : null;
    } else {
      return null;
    }
  }
  return offset;
}

/** `services[1].endpoints[0].address`: the way people point at a field of the file. */
export function formatPath(path: Path): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`;
  return out;
}

function show(value: unknown): string {
  if (value === undefined || value === null) return 'an empty value';
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return String(value);
}

function firstLine(message: string): string {
  return message.split('\n')[0];
}
