// One service's balancer: keeps a load object per endpoint across updates and publishes picker snapshots.

import { type EndpointSpec, eligibleEndpoints, type RegistryUpdate } from '../registry/endpoint.ts';
import { EndpointLoad, type LoadOptions } from './endpoint-load.ts';
import type { OutlierEjection, OutlierEvents } from './outlier-ejection.ts';
import { type BalancingPolicy, EMPTY_PICKER, type Picker } from './picker.ts';
import type { BalancerName } from '../vocabulary/balancer-names.ts';

/** Told about an endpoint of service `key`; the owner (relay) drains the endpoint's upstream pool when it is removed. */
export type EndpointHook = (load: EndpointLoad, key: string) => void;

export interface EndpointHooks {
  /** The endpoint entered the picker (new, or eligible again): the owner may connect before the first request,
   *  or take a drained pool back into use. */
  onEndpointActive?: EndpointHook | null;
  /** Still listed but left the picker (terminating, not ready): no new requests; in-flight ones finish. */
  onEndpointDraining?: EndpointHook | null;
  /** No longer listed: its load object is handed back once, so the owner can drain and close its pool. */
  onEndpointRemoved?: EndpointHook | null;
  /** Out of the picker for `forMs` after failing request after request (outlier-ejection.ts). */
  onEndpointEjected?: ((load: EndpointLoad, key: string, forMs: number, failures: number) => void) | null;
}

export interface ServiceBalancerDeps {
  /** The policy for a per-service override, or the agent default for null. */
  policyFor(name: BalancerName | null): BalancingPolicy;
  load: LoadOptions;
  /** The service's outlier ejection, made with the events it reports to; none: no endpoint is ever ejected. */
  outliers?: ((events: OutlierEvents) => OutlierEjection) | null;
}

export interface EndpointView {
  address: string;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  /** In the current picker. */
  eligible: boolean;
  /** Out of the picker for failing request after request, until its probation ends. */
  ejected: boolean;
  inFlight: number;
  started: number;
  latencyMs: number;
}

export interface ServiceBalancerView {
  key: string;
  balancer: BalancerName;
  endpoints: EndpointView[];
}

type Lifecycle = 'open' | 'closed';

/**
 * Applies the registry's updates for one service key. Load objects are kept by address, so in-flight counts and
 * latency estimates survive every new picker; the picker is rebuilt only when the eligible set or the policy
 * changes, and replacing it never disturbs requests that picked from the old one. Hooks fire after the new picker
 * is published, in the order removed, draining, active.
 */
export class ServiceBalancer {
  readonly key: string;
  onEndpointActive: EndpointHook | null;
  onEndpointDraining: EndpointHook | null;
  onEndpointRemoved: EndpointHook | null;
  private readonly onEndpointEjected: EndpointHooks['onEndpointEjected'];
  private readonly outliers: OutlierEjection | null;
  private current: Picker = EMPTY_PICKER;
  private policy: BalancingPolicy;
  private override: BalancerName | null = null;
  private readonly specs = new Map<string, EndpointSpec>();
  private readonly loads = new Map<string, EndpointLoad>();
  /** Addresses in the current picker. */
  private eligible = new Set<string>();
  // Stryker disable next-line StringLiteral: equivalent; lifecycle is only ever compared with 'closed'
  private lifecycle: Lifecycle = 'open';
  private readonly deps: ServiceBalancerDeps;

  constructor(key: string, deps: ServiceBalancerDeps, hooks: EndpointHooks = {}) {
    this.key = key;
    this.deps = deps;
    this.policy = deps.policyFor(null);
    this.onEndpointActive = hooks.onEndpointActive ?? null;
    this.onEndpointDraining = hooks.onEndpointDraining ?? null;
    this.onEndpointRemoved = hooks.onEndpointRemoved ?? null;
    this.onEndpointEjected = hooks.onEndpointEjected ?? null;
    this.outliers =
      deps.outliers?.({
        ejected: (address, forMs) => this.ejected(address, forMs),
        readmitted: (address) => this.readmitted(address),
      }) ?? null;
  }

