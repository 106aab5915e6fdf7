// CNI-given pod IPs layered over the informer's Pod records, feeding the opt-in index: a pod is enrolled before the API has its IPs.

import type { InjectSetting, NamespaceRecord, PodRecord } from '../discovery/kube-objects.ts';
import type { OptInIndex } from '../discovery/opt-in-index.ts';

/** What the IP claims feeds: the opt-in index's own event methods. */
export type OptInFeed = Pick<OptInIndex, 'nodeName' | 'applyPod' | 'deletePod' | 'replacePods' | 'applyNamespace' | 'deleteNamespace'>;

/** What a CNI ADD gives for one sandbox of a pod. */
export interface ContainerAdd {
  containerId: string;
  namespace: string;
  name: string;
  /** Normalised (parseKubeIp), deduplicated, never empty. */
  ips: readonly string[];
  /** The pod as enrollment found it (the informer's record, a GET's, or claimOnlyRecord when none is known): it
   *  decides the pod's opt-in only while the informer has no record of the pod. */
  record: PodRecord;
}

interface ContainerClaim {
  readonly containerId: string;
  readonly ips: readonly string[];
  readonly record: PodRecord;
  /** The API's IPs for the pod when the ADD came. A later record still listing exactly these is stale: they are a
   *  previous sandbox's, and the ADD is newer than them. */
  readonly apiIpsAtAdd: readonly string[];
  /** True while the CNI's IPs are the pod's; false for good once an API record carries IPs of its own. */
  overriding: boolean;
}

interface PodState {
  /** The informer's (or the static file's) last record of the pod; null while it has none. */
  api: PodRecord | null;
  /** The pod's current sandbox as its last ADD described it; kept after the API took over, so that its DEL knows
   *  which IPs it gave. */
  container: ContainerClaim | null;
  /** IPs a DEL released that the API record still lists (status lags behind the sandbox): not the pod's until a
   *  record stops listing them or an ADD gives them again. */
  released: readonly string[];
}

/** Container IDs whose DEL came, remembered so that an ADD overtaken by its own DEL (the runtime gave up on it while
 *  the agent was still looking the pod up) does not enroll a sandbox that is gone. IDs are never reused. */
const DELETED_CONTAINERS_KEPT = 4096;

/**
 * Sits where the Pod and Namespace informers (or the static file) feed the OptInIndex and merges what CNI ADD and
 * DEL say into the records the index gets. The index keeps deciding ownership and opt-in (IP reuse included); this
 * class only decides which IPs a pod holds:
 * - after an ADD, the CNI's IPs, until a record from the API carries IPs of its own (a Pod update without IPs, its
 *   status not written yet, keeps them), or the pod is deleted, or its DEL comes;
 * - then the API's IPs, less those a DEL released.
 * Every ADD is a claim, whether or not the pod opts in: a sandbox that now has an IP is its holder, so a stale
 * record of an opted-in pod cannot keep that IP enrolled.
 *
 * Known limit: a pod deleted and created again under the same name (a StatefulSet's) is one pod here. If the
 * watch delivers the old pod's deletion after the new pod's ADD, the new pod's CNI IPs are dropped until its own
 * status reaches the informer; the window is the watch's lag, far shorter than deleting, creating, scheduling and
 * starting a pod. Telling them apart needs the pod's UID, which the records do not carry.
 */
export class CniIpClaims {
  private readonly index: OptInFeed;
  /** By `namespace/name`: every pod of this node the informer delivered, and every pod with a live ADD. */
  private readonly pods = new Map<string, PodState>();
  /** Namespaces the informer delivered (or a GET learned): their usable setting, null when none or invalid. */
  private readonly namespaces = new Map<string, InjectSetting | null>();
  private readonly deletedContainers = new Set<string>();
  /** Container id → `namespace/name` of its pod, for every live ADD: a DEL may name only the container. */
  private readonly containerPods = new Map<string, string>();

  constructor(index: OptInFeed) {
    this.index = index;
  }

  get nodeName(): string {
    return this.index.nodeName;
  }

  // The informer's side: the same methods as the index (kubernetes-source.ts's OptInSink, and replacePods).

  applyPod(record: PodRecord): void {
    const key = podKey(record.metadata.namespace, record.metadata.name);
    const state = this.pods.get(key) ?? this.remember(key);
    this.takeRecord(state, record);
    this.index.applyPod(effectiveRecord(state, this.index.nodeName));
  }

  /** The pod is gone from the API: whatever its CNI said goes with it (a DEL the agent missed). */
  deletePod(record: PodRecord): void {
    const key = podKey(record.metadata.namespace, record.metadata.name);
    const container = this.pods.get(key)?.container;
    if (container !== undefined && container !== null) this.containerPods.delete(container.containerId);
    this.pods.delete(key);
    this.index.deletePod(record);
  }

  /** A complete set (the static file's pods): pods not in it lose their record; those with a live ADD stay. */
  replacePods(records: readonly PodRecord[]): void {
    const next = new Map<string, PodRecord>();
    for (const record of records) {
      const key = podKey(record.metadata.namespace, record.metadata.name);
      // Checked before anything changes, as the index does.
      if (next.has(key)) throw new TypeError(`pod ${key} is listed twice`);
      next.set(key, record);
    }
    for (const [key, state] of this.pods) {
      if (next.has(key)) continue;
      state.api = null;
      if (state.container === null) this.pods.delete(key);
    }
    for (const [key, record] of next) this.takeRecord(this.pods.get(key) ?? this.remember(key), record);
    this.index.replacePods([...this.pods.values()].map((state) => effectiveRecord(state, this.index.nodeName)));
  }

