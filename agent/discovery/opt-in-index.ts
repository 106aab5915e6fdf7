// The opt-in index: this node's pods enrolled for interception, IP → pod, kept from Pod and Namespace events (see
// docs/architecture.md, Enrollment).

import type { InjectSetting, NamespaceRecord, PodRecord } from './kube-objects.ts';
import { parseKubeIp } from '../vocabulary/ip-address.ts';
import type { PodSpec } from './static-file.ts';

/** The pod an enrolled IP belongs to. Frozen: the same object is handed to every subscriber. */
export interface PodRef {
  readonly namespace: string;
  readonly name: string;
}

/** What subscribers are told, in the order it happened; an IP that moves from one pod to another is an
 *  `unenroll` of the old pod followed by an `enroll` of the new one. */
export type OptInChange = { type: 'enroll'; ip: string; pod: PodRef } | { type: 'unenroll'; ip: string; pod: PodRef };

export type OptInListener = (change: OptInChange) => void;

/** A pod that holds at least one IP on this node; pods that hold none are not kept at all. */
interface HeldPod {
  readonly ref: PodRef;
  /** The pod's own annotation: when set, its namespace's does not matter. */
  inject: InjectSetting | null;
  /** Deduplicated, in the record's order; never empty. */
  ips: readonly string[];
}

/** Their sandbox is gone, so the IP is back in the pool even though status.podIPs still lists it. (CNI enrollment
 *  gives the same reason for not enrolling such a pod.) */
export const RELEASED_PHASES: ReadonlySet<string> = new Set(['Succeeded', 'Failed']);

/**
 * Which of this node's pods opted in, kept incrementally from informer events: a pod's own `meshlite.io/inject`
 * wins, else its Namespace's, else it is out. A pod's annotation change touches only its IPs, a Namespace's only
 * the pods of that namespace without an annotation of their own.
 *
 * IP reuse: events of different pods are not ordered the way the kubelet reuses addresses (a new pod's add can
 * arrive before the old pod's delete), so an IP listed by several pods belongs to the one that started listing it
 * last; the others are stale. The IP is enrolled only when that pod opted in, so a stale record of an opted-in pod
 * never enrolls (or names) the pod that holds the IP now.
 *
 * State, the `enrolled` map included, is fully updated before the first change of an event is delivered.
 */
export class OptInIndex {
  readonly nodeName: string;
  private readonly byIp = new Map<string, PodRef>();
  /** By `namespace/name`. */
  private readonly pods = new Map<string, HeldPod>();
  private readonly podsByNamespace = new Map<string, Set<HeldPod>>();
  /** Only namespaces that are known, valid and annotated: the others all mean "no namespace setting". */
  private readonly namespaceInject = new Map<string, InjectSetting>();
  /** ip → pods listing it, in the order they started to; the last one holds it. */
  private readonly claimants = new Map<string, HeldPod[]>();
  /** IPs whose owner or opt-in may have changed since the last flush, in the order they were touched. */
  private readonly dirty = new Set<string>();
  private listeners: OptInListener[] = [];

  constructor(nodeName: string) {
    this.nodeName = nodeName;
  }

  /** A live read-only view: IP (as the API and the kernel spell it) → the pod enrolled under it. */
  get enrolled(): ReadonlyMap<string, PodRef> {
    return this.byIp;
  }

  /** The enrolled pod at `ip`, in any spelling a socket may report (e.g. `::ffff:10.0.0.7` on a dual-stack one). */
  podAt(ip: string): PodRef | undefined {
    const exact = this.byIp.get(ip);
    if (exact !== undefined) return exact;
    const parsed = parseKubeIp(ip);
    return parsed === null || parsed.ip === ip ? undefined : this.byIp.get(parsed.ip);
  }

  /** A new pod or a new version of one. */
  applyPod(record: PodRecord): void {
    this.setPod(record.metadata.namespace, record.metadata.name, this.heldIps(record), record.inject);
    this.flush();
  }