  /** The current snapshot; read it per request (it is replaced, never mutated). */
  get picker(): Picker {
    return this.current;
  }

  get balancer(): BalancerName {
    return this.policy.name;
  }

  get closed(): boolean {
    return this.lifecycle === 'closed';
  }

  /** The load object of a listed endpoint. */
  loadOf(address: string): EndpointLoad | undefined {
    return this.loads.get(address);
  }

  apply(update: RegistryUpdate): void {
    this.applyAll([update]);
  }

  /** Several updates of this service, in order, then one new picker (if the eligible set or the policy changed). */
  applyAll(updates: readonly RegistryUpdate[]): void {
    const removed: EndpointLoad[] = [];
    let policyChanged = false;
    // Every endpoint new in these updates starts from the same estimate: one median of the picker's, not one per
    // endpoint (a slice of 100 new pods of a 10,000-pod service would otherwise sort 10,000 estimates 100 times).
    let initial: number | null = null;
    const initialRtt = (): number => {
      initial ??= this.initialRtt();
      return initial;
    };
    for (const update of updates) {
      if (update.key !== this.key) throw new Error(`update for ${update.key} applied to balancer of ${this.key}`);
      if (this.lifecycle === 'closed') throw new Error(`balancer of ${this.key} is closed`);
      switch (update.type) {
        case 'reset': {
          const listed = new Set(update.service.endpoints.map((e) => e.address));
          for (const address of this.specs.keys()) if (!listed.has(address)) this.unlist(address, removed);
          for (const endpoint of update.service.endpoints) this.list(endpoint, initialRtt);
          if (update.service.balancer !== this.override) {
            this.override = update.service.balancer;
            const policy = this.deps.policyFor(this.override);
            policyChanged ||= policy.name !== this.policy.name;
            this.policy = policy;
          }
          break;
        }
        case 'add':
        case 'drain':
          this.list(update.endpoint, initialRtt);
          break;
        case 'remove':
          this.unlist(update.address, removed);
          break;
        case 'delete':
          // What came before in this batch is published first, so its hooks fire before the removals of close().
          this.publish(removed, policyChanged);
          this.close();
          return;
      }
    }
    this.publish(removed, policyChanged);
  }

  /** The service is gone: every endpoint is handed back through onEndpointRemoved and the picker is empty. */
  close(): void {
    if (this.lifecycle === 'closed') return;
    this.lifecycle = 'closed';
    const removed: EndpointLoad[] = [];
    for (const address of [...this.specs.keys()]) this.unlist(address, removed);
    // Stryker disable next-line BooleanLiteral: equivalent; nothing is listed now, so the picker is the empty one either way
    this.publish(removed, false);
  }

  describe(): ServiceBalancerView {
    const now = this.deps.load.now();
    const endpoints: EndpointView[] = [];
    for (const spec of this.specs.values()) {
      const load = this.loads.get(spec.address) as EndpointLoad;
      endpoints.push({
        address: spec.address,
        ready: spec.ready,
        serving: spec.serving,
        terminating: spec.terminating,
        eligible: this.eligible.has(spec.address),
        ejected: this.outliers?.isEjected(spec.address) ?? false,
        inFlight: load.inFlight,
        started: load.started,
        latencyMs: load.latencyAt(now) / 1e6,
      });
    }
    return { key: this.key, balancer: this.policy.name, endpoints };
  }

  private list(endpoint: EndpointSpec, initialRtt: () => number): void {
    this.specs.set(endpoint.address, endpoint);
    if (this.loads.has(endpoint.address)) return;
    const load = new EndpointLoad(endpoint.address, this.deps.load, initialRtt());
    if (this.outliers !== null) load.failureListener = (failing) => this.failing(failing);
    this.loads.set(endpoint.address, load);
  }

