// The object store behind the test Kubernetes API server: one global resourceVersion (like etcd's revision), objects per resource, an event history with a compaction point, and live subscribers.

import { randomUUID } from 'node:crypto';
import { RESOURCE_NAMES, RESOURCES, type ResourceName } from './kube-api-resources.ts';

/** An API object as tests write it: kind and apiVersion are optional (the resource decides them). */
export interface KubeObject {
  kind?: string;
  apiVersion?: string;
  metadata?: { name?: string; namespace?: string; [field: string]: unknown };
  [field: string]: unknown;
}

export interface StoredMetadata {
  name: string;
  namespace?: string;
  uid: string;
  resourceVersion: string;
  creationTimestamp: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [field: string]: unknown;
}

/** An object's body as a list item carries it: metadata first, no kind or apiVersion (the real server omits them). */
export interface StoredBody {
  metadata: StoredMetadata;
  [field: string]: unknown;
}

/** One version of one object. Shared by the store, its history and every watcher: never mutate it. */
export interface StoredObject {
  /** "namespace/name", or "name" for a cluster-scoped resource: the order of a LIST, like etcd's keys. */
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  readonly resourceVersion: number;
  readonly body: StoredBody;
  /** The body serialized once, at write time: a LIST joins these instead of serializing 10,000 objects again. */
  readonly itemJson: string;
  /** The same with kind and apiVersion first, as GET and watch events carry it. */
  readonly json: string;
}

export type StoreEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  readonly type: StoreEventType;
  readonly resourceVersion: number;
  /** The new version; for DELETED the last version stamped with the deletion's resourceVersion, as etcd reports it. */
  readonly object: StoredObject;
  /** The version before a MODIFIED or DELETED: a selector watch needs it to tell an object leaving its selection. */
  readonly previous: StoredObject | undefined;
}

export type StoreListener = (event: StoreEvent) => void;

export interface KubeApiStoreOptions {
  /** The first resourceVersion handed out is this plus one; everything at or below it counts as compacted. */
  initialResourceVersion?: number;
  /** Events kept per resource; older ones are compacted away, like the API server's bounded watch cache. */
  historyLimit?: number;
  now?: () => Date;
}

// The metadata fields in the order the API server serializes ObjectMeta.
const METADATA_ORDER = [
  'name',
  'generateName',
  'namespace',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'labels',
  'annotations',
  'ownerReferences',
  'finalizers',
  'managedFields',
];

class ResourceLog {
  readonly objects = new Map<string, StoredObject>();
  /** Keys in LIST order; rebuilt lazily after a create or delete, so a bulk load sorts once. */
  sortedKeys: string[] | null = [];
  events: StoreEvent[] = [];
  /** Index of the oldest retained event: trimming advances it instead of shifting the array on every write. */
  head = 0;
  /** A watch or exact read from a resourceVersion below this is gone (410). */
  compactedResourceVersion: number;
  readonly listeners = new Set<StoreListener>();

  constructor(compactedResourceVersion: number) {
    this.compactedResourceVersion = compactedResourceVersion;
  }
}

export class KubeApiStore {
  private revision: number;
  private readonly historyLimit: number;
  private readonly now: () => Date;
  private readonly logs = new Map<ResourceName, ResourceLog>();
  private revisionWaiters: Array<{ revision: number; wake: () => void }> = [];

  constructor(options: KubeApiStoreOptions = {}) {
    this.revision = options.initialResourceVersion ?? 1000;
    this.historyLimit = options.historyLimit ?? 100_000;
    this.now = options.now ?? (() => new Date());
    for (const name of RESOURCE_NAMES) this.logs.set(name, new ResourceLog(this.revision));
  }

  /** The resourceVersion of the last write to any resource. */
  get resourceVersion(): number {
    return this.revision;
  }

