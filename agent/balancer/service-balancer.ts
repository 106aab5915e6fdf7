// One service's balancer: keeps a load object per endpoint across updates and publishes picker snapshots.

import { type EndpointSpec, isActive, type RegistryUpdate } from '../registry/endpoint.ts';
import { EndpointLoad, type LoadOptions } from './endpoint-load.ts';
import { ListedLoads } from './listed-loads.ts';
import { medianInPlace } from './median.ts';
import type { OutlierEjection, OutlierEvents } from './outlier-ejection.ts';
import { type BalancingPolicy, EMPTY_PICKER, type Picker } from './picker.ts';
import type { BalancerName } from '../vocabulary/balancer-names.ts';

/** How many estimates a new endpoint's starting median is taken from, at most (initialRtt). */
const MEDIAN_SAMPLE = 63;

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

/** The tier the picker is made of: the active endpoints, or when none is left the serving, terminating ones. */
type Tier = 'active' | 'fallback';

/** Which tier a listed endpoint is in, if any (kube-proxy's rule, as eligibleEndpoints() in registry/endpoint.ts). */
function tierOf(endpoint: EndpointSpec): Tier | null {
  if (isActive(endpoint)) return 'active';
  return endpoint.serving && endpoint.terminating ? 'fallback' : null;
}

