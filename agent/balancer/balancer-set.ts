// One ServiceBalancer per service key, kept in step with the endpoint registry.

import type { EndpointRegistry } from '../registry/endpoint-registry.ts';
import type { RegistryUpdate } from '../registry/endpoint.ts';
import { createTimeCell, DEFAULT_LOAD_OPTIONS, type LoadOptions } from './endpoint-load.ts';
import { type BalancingPolicy, fastRandomInt, type PolicyDeps } from './picker.ts';
import { OutlierEjection, type OutlierPolicy } from './outlier-ejection.ts';
import { policyByName } from './policies.ts';
import type { Clock } from '../vocabulary/clock.ts';
import type { BalancerName } from '../vocabulary/balancer-names.ts';
import {
  type EndpointHooks,
  ServiceBalancer,
  type ServiceBalancerDeps,
  type ServiceBalancerView,
} from './service-balancer.ts';

export interface BalancerSetOptions {
  /** The agent's policy (config `--balancer`); a service's `balancer` overrides it. */
  defaultBalancer: BalancerName;
  /** Uniform integers in [0, 2^30) (see PolicyDeps); a fast xorshift seeded from Math.random by default. */
  randomInt?: () => number;
  /** Latency tracking, including the monotonic ns clock the pickers share with the load objects. */
  load?: Partial<LoadOptions>;
  /** Installed on every ServiceBalancer this set creates (they fire for services seen at construction too). */
  hooks?: EndpointHooks;
  /** Outlier ejection of every service (its timers on this clock); none: endpoints are never ejected. */
  outliers?: { policy: OutlierPolicy; clock: Clock } | null;
}

/**
 * Subscribes to the registry at construction (getting a reset for every service already known) and applies each
 * update to the balancer of its key: created on `reset` of a new key, closed and forgotten on `delete`. Callers
 * look a balancer up per connection or request; a balancer that was deleted reports `closed` and picks nothing.
 */
export class BalancerSet {
  private readonly balancers = new Map<string, ServiceBalancer>();
  private readonly policies = new Map<BalancerName, BalancingPolicy>();
  private readonly registry: EndpointRegistry;
  private readonly defaultBalancer: BalancerName;
  private readonly policyDeps: PolicyDeps;
  private readonly load: LoadOptions;
  private readonly hooks: EndpointHooks;
  private readonly balancerDeps: ServiceBalancerDeps;
  private unsubscribe: (() => void) | null;

  constructor(registry: EndpointRegistry, options: BalancerSetOptions) {
    this.registry = registry;
    this.defaultBalancer = options.defaultBalancer;
    // The pickers' "now" is the latest sample time of the load objects they compare (see LoadOptions.latestSample).
    const now = options.load?.now ?? DEFAULT_LOAD_OPTIONS.now;
    const latest = createTimeCell(now());
    this.load = { ...DEFAULT_LOAD_OPTIONS, ...options.load, latestSample: latest };
    this.policyDeps = { randomInt: options.randomInt ?? fastRandomInt(), time: latest };
    this.hooks = options.hooks ?? {};
    const outliers = options.outliers ?? null;
    this.balancerDeps = {
      policyFor: (name) => this.policyFor(name),
      load: this.load,
      outliers: outliers === null ? null : (events) => new OutlierEjection(outliers.policy, outliers.clock, events),
    };
    this.unsubscribe = null;
    this.unsubscribe = registry.subscribeBatches((updates) => this.applyBatch(updates));
  }

  get(key: string): ServiceBalancer | undefined {
    return this.balancers.get(key);
  }

  /** Transparent mode: the balancer of the service a client reached by dialling `ip:port`. */
  forAddress(ip: string, port: number): ServiceBalancer | undefined {
    const key = this.registry.keyAtAddress(ip, port);
    return key === undefined ? undefined : this.balancers.get(key);
  }

  keys(): string[] {
    return [...this.balancers.keys()];
  }

  get size(): number {
    return this.balancers.size;
  }

  describe(): ServiceBalancerView[] {
    return [...this.balancers.values()].map((balancer) => balancer.describe());
  }

  /** Stops following the registry; the balancers keep their last pickers so in-flight work can finish. */
  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  /** The registry groups one service's updates together: each run of one key becomes one new picker. */
  private applyBatch(updates: readonly RegistryUpdate[]): void {
    let start = 0;
    while (start < updates.length) {
      let end = start + 1;
      while (end < updates.length && updates[end].key === updates[start].key && updates[end - 1].type !== 'delete') end++;
      this.apply(updates.slice(start, end));
      start = end;
    }
  }

  private apply(updates: readonly RegistryUpdate[]): void {
    const first = updates[0];
    let balancer = this.balancers.get(first.key);
    if (balancer === undefined) {
      if (first.type !== 'reset') throw new Error(`registry sent ${first.type} for unknown service ${first.key}`);
      balancer = new ServiceBalancer(first.key, this.balancerDeps, this.hooks);
      this.balancers.set(first.key, balancer);
    }
    if (updates[updates.length - 1].type === 'delete') this.balancers.delete(first.key);
    balancer.applyAll(updates);
  }

  /** Policies are stateless apart from their injected randomness and clock, so one instance per name serves all. */
  private policyFor(name: BalancerName | null): BalancingPolicy {
    const resolved = name ?? this.defaultBalancer;
    let policy = this.policies.get(resolved);
    if (policy === undefined) {
      policy = policyByName(resolved, this.policyDeps);
      // Stryker disable next-line CallExpression: equivalent; uncached, a lookup builds an identical stateless policy
      this.policies.set(resolved, policy);
    }
    return policy;
  }
}