  /** Creates or replaces an object; a write that changes nothing is a no-op, as on a real server (same rv, no event). */
  apply(resource: ResourceName, input: KubeObject): StoredObject {
    const info = RESOURCES[resource];
    const { kind: _kind, apiVersion: _apiVersion, metadata: inputMetadata, ...rest } = input;
    const name = inputMetadata?.name;
    if (typeof name !== 'string' || name === '') throw new Error(`apply ${resource}: metadata.name is required`);
    const namespace = info.namespaced ? String(inputMetadata?.namespace ?? '') || 'default' : '';
    const key = info.namespaced ? `${namespace}/${name}` : name;
    const log = this.log(resource);
    const existing = log.objects.get(key);
    const metadata: Record<string, unknown> = {
      ...inputMetadata,
      name,
      namespace: info.namespaced ? namespace : undefined,
      uid: existing?.body.metadata.uid ?? randomUUID(),
      creationTimestamp: existing?.body.metadata.creationTimestamp ?? this.timestamp(),
    };
    if (resource === 'namespaces') defaultNamespace(name, metadata, rest);
    if (existing !== undefined) {
      const unchanged = serialize(metadata, rest, existing.body.metadata.resourceVersion);
      if (unchanged === existing.itemJson) return existing;
    }
    const revision = this.revision + 1;
    const itemJson = serialize(metadata, rest, String(revision));
    const stored = this.stored(resource, key, namespace, name, revision, itemJson);
    this.revision = revision;
    log.objects.set(key, stored);
    if (existing === undefined) log.sortedKeys = null;
    this.record(log, { type: existing === undefined ? 'ADDED' : 'MODIFIED', resourceVersion: revision, object: stored, previous: existing });
    return stored;
  }

  /** Deletes at once (no graceful deletion); returns the DELETED event's object, or undefined if there was none. */
  remove(resource: ResourceName, namespace: string, name: string): StoredObject | undefined {
    const log = this.log(resource);
    const key = RESOURCES[resource].namespaced ? `${namespace}/${name}` : name;
    const existing = log.objects.get(key);
    if (existing === undefined) return undefined;
    const revision = this.revision + 1;
    const tombstone = this.restamp(resource, existing, revision);
    this.revision = revision;
    log.objects.delete(key);
    log.sortedKeys = null;
    this.record(log, { type: 'DELETED', resourceVersion: revision, object: tombstone, previous: existing });
    return tombstone;
  }

  get(resource: ResourceName, namespace: string, name: string): StoredObject | undefined {
    return this.log(resource).objects.get(RESOURCES[resource].namespaced ? `${namespace}/${name}` : name);
  }

  /** Every current object of `resource`, in key order. */
  current(resource: ResourceName): StoredObject[] {
    const log = this.log(resource);
    if (log.sortedKeys === null) log.sortedKeys = [...log.objects.keys()].sort();
    return log.sortedKeys.map((key) => log.objects.get(key)!);
  }

  /** The objects of `resource` as they were at `revision` (an exact read), in key order; undefined when compacted. */
  at(resource: ResourceName, revision: number): StoredObject[] | undefined {
    if (revision >= this.revision) return this.current(resource);
    const events = this.eventsAfter(resource, revision);
    if (events === undefined) return undefined;
    if (events.length === 0) return this.current(resource);
    const log = this.log(resource);
    const objects = new Map(log.objects);
    // Undo the events after `revision`, newest first.
    for (let index = events.length - 1; index >= 0; index--) {
      const event = events[index]!;
      if (event.previous === undefined) objects.delete(event.object.key);
      else objects.set(event.previous.key, event.previous);
    }
    return [...objects.keys()].sort().map((key) => objects.get(key)!);
  }