/**
 * Applies the registry's updates for one service key. Load objects are kept by address, so in-flight counts and
 * latency estimates survive every new picker; the picker is rebuilt only when the eligible set or the policy
 * changes, and replacing it never disturbs requests that picked from the old one. Hooks fire after the new picker
 * is published, in the order removed, draining, active (draining and active each in listing order).
 *
 * Cost of an update: the endpoints of each tier are kept in listing order as they change (listed-loads.ts), so an
 * update of k endpoints costs O(k log n) plus, when the picker changes, one copy of the n pointers it holds; the
 * eligible set is re-derived whole only when the tier switches or while endpoints are ejected.
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
  /** Each listed address's listing number: ascending in the order addresses were listed (the order of `specs`). */
  private readonly listing = new Map<string, number>();
  private nextListing = 0;
  /** Listed endpoints by tier, in listing order: what a picker is made of. */
  private readonly active = new ListedLoads();
  private readonly fallback = new ListedLoads();
  /** Addresses in the current picker. */
  private eligible = new Set<string>();
  /** What the current picker was made of: the tier, and whether ejected endpoints were left out. */
  private basis: { tier: Tier; filtered: boolean } = { tier: 'active', filtered: false };
  /** Addresses listed, changed or unlisted since the picker was last published. */
  private readonly touched = new Set<string>();
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
          this.publish(removed, policyChanged, false);
          this.close();
          return;
      }
    }
    this.publish(removed, policyChanged, false);
  }

  /** The service is gone: every endpoint is handed back through onEndpointRemoved and the picker is empty. */
  close(): void {
    if (this.lifecycle === 'closed') return;
    this.lifecycle = 'closed';
    const removed: EndpointLoad[] = [];
    for (const address of [...this.specs.keys()]) this.unlist(address, removed);
    // Stryker disable next-line BooleanLiteral: equivalent; nothing is listed now, so the picker is the empty one either way
    this.publish(removed, false, true);
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
    const address = endpoint.address;
    this.specs.set(address, endpoint);
    this.touched.add(address);
    let load = this.loads.get(address);
    if (load === undefined) {
      load = new EndpointLoad(address, this.deps.load, initialRtt());
      if (this.outliers !== null) load.failureListener = (failing) => this.failing(failing);
      this.loads.set(address, load);
    }
    let number = this.listing.get(address);
    if (number === undefined) {
      number = this.nextListing++;
      this.listing.set(address, number);
    }
    const tier = tierOf(endpoint);
    if (tier === 'active') this.active.insert(number, load);
    else this.active.delete(number);
    if (tier === 'fallback') this.fallback.insert(number, load);
    else this.fallback.delete(number);
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
    this.publish([], false, true);
    if (load !== undefined) this.onEndpointEjected?.(load, this.key, forMs, load.consecutiveFailures);
  }

  /** Back on trial: one more failure in a row ejects it again (for twice as long), one answer clears it. */
  private readmitted(address: string): void {
    const load = this.loads.get(address);
    if (load !== undefined && this.outliers !== null) load.consecutiveFailures = this.outliers.policy.consecutiveFailures - 1;
    this.publish([], false, true);
  }

  /**
   * A new endpoint starts with the median estimate of the endpoints in the picker, so it looks like an average
   * one: it gets its share at once, and it is not flooded before its first response (its cost rises with every
   * request like theirs). A fixed default would be wrong one way or the other: above the real latency, the
   * endpoint stays under-used until the EWMA decays (τ, ~10 s); far below it, every pick goes to the newcomer
   * until its first response. If it is slower than the others, its first sample raises the estimate at once.
   * Past MEDIAN_SAMPLE endpoints the median is of an evenly spaced sample of them: the exact median of a
   * 10,000-endpoint Service cost ~1 ms of every endpoint added.
   */
  private initialRtt(): number {
    if (this.eligible.size === 0) return this.deps.load.defaultRttNs;
    const now = this.deps.load.now();
    const stride = Math.ceil(this.eligible.size / MEDIAN_SAMPLE);
    const estimates = new Float64Array(Math.min(this.eligible.size, MEDIAN_SAMPLE));
    let count = 0;
    let position = 0;
    for (const address of this.eligible) {
      if (position++ % stride !== 0) continue;
      const load = this.loads.get(address);
      if (load !== undefined) estimates[count++] = load.latencyAt(now);
    }
    if (count === 0) return this.deps.load.defaultRttNs;
    return medianInPlace(estimates, count);
  }

  private unlist(address: string, removed: EndpointLoad[]): void {
    const load = this.loads.get(address);
    const number = this.listing.get(address);
    this.specs.delete(address);
    this.loads.delete(address);
    this.listing.delete(address);
    this.touched.add(address);
    if (number !== undefined) {
      this.active.delete(number);
      this.fallback.delete(number);
    }
    this.outliers?.forget(address);
    if (load !== undefined) {
      load.failureListener = null;
      removed.push(load);
    }
  }

  /**
   * Makes the picker of the eligible endpoints (a new one only if they or the policy changed) and fires the hooks.
   * Unless `whole` is asked for, only the endpoints touched since the last publish are compared with the picker's,
   * which is exact as long as the tier is the same and no endpoint is ejected (then only they can have moved).
   */
  private publish(removed: readonly EndpointLoad[], policyChanged: boolean, whole: boolean): void {
    const tier: Tier = this.active.size > 0 ? 'active' : 'fallback';
    const candidates = tier === 'active' ? this.active.loads : this.fallback.loads;
    const filtering = this.outliers !== null && this.outliers.ejected > 0;
    const members = filtering ? this.withoutEjected(candidates) : candidates;
    let leaving: string[];
    let joining: string[];
    if (!whole && !filtering && !this.basis.filtered && tier === this.basis.tier) {
      leaving = [];
      joining = [];
      for (const address of this.touched) {
        const spec = this.specs.get(address);
        const member = spec !== undefined && tierOf(spec) === tier;
        if (this.eligible.has(address)) {
          if (!member) leaving.push(address);
        } else if (member) {
          joining.push(address);
        }
      }
      for (const address of leaving) this.eligible.delete(address);
      for (const address of joining) this.eligible.add(address);
    } else {
      const next = new Set<string>();
      for (const load of members) next.add(load.address);
      leaving = [];
      for (const address of this.eligible) if (!next.has(address)) leaving.push(address);
      joining = [];
      for (const address of next) if (!this.eligible.has(address)) joining.push(address);
      this.eligible = next;
    }
    this.touched.clear();
    this.basis = { tier, filtered: filtering };
    if (policyChanged || leaving.length > 0 || joining.length > 0) {
      this.current = members.length === 0 ? EMPTY_PICKER : this.policy.createPicker(members);
    }
    for (const load of removed) this.onEndpointRemoved?.(load, this.key);
    // Endpoints unlisted are told through onEndpointRemoved only.
    const draining = this.inListingOrder(leaving.filter((address) => this.loads.has(address)));
    for (const address of draining) this.onEndpointDraining?.(this.loads.get(address) as EndpointLoad, this.key);
    for (const address of this.inListingOrder(joining)) this.onEndpointActive?.(this.loads.get(address) as EndpointLoad, this.key);
  }

  private inListingOrder(addresses: string[]): string[] {
    if (addresses.length > 1) addresses.sort((a, b) => (this.listing.get(a) as number) - (this.listing.get(b) as number));
    return addresses;
  }

  /** The endpoints the conditions allow, less the ejected ones — unless that leaves none (the cap on ejections
   *  counts endpoints as they were; if others have gone since, an ejected endpoint beats no endpoint). */
  private withoutEjected(eligible: readonly EndpointLoad[]): readonly EndpointLoad[] {
    const outliers = this.outliers;
    if (outliers === null || outliers.ejected === 0) return eligible;
    const kept = eligible.filter((load) => !outliers.isEjected(load.address));
    return kept.length > 0 ? kept : eligible;
  }
}