  applyNamespace(record: NamespaceRecord): void {
    this.namespaces.set(record.metadata.name, record.invalid === null ? record.inject : null);
    this.index.applyNamespace(record);
  }

  deleteNamespace(record: NamespaceRecord): void {
    this.namespaces.delete(record.metadata.name);
    this.index.deleteNamespace(record);
  }

  // Lookups for enrollment.

  /** The informer's (or the static file's) record of the pod, if it has one. */
  apiPod(namespace: string, name: string): PodRecord | undefined {
    return this.pods.get(podKey(namespace, name))?.api ?? undefined;
  }

  /** The namespace's setting as the index uses it; undefined when the informer has not delivered the namespace. */
  namespaceSetting(name: string): InjectSetting | null | undefined {
    return this.namespaces.get(name);
  }

  /** A namespace read from the API before its informer delivered it: used until the informer does. */
  learnNamespace(record: NamespaceRecord): void {
    if (!this.namespaces.has(record.metadata.name)) this.applyNamespace(record);
  }

  /** The IPs the pod's current sandbox got, if `containerId` is that sandbox. */
  containerIps(namespace: string, name: string, containerId: string): readonly string[] | undefined {
    const container = this.pods.get(podKey(namespace, name))?.container;
    return container?.containerId === containerId ? container.ips : undefined;
  }

  // The CNI's side.

  /** The sandbox's IPs become the pod's. False (and nothing changes) when the container's DEL came first. */
  add(add: ContainerAdd): boolean {
    if (this.deletedContainers.has(add.containerId)) return false;
    const key = podKey(add.namespace, add.name);
    const state = this.pods.get(key) ?? this.remember(key);
    if (state.released.length > 0) state.released = state.released.filter((ip) => !add.ips.includes(ip));
    if (state.container !== null) this.containerPods.delete(state.container.containerId);
    this.containerPods.set(add.containerId, key);
    state.container = {
      containerId: add.containerId,
      ips: add.ips,
      record: add.record,
      apiIpsAtAdd: state.api?.ips ?? [],
      overriding: true,
    };
    this.index.applyPod(effectiveRecord(state, this.index.nodeName));
    return true;
  }

  /** The sandbox is gone: the IPs its ADD gave are released. Returns them; [] for an unknown or older sandbox and
   *  for a repeated DEL. Without the pod's name, the container id finds it. */
  del(namespace: string | null, name: string | null, containerId: string): readonly string[] {
    this.rememberDeleted(containerId);
    const key = namespace !== null && name !== null ? podKey(namespace, name) : this.containerPods.get(containerId);
    this.containerPods.delete(containerId);
    if (key === undefined) return [];
    const state = this.pods.get(key);
    const container = state?.container ?? null;
    if (state === undefined || container === null || container.containerId !== containerId) return [];
    state.container = null;
    const listed = state.api?.ips ?? [];
    const stillListed = container.ips.filter((ip) => listed.includes(ip) && !state.released.includes(ip));
    if (stillListed.length > 0) state.released = [...state.released, ...stillListed];
    if (state.api === null) {
      this.pods.delete(key);
      const [podNamespace, podName] = splitPodKey(key);
      this.index.deletePod(claimOnlyRecord(podNamespace, podName, this.index.nodeName));
    } else {
      this.index.applyPod(effectiveRecord(state, this.index.nodeName));
    }
    return container.ips;
  }

  private remember(key: string): PodState {
    const state: PodState = { api: null, container: null, released: [] };
    this.pods.set(key, state);
    return state;
  }

  private takeRecord(state: PodState, record: PodRecord): void {
    state.api = record;
    const container = state.container;
    if (container?.overriding && record.ips.length > 0 && !sameIps(record.ips, container.apiIpsAtAdd)) container.overriding = false;
    // The API caught up with a DEL once it no longer lists the IP.
    if (state.released.length > 0) state.released = state.released.filter((ip) => record.ips.includes(ip));
  }

  private rememberDeleted(containerId: string): void {
    this.deletedContainers.delete(containerId);
    this.deletedContainers.add(containerId);
    if (this.deletedContainers.size > DELETED_CONTAINERS_KEPT) {
      const oldest = this.deletedContainers.values().next().value;
      if (oldest !== undefined) this.deletedContainers.delete(oldest);
    }
  }
}

/**
 * A record that holds IPs on this node but never opts in: for a sandbox whose pod cannot be found (or read) at ADD
 * time. Its IPs are this sandbox's now, so they must stop counting for whichever pod held them before.
 */
export function claimOnlyRecord(namespace: string, name: string, nodeName: string): PodRecord {
  return {
    kind: 'Pod',
    metadata: { namespace, name, resourceVersion: '' },
    invalid: null,
    nodeName,
    ips: [],
    hostNetwork: false,
    phase: 'Pending',
    inject: 'disabled',
  };
}

/** What the index gets for a pod: the record that decides its opt-in, with the IPs it holds. */
function effectiveRecord(state: PodState, nodeName: string): PodRecord {
  const container = state.container;
  const base = state.api ?? (container as ContainerClaim).record;
  if (container?.overriding) {
    // An API record the projection refused would hold nothing in the index; the sandbox's IPs must still be claimed.
    const usable = base.invalid === null ? base : claimOnlyRecord(base.metadata.namespace, base.metadata.name, nodeName);
    return { ...usable, ips: [...container.ips] };
  }
  if (state.released.length === 0) return base;
  return { ...base, ips: base.ips.filter((ip) => !state.released.includes(ip)) };
}

function sameIps(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((ip) => b.includes(ip));
}

function podKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** Namespaces cannot contain '/', so the first one separates the two. */
function splitPodKey(key: string): [string, string] {
  const slash = key.indexOf('/');
  return [key.slice(0, slash), key.slice(slash + 1)];
}