  /** The events of `resource` after `revision`, oldest first; undefined when some of them were compacted away. */
  eventsAfter(resource: ResourceName, revision: number): StoreEvent[] | undefined {
    const log = this.log(resource);
    if (revision < log.compactedResourceVersion) return undefined;
    const { events } = log;
    let low = log.head;
    let high = events.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (events[middle]!.resourceVersion <= revision) low = middle + 1;
      else high = middle;
    }
    return events.slice(low);
  }

  /** Below this, a watch or an exact read of `resource` is answered 410 Gone. */
  compactedResourceVersion(resource: ResourceName): number {
    return this.log(resource).compactedResourceVersion;
  }

  /** Compacts every history to the current resourceVersion, like an etcd compaction. */
  compact(): void {
    for (const log of this.logs.values()) {
      log.events = [];
      log.head = 0;
      log.compactedResourceVersion = this.revision;
    }
  }

  /** Calls `listener` synchronously for every later event of `resource`; returns the unsubscribe function. */
  subscribe(resource: ResourceName, listener: StoreListener): () => void {
    const { listeners } = this.log(resource);
    listeners.add(listener);
    return () => listeners.delete(listener);
  }

  /** Resolves true once the store reached `revision`, false after `timeoutMs` (a read "not older than" the future). */
  waitForResourceVersion(revision: number, timeoutMs: number): Promise<boolean> {
    if (this.revision >= revision) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = {
        revision,
        wake: () => {
          clearTimeout(timer);
          resolve(true);
        },
      };
      const timer = setTimeout(() => {
        this.revisionWaiters = this.revisionWaiters.filter((candidate) => candidate !== waiter);
        resolve(false);
      }, timeoutMs);
      this.revisionWaiters.push(waiter);
    });
  }

  /** The same object with another resourceVersion: a deletion's tombstone, or a selector watch's synthetic DELETED. */
  restamp(resource: ResourceName, object: StoredObject, revision: number): StoredObject {
    const { metadata, ...rest } = object.body;
    const itemJson = serialize(metadata, rest, String(revision));
    return this.stored(resource, object.key, object.namespace, object.name, revision, itemJson);
  }

  private stored(resource: ResourceName, key: string, namespace: string, name: string, revision: number, itemJson: string): StoredObject {
    const info = RESOURCES[resource];
    // Parsing the JSON back detaches the stored body from the caller's object, and keeps both in step.
    const body = JSON.parse(itemJson) as StoredBody;
    const json = `{"kind":"${info.kind}","apiVersion":"${info.apiVersion}",${itemJson.slice(1)}`;
    return { key, namespace, name, resourceVersion: revision, body, itemJson, json };
  }

  private record(log: ResourceLog, event: StoreEvent): void {
    log.events.push(event);
    if (log.events.length - log.head > this.historyLimit) {
      log.compactedResourceVersion = log.events[log.head]!.resourceVersion;
      log.head++;
      if (log.head > 1024 && log.head * 2 > log.events.length) {
        log.events = log.events.slice(log.head);
        log.head = 0;
      }
    }
    for (const listener of [...log.listeners]) listener(event);
    if (this.revisionWaiters.length > 0) {
      const due = this.revisionWaiters.filter((waiter) => waiter.revision <= this.revision);
      this.revisionWaiters = this.revisionWaiters.filter((waiter) => waiter.revision > this.revision);
      for (const waiter of due) waiter.wake();
    }
  }

  private log(resource: ResourceName): ResourceLog {
    const log = this.logs.get(resource);
    if (log === undefined) throw new Error(`unknown resource ${resource}`);
    return log;
  }

  private timestamp(): string {
    // RFC 3339 in whole seconds, as metav1.Time serializes.
    return `${this.now().toISOString().slice(0, 19)}Z`;
  }
}

/** What the NamespaceLifecycle defaults and the namespace label admission add to a new Namespace. */
function defaultNamespace(name: string, metadata: Record<string, unknown>, rest: Record<string, unknown>): void {
  metadata.labels = { ...(metadata.labels as Record<string, string> | undefined), 'kubernetes.io/metadata.name': name };
  rest.spec ??= { finalizers: ['kubernetes'] };
  rest.status ??= { phase: 'Active' };
}

function serialize(metadata: Record<string, unknown>, rest: Record<string, unknown>, resourceVersion: string): string {
  const ordered: Record<string, unknown> = {};
  for (const field of METADATA_ORDER) {
    const value = field === 'resourceVersion' ? resourceVersion : metadata[field];
    if (value !== undefined) ordered[field] = value;
  }
  for (const [field, value] of Object.entries(metadata)) {
    if (!(field in ordered) && value !== undefined && !METADATA_ORDER.includes(field)) ordered[field] = value;
  }
  return JSON.stringify({ metadata: ordered, ...rest });
}