  /** A failure of an endpoint: ejected once it has failed enough in a row, if the service can spare it. */
  private failing(load: EndpointLoad): void {
    const outliers = this.outliers;
    if (outliers === null || !this.eligible.has(load.address) || this.lifecycle === 'closed') return;
    // Candidates: what the picker would hold without ejections (the ones in it now, and those ejected).
    outliers.failed(load.address, load.consecutiveFailures, this.eligible.size + outliers.ejected);
  }

  private ejected(address: string, forMs: number): void {
    const load = this.loads.get(address);
    this.publish([], false);
    if (load !== undefined) this.onEndpointEjected?.(load, this.key, forMs, load.consecutiveFailures);
  }

  /** Back on trial: one more failure in a row ejects it again (for twice as long), one answer clears it. */
  private readmitted(address: string): void {
    const load = this.loads.get(address);
    if (load !== undefined && this.outliers !== null) load.consecutiveFailures = this.outliers.policy.consecutiveFailures - 1;
    this.publish([], false);
  }

  /**
   * A new endpoint starts with the median estimate of the endpoints in the picker, so it looks like an average
   * one: it gets its share at once, and it is not flooded before its first response (its cost rises with every
   * request like theirs). A fixed default would be wrong one way or the other: above the real latency, the
   * endpoint stays under-used until the EWMA decays (τ, ~10 s); far below it, every pick goes to the newcomer
   * until its first response. If it is slower than the others, its first sample raises the estimate at once.
   */
  private initialRtt(): number {
    if (this.eligible.size === 0) return this.deps.load.defaultRttNs;
    const now = this.deps.load.now();
    const estimates: number[] = [];
    for (const address of this.eligible) {
      const load = this.loads.get(address);
      if (load !== undefined) estimates.push(load.latencyAt(now));
    }
    if (estimates.length === 0) return this.deps.load.defaultRttNs;
    estimates.sort((a, b) => a - b);
    const middle = estimates.length >> 1;
    return estimates.length % 2 === 1 ? estimates[middle] : (estimates[middle - 1] + estimates[middle]) / 2;
  }

  private unlist(address: string, removed: EndpointLoad[]): void {
    const load = this.loads.get(address);
    this.specs.delete(address);
    this.loads.delete(address);
    this.outliers?.forget(address);
    if (load !== undefined) {
      load.failureListener = null;
      removed.push(load);
    }
  }

  private publish(removed: readonly EndpointLoad[], policyChanged: boolean): void {
    const previous = this.eligible;
    const eligible = this.withoutEjected(eligibleEndpoints([...this.specs.values()]));
    const next = new Set(eligible.map((e) => e.address));
    if (policyChanged || !sameMembers(previous, next)) {
      this.current =
        eligible.length === 0
          ? EMPTY_PICKER
          : this.policy.createPicker(eligible.map((e) => this.loads.get(e.address) as EndpointLoad));
    }
    this.eligible = next;
    for (const load of removed) this.onEndpointRemoved?.(load, this.key);
    for (const address of previous) {
      const load = this.loads.get(address);
      if (load !== undefined && !next.has(address)) this.onEndpointDraining?.(load, this.key);
    }
    for (const address of next) {
      if (!previous.has(address)) this.onEndpointActive?.(this.loads.get(address) as EndpointLoad, this.key);
    }
  }

  /** The endpoints the conditions allow, less the ejected ones — unless that leaves none (the cap on ejections
   *  counts endpoints as they were; if others have gone since, an ejected endpoint beats no endpoint). */
  private withoutEjected(eligible: EndpointSpec[]): EndpointSpec[] {
    const outliers = this.outliers;
    if (outliers === null || outliers.ejected === 0) return eligible;
    const kept = eligible.filter((endpoint) => !outliers.isEjected(endpoint.address));
    return kept.length > 0 ? kept : eligible;
  }
}

function sameMembers(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}
