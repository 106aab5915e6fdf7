// The state file's format: discovery's last synced view (services, this node's opted-in pods) to JSON and back, checked.

import type { EndpointSpec, ServiceSpec } from '../registry/endpoint.ts';
import { isBalancerName } from '../vocabulary/balancer-names.ts';
import type { ErrorCode } from '../vocabulary/errors.ts';
import { formatHostPort } from '../vocabulary/host-port.ts';
import { parseKubeIp } from '../vocabulary/ip-address.ts';
import { serviceKey } from '../vocabulary/service-key.ts';
import type { PodRecord } from './kube-objects.ts';

/** Bumped whenever a field changes meaning: an agent reads only its own version (an older file is simply not used;
 *  the next sync writes the new one). */
export const PERSISTED_VIEW_VERSION = 1;

/** An opted-in pod of this node and the IPs it held. */
export interface PersistedPod {
  namespace: string;
  name: string;
  ips: string[];
}

/** What the state file holds. `savedAtMs`: wall-clock epoch ms of the write (the view is as old as that, at least). */
export interface PersistedView {
  savedAtMs: number;
  nodeName: string;
  services: ServiceSpec[];
  pods: PersistedPod[];
}

/** Why a file was not used: the code the log line and the error counter carry, and what exactly was wrong. */
export type ViewRejection = { code: ErrorCode; reason: string };

export type DecodeResult = { ok: true; view: PersistedView } | { ok: false; rejection: ViewRejection };

/**
 * The file's text. Keys and endpoint addresses are not written: they follow from the other fields, and a reader that
 * derives them cannot meet a file where they disagree.
 */
export function encodePersistedView(view: PersistedView): string {
  return JSON.stringify({
    version: PERSISTED_VIEW_VERSION,
    savedAt: new Date(view.savedAtMs).toISOString(),
    nodeName: view.nodeName,
    services: view.services.map((service) => ({
      namespace: service.namespace,
      name: service.name,
      port: service.port,
      clusterIPs: service.clusterIPs,
      balancer: service.balancer,
      endpoints: service.endpoints.map((e) => ({ host: e.host, port: e.port, ready: e.ready, serving: e.serving, terminating: e.terminating })),
    })),
    pods: view.pods,
  });
}

/**
 * The view in `text`, all or nothing: any field of the wrong type or value, a duplicate service or pod, or a file
 * written for another node rejects the whole file, so that what is loaded is exactly what an agent wrote.
 */
export function decodePersistedView(text: string, nodeName: string): DecodeResult {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return reject('ML_STATE_FILE_MALFORMED', `not JSON (truncated?): ${error instanceof Error ? error.message : String(error)}`);
  }
  if (!isObject(json)) return reject('ML_STATE_FILE_MALFORMED', 'not a JSON object');
  if (json.version !== PERSISTED_VIEW_VERSION) {
    return reject('ML_STATE_FILE_VERSION', `version ${JSON.stringify(json.version) ?? 'missing'}, this agent reads version ${PERSISTED_VIEW_VERSION}`);
  }
  try {
    const savedAtMs = typeof json.savedAt === 'string' ? Date.parse(json.savedAt) : Number.NaN;
    if (!Number.isFinite(savedAtMs)) throw new FieldError('savedAt', 'a date-time');
    const fileNode = text1(json.nodeName, 'nodeName');
    if (fileNode !== nodeName) throw new FieldError('nodeName', `this node's name (${nodeName}), not ${fileNode}`);
    const services = list(json.services, 'services').map((raw, i) => readService(raw, `services[${i}]`));
    const pods = list(json.pods, 'pods').map((raw, i) => readPod(raw, `pods[${i}]`));
    unique(services.map((s) => s.key), 'services', 'service');
    unique(pods.map((p) => `${p.namespace}/${p.name}`), 'pods', 'pod');
    return { ok: true, view: { savedAtMs, nodeName, services, pods } };
  } catch (error) {
    if (error instanceof FieldError) return reject('ML_STATE_FILE_INVALID', error.message);
    throw error;
  }
}

