// The wire protocol between the CNI plugin and the agent: request bodies (validated, never trusted) and the answers.

import type { ErrorCode } from '../vocabulary/errors.ts';
import { parseKubeIp } from '../vocabulary/ip-address.ts';

/** `POST /v1/cni/add`: a sandbox of the pod got these IPs from the plugins before meshlite in the chain. */
export interface CniAddRequest {
  containerId: string;
  netns: string;
  ifName: string;
  namespace: string;
  name: string;
  /** Normalised as the API and the kernel spell them; deduplicated; at least one. */
  ips: string[];
}

/** `POST /v1/cni/del`: the sandbox is gone. */
export interface CniDelRequest {
  containerId: string;
  /** Null when the runtime's DEL did not name the pod (CNI_ARGS are optional on DEL): the container id is enough. */
  namespace: string | null;
  name: string | null;
}

/** `POST /v1/cni/check`: is the sandbox's enrollment what it should be? `ips` are the sandbox's when the plugin has
 *  them (its prevResult); otherwise the ones its ADD gave. */
export interface CniCheckRequest {
  containerId: string;
  namespace: string;
  name: string;
  ips: string[] | null;
}

/** ADD: whether the pod's IPs are now in the interception rules, and why (or why not). */
export interface AddAnswer {
  enrolled: boolean;
  reason: string;
}

/** DEL: the IPs this sandbox's ADD had given and that are released now ([] for a repeated or unknown DEL). */
export interface DelAnswer {
  released: string[];
}

/** CHECK: `enrolled` is what holds, `expected` what should; the plugin fails CHECK when they differ. */
export interface CheckAnswer {
  enrolled: boolean;
  expected: boolean;
  reason: string;
}

/** Every error answer: the code (docs/errors.md) and a message for the plugin's log. */
export interface ErrorAnswer {
  code: ErrorCode;
  message: string;
}

export type CniReply =
  | { status: 200; body: AddAnswer | DelAnswer | CheckAnswer | { ready: true } }
  | { status: 400 | 404 | 405 | 413 | 415 | 500 | 503; body: ErrorAnswer };

export function errorReply(status: 400 | 404 | 405 | 413 | 415 | 500 | 503, code: ErrorCode, message: string): CniReply {
  return { status, body: { code, message } };
}

/** What a malformed body is answered with (400, ML_CNI_BAD_REQUEST). */
export class CniRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CniRequestError';
  }
}

// Kubernetes' own rules: a namespace is a DNS-1123 label, a pod name a DNS-1123 subdomain.
const DNS_1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_1123_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** Runtimes use 64 hex digits; the bound only keeps a hostile body from making the agent hold megabytes per pod. */
const MAX_ID = 256;
/** One address per family today; a few more would still be sane, hundreds would not. */
const MAX_IPS = 8;

type Fields = Record<string, unknown>;

export function parseAddRequest(body: unknown): CniAddRequest {
  const fields = object(body);
  return {
    containerId: containerId(fields),
    netns: text(fields, 'netns', 4096),
    ifName: text(fields, 'ifName', 15),
    ...pod(fields),
    ips: ips(fields.ips),
  };
}

export function parseDelRequest(body: unknown): CniDelRequest {
  const fields = object(body);
  const unnamed = (fields.namespace === undefined || fields.namespace === null) && (fields.name === undefined || fields.name === null);
  return { containerId: containerId(fields), ...(unnamed ? { namespace: null, name: null } : pod(fields)) };
}

export function parseCheckRequest(body: unknown): CniCheckRequest {
  const fields = object(body);
  return { containerId: containerId(fields), ...pod(fields), ips: fields.ips === undefined || fields.ips === null ? null : ips(fields.ips) };
}

function object(body: unknown): Fields {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new CniRequestError('the body must be a JSON object');
  return body as Fields;
}

function text(fields: Fields, key: string, maxLength: number): string {
  const value = fields[key];
  if (value === undefined || value === null) throw new CniRequestError(`"${key}" is missing`);
  if (typeof value !== 'string' || value === '') throw new CniRequestError(`"${key}" must be a non-empty string`);
  if (value.length > maxLength) throw new CniRequestError(`"${key}" is longer than ${maxLength} characters`);
  return value;
}

function containerId(fields: Fields): string {
  return text(fields, 'containerId', MAX_ID);
}

function pod(fields: Fields): { namespace: string; name: string } {
  const namespace = text(fields, 'namespace', 63);
  if (!DNS_1123_LABEL.test(namespace)) throw new CniRequestError(`"namespace" ${JSON.stringify(namespace)} is not a Kubernetes namespace name`);
  const name = text(fields, 'name', 253);
  if (!DNS_1123_SUBDOMAIN.test(name)) throw new CniRequestError(`"name" ${JSON.stringify(name)} is not a Kubernetes pod name`);
  return { namespace, name };
}

function ips(value: unknown): string[] {
  if (value === undefined || value === null) throw new CniRequestError('"ips" is missing');
  if (!Array.isArray(value)) throw new CniRequestError('"ips" must be a list of IP addresses');
  if (value.length === 0) throw new CniRequestError('"ips" must list at least one address');
  if (value.length > MAX_IPS) throw new CniRequestError(`"ips" lists more than ${MAX_IPS} addresses`);
  const result: string[] = [];
  for (let i = 0; i < value.length; i++) {
    const parsed = parseKubeIp(value[i]);
    if (parsed === null) throw new CniRequestError(`"ips[${i}]" ${JSON.stringify(value[i])} is not an IP address`);
    if (!result.includes(parsed.ip)) result.push(parsed.ip);
  }
  return result;
}