  /** Only the identity of `record` is used: whatever its last version said, the pod holds nothing now. */
  deletePod(record: PodRecord): void {
    this.setPod(record.metadata.namespace, record.metadata.name, [], null);
    this.flush();
  }

  /**
   * A complete set of pods (the static file's, see staticPodRecords): pods not in it are deleted. The changes are
   * the net difference, delivered after the whole set is applied, so an IP that moves between pods in one reload
   * is never left without its owner in between.
   */
  replacePods(records: readonly PodRecord[]): void {
    const next = new Map<string, PodRecord>();
    for (const record of records) {
      const key = podKey(record.metadata.namespace, record.metadata.name);
      if (next.has(key)) throw new TypeError(`pod ${key} is listed twice`);
      next.set(key, record);
    }
    for (const [key, pod] of this.pods) {
      if (!next.has(key)) this.setPod(pod.ref.namespace, pod.ref.name, [], null);
    }
    for (const record of next.values()) {
      this.setPod(record.metadata.namespace, record.metadata.name, this.heldIps(record), record.inject);
    }
    this.flush();
  }

  applyNamespace(record: NamespaceRecord): void {
    this.setNamespace(record.metadata.name, record.invalid === null ? record.inject : null);
  }

  /** Its pods fall back to their own annotation. */
  deleteNamespace(record: NamespaceRecord): void {
    this.setNamespace(record.metadata.name, null);
  }