/** The pods as the opt-in index takes them: each opted in by its own annotation, as it was when the file was written. */
export function persistedPodRecords(pods: readonly PersistedPod[], nodeName: string): PodRecord[] {
  return pods.map((pod) => ({
    kind: 'Pod',
    metadata: { namespace: pod.namespace, name: pod.name, resourceVersion: '' },
    invalid: null,
    nodeName,
    ips: [...pod.ips],
    hostNetwork: false,
    phase: 'Running',
    inject: 'enabled',
  }));
}

function reject(code: ErrorCode, reason: string): DecodeResult {
  return { ok: false, rejection: { code, reason } };
}

/** A field that is not what an agent writes; the message names it. */
class FieldError extends Error {
  constructor(path: string, expected: string) {
    super(`${path}: expected ${expected}`);
  }
}

function readService(raw: unknown, path: string): ServiceSpec {
  if (!isObject(raw)) throw new FieldError(path, 'an object');
  const namespace = text1(raw.namespace, `${path}.namespace`);
  const name = text1(raw.name, `${path}.name`);
  const port = portNumber(raw.port, `${path}.port`);
  const clusterIPs = list(raw.clusterIPs, `${path}.clusterIPs`).map((ip, i) => address(ip, `${path}.clusterIPs[${i}]`));
  const balancer = raw.balancer === null ? null : isBalancerName(raw.balancer) ? raw.balancer : null;
  if (balancer === null && raw.balancer !== null) throw new FieldError(`${path}.balancer`, 'null or a balancer name');
  const endpoints = list(raw.endpoints, `${path}.endpoints`).map((e, i) => readEndpoint(e, `${path}.endpoints[${i}]`));
  return { key: serviceKey(namespace, name, port), namespace, name, port, clusterIPs, balancer, endpoints };
}

function readEndpoint(raw: unknown, path: string): EndpointSpec {
  if (!isObject(raw)) throw new FieldError(path, 'an object');
  const host = address(raw.host, `${path}.host`);
  const port = portNumber(raw.port, `${path}.port`);
  return {
    address: formatHostPort(host, port),
    host,
    port,
    ready: flag(raw.ready, `${path}.ready`),
    serving: flag(raw.serving, `${path}.serving`),
    terminating: flag(raw.terminating, `${path}.terminating`),
  };
}

function readPod(raw: unknown, path: string): PersistedPod {
  if (!isObject(raw)) throw new FieldError(path, 'an object');
  const ips = list(raw.ips, `${path}.ips`).map((ip, i) => address(ip, `${path}.ips[${i}]`));
  if (ips.length === 0) throw new FieldError(`${path}.ips`, 'at least one IP');
  return { namespace: text1(raw.namespace, `${path}.namespace`), name: text1(raw.name, `${path}.name`), ips };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function list(value: unknown, path: string): unknown[] {
  if (!Array.isArray(value)) throw new FieldError(path, 'an array');
  return value;
}

/** Kubernetes names are at most 253 characters and never contain `/` or `:` (a service key's separators). */
function text1(value: unknown, path: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 253 || /[/:\s]/.test(value)) {
    throw new FieldError(path, 'a Kubernetes name');
  }
  return value;
}

function portNumber(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65535) throw new FieldError(path, 'a port, 1 to 65535');
  return value;
}

function flag(value: unknown, path: string): boolean {
  if (typeof value !== 'boolean') throw new FieldError(path, 'true or false');
  return value;
}

/** In the spelling the registry and the kernel use, as the agent wrote it. */
function address(value: unknown, path: string): string {
  const parsed = parseKubeIp(value);
  if (parsed === null || parsed.ip !== value) throw new FieldError(path, 'an IP address in normal form');
  return parsed.ip;
}

function unique(keys: readonly string[], path: string, what: string): void {
  const seen = new Set<string>();
  for (const key of keys) {
    if (seen.has(key)) throw new FieldError(path, `each ${what} once (${key} is listed twice)`);
    seen.add(key);
  }
}
