// Reading untrusted API JSON without ever throwing out: typed views, identity, annotations, reasons and capped warnings.

import type { InjectSetting, ObjectIdentity } from './kube-objects.ts';

export type JsonObject = Record<string, unknown>;

/** A plain JSON object (not null, not an array), or null. */
export function asObject(value: unknown): JsonObject | null {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as JsonObject) : null;
}

/** A field of `object`, or undefined when `object` is not a JSON object. */
export function field(object: unknown, key: string): unknown {
  const view = asObject(object);
  return view === null ? undefined : view[key];
}

/** Absent means what the API means by omitting a field: both undefined and JSON null. */
export function isAbsent(value: unknown): value is null | undefined {
  return value === undefined || value === null;
}

export function isPortNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535;
}

/** A value as a reason quotes it: short, so that a huge or hostile field cannot bloat a log line or a record. */
export function show(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  // JSON.stringify makes a fresh string: a slice of a huge field would keep the whole field alive in the reason.
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return 'a list';
  return `a ${typeof value === 'object' ? 'map' : typeof value}`;
}

/** The reason an object is unusable; thrown inside a projection and turned into its `invalid` by `project`. */
export class InvalidField extends Error {
  readonly reason: string;
  constructor(path: string, what: string) {
    super(`${path}: ${what}`);
    this.reason = this.message;
  }
}

export function invalidField(path: string, what: string): never {
  throw new InvalidField(path, what);
}

/** Shared by every record without warnings, so that the common case costs one pointer. */
export const NO_WARNINGS: readonly string[] = Object.freeze([]);

/** Beyond this many, the rest are counted: a 1000-endpoint slice of garbage gives six lines, not a thousand. */
const MAX_WARNINGS = 5;

/** What a projection skipped or ignored while the object as a whole stays usable; logged once per version. */
export class Warnings {
  private readonly list: string[] = [];
  private dropped = 0;

  /** The same warning twice (one mistyped annotations map read for two keys) is said once. */
  add(path: string, what: string): void {
    const warning = `${path}: ${what}`;
    if (this.list.includes(warning)) return;
    if (this.list.length < MAX_WARNINGS) this.list.push(warning);
    else this.dropped += 1;
  }

  result(): readonly string[] {
    if (this.list.length === 0) return NO_WARNINGS;
    if (this.dropped > 0) this.list.push(`and ${this.dropped} more like these`);
    return this.list;
  }
}

/** Identity as far as it can be read (strings default to ''), and why it is not enough, if it is not. */
export interface ReadIdentity {
  identity: ObjectIdentity;
  problem: string | null;
}

/**
 * `metadata.name`, `.namespace` and `.resourceVersion`. A nameless object cannot be filed; a namespaced kind
 * without a namespace cannot either. Cluster-scoped kinds get namespace '' whatever the object says, because the
 * informer cache files them under ''.
 */
export function readIdentity(object: JsonObject, namespaced: boolean): ReadIdentity {
  const metadata = asObject(object.metadata);
  const name = metadata?.name;
  const namespace = metadata?.namespace;
  const resourceVersion = metadata?.resourceVersion;
  const identity: ObjectIdentity = {
    name: typeof name === 'string' ? name : '',
    namespace: namespaced && typeof namespace === 'string' ? namespace : '',
    resourceVersion: typeof resourceVersion === 'string' ? resourceVersion : '',
  };
  let problem: string | null = null;
  if (metadata === null) problem = `metadata: not a map (got ${show(object.metadata)})`;
  else if (identity.name === '') problem = `metadata.name: not a non-empty string (got ${show(name)})`;
  else if (namespaced && identity.namespace === '') problem = `metadata.namespace: not a non-empty string (got ${show(namespace)})`;
  return { identity, problem };
}

/** `metadata.annotations[key]` when it is a string; a mistyped annotations map reads as none (and is reported). */
export function annotation(object: JsonObject, key: string, warnings: Warnings): string | undefined {
  const annotations = field(object.metadata, 'annotations');
  if (isAbsent(annotations)) return undefined;
  const map = asObject(annotations);
  if (map === null) {
    warnings.add('metadata.annotations', `not a map (got ${show(annotations)}); read as none`);
    return undefined;
  }
  const value = map[key];
  if (value === undefined || typeof value === 'string') return value;
  warnings.add(`metadata.annotations["${key}"]`, `not a string (got ${show(value)}); ignored`);
  return undefined;
}

/** The inject annotation of a Pod or Namespace: `enabled | disabled`; any other value is ignored but reported,
 *  since it is almost always a typo of the user's intent (`true`, `Enabled`). */
export function injectSetting(object: JsonObject, key: string, warnings: Warnings): InjectSetting | null {
  const value = annotation(object, key, warnings);
  if (value === undefined) return null;
  if (value === 'enabled' || value === 'disabled') return value;
  warnings.add(`metadata.annotations["${key}"]`, `${show(value)} is not enabled or disabled; ignored`);
  return null;
}

/**
 * Runs `build` over `raw` and guarantees a record: a non-object or an unfiled identity gives `invalidRecord` at
 * once; an InvalidField thrown by `build` gives it with that reason; anything else thrown (a bug, or an input that
 * did not come from JSON.parse, e.g. with a throwing getter) gives it with a generic reason rather than escaping
 * into the informer, which would stop on it.
 */
export function project<R>(
  raw: unknown,
  namespaced: boolean,
  build: (object: JsonObject, identity: ObjectIdentity) => R,
  invalidRecord: (identity: ObjectIdentity, reason: string) => R,
): R {
  let identity: ObjectIdentity = { name: '', namespace: '', resourceVersion: '' };
  try {
    const object = asObject(raw);
    if (object === null) return invalidRecord(identity, `the object is ${show(raw)}, not a map`);
    const read = readIdentity(object, namespaced);
    identity = read.identity;
    if (read.problem !== null) return invalidRecord(identity, read.problem);
    return build(object, identity);
  } catch (error) {
    if (error instanceof InvalidField) return invalidRecord(identity, error.reason);
    return invalidRecord(identity, `unreadable object (${describeError(error)})`);
  }
}

function describeError(error: unknown): string {
  try {
    return error instanceof Error ? error.message.slice(0, 200) : show(error);
  } catch {
    return 'unknown error';
  }
}