  /**
   * `listener` gets an `enroll` for every IP enrolled now (so it does not matter whether it subscribed before or
   * after the first events), then every change. Returns the unsubscribe function.
   */
  subscribe(listener: OptInListener): () => void {
    this.listeners = [...this.listeners, listener];
    for (const [ip, pod] of this.byIp) listener({ type: 'enroll', ip, pod });
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  /** The IPs a pod holds on this node. The informer already asks for this node's pods only; the check here keeps
   *  the rule true whatever feeds the index. */
  private heldIps(record: PodRecord): string[] {
    if (record.invalid !== null || record.nodeName !== this.nodeName) return [];
    // A hostNetwork pod's IP is the node's: enrolling it would capture the node's own traffic.
    if (record.hostNetwork || RELEASED_PHASES.has(record.phase)) return [];
    return [...new Set(record.ips)];
  }

  /** Moves the pod's claims from its old IPs to `ips` and marks every IP whose outcome may change. */
  private setPod(namespace: string, name: string, ips: readonly string[], inject: InjectSetting | null): void {
    const key = podKey(namespace, name);
    const old = this.pods.get(key);
    if (old === undefined && ips.length === 0) return;
    if (old !== undefined) {
      for (const ip of old.ips) {
        if (ips.includes(ip)) continue;
        this.unclaim(old, ip);
        this.dirty.add(ip);
      }
    }
    if (ips.length === 0) {
      if (old !== undefined) this.forget(key, old);
      return;
    }
    const pod = old ?? this.remember(key, namespace, name);
    const before = old?.ips ?? [];
    pod.inject = inject;
    pod.ips = ips;
    for (const ip of ips) {
      // An IP the pod listed already keeps its place: a status update of a stale pod must not take it back.
      if (!before.includes(ip)) this.claim(pod, ip);
      this.dirty.add(ip);
    }
  }

  private setNamespace(name: string, inject: InjectSetting | null): void {
    if ((this.namespaceInject.get(name) ?? null) === inject) return;
    if (inject === null) this.namespaceInject.delete(name);
    else this.namespaceInject.set(name, inject);
    for (const pod of this.podsByNamespace.get(name) ?? []) {
      if (pod.inject !== null) continue;
      for (const ip of pod.ips) this.dirty.add(ip);
    }
    this.flush();
  }

  private remember(key: string, namespace: string, name: string): HeldPod {
    const pod: HeldPod = { ref: Object.freeze({ namespace, name }), inject: null, ips: [] };
    this.pods.set(key, pod);
    let inNamespace = this.podsByNamespace.get(namespace);
    if (inNamespace === undefined) {
      inNamespace = new Set();
      this.podsByNamespace.set(namespace, inNamespace);
    }
    inNamespace.add(pod);
    return pod;
  }

  private forget(key: string, pod: HeldPod): void {
    this.pods.delete(key);
    const inNamespace = this.podsByNamespace.get(pod.ref.namespace);
    inNamespace?.delete(pod);
    if (inNamespace?.size === 0) this.podsByNamespace.delete(pod.ref.namespace);
  }

  private claim(pod: HeldPod, ip: string): void {
    const pods = this.claimants.get(ip);
    if (pods === undefined) this.claimants.set(ip, [pod]);
    else pods.push(pod);
  }

  private unclaim(pod: HeldPod, ip: string): void {
    const pods = this.claimants.get(ip);
    if (pods === undefined) return;
    const index = pods.indexOf(pod);
    if (index !== -1) pods.splice(index, 1);
    if (pods.length === 0) this.claimants.delete(ip);
  }

  private optedIn(pod: HeldPod): boolean {
    return (pod.inject ?? this.namespaceInject.get(pod.ref.namespace) ?? null) === 'enabled';
  }

  /** Settles every dirty IP on its owner's opt-in, then tells the listeners what changed. */
  private flush(): void {
    const changes: OptInChange[] = [];
    for (const ip of this.dirty) {
      const pods = this.claimants.get(ip);
      const owner = pods === undefined ? undefined : pods[pods.length - 1];
      const want = owner !== undefined && this.optedIn(owner) ? owner.ref : null;
      const have = this.byIp.get(ip) ?? null;
      // One HeldPod (and so one PodRef) per pod for as long as it holds an IP: identity is sameness.
      if (have === want) continue;
      if (have !== null) {
        this.byIp.delete(ip);
        changes.push({ type: 'unenroll', ip, pod: have });
      }
      if (want !== null) {
        this.byIp.set(ip, want);
        changes.push({ type: 'enroll', ip, pod: want });
      }
    }
    this.dirty.clear();
    this.emit(changes);
  }

  /** A throwing listener neither stops the others nor loses changes for them; the first error is rethrown at the
   *  end so that the caller (the informer, which logs it) sees it. */
  private emit(changes: readonly OptInChange[]): void {
    if (changes.length === 0) return;
    const listeners = this.listeners;
    let failure: { error: unknown } | null = null;
    for (const change of changes) {
      for (const listener of listeners) {
        try {
          listener(change);
        } catch (error) {
          failure ??= { error };
        }
      }
    }
    if (failure !== null) throw failure.error;
  }
}

/**
 * The static file's pods as the records the index takes (the file has no Namespace objects: each pod's own
 * `inject` decides). Feed them with `index.replacePods(staticPodRecords(config.pods, index.nodeName))` on every
 * good version of the file.
 */
export function staticPodRecords(pods: readonly PodSpec[], nodeName: string): PodRecord[] {
  return pods.map((pod) => {
    // The same spelling as the API's addresses (an IPv4-mapped IPv6 is the IPv4), which the kernel reports too. A pod
    // listed without an IP holds none until the CNI plugin enrolls it with the IPs it was given.
    const parsed = pod.ip === null ? null : parseKubeIp(pod.ip);
    return {
      kind: 'Pod',
      metadata: { namespace: pod.namespace, name: pod.name, resourceVersion: '' },
      invalid: pod.ip !== null && parsed === null ? `${JSON.stringify(pod.ip)} is not an IP address` : null,
      nodeName,
      ips: parsed === null ? [] : [parsed.ip],
      hostNetwork: false,
      phase: 'Running',
      inject: pod.inject,
    };
  });
}

function podKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}
