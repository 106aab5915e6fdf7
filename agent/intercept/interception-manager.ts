// Keeps the kernel's interception rules and sets equal to the desired ones: install, coalesced updates, periodic repair, retry.

import { type ErrorCode, MeshliteError } from '../vocabulary/errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import { type BackoffPolicy, backoffDelay } from '../vocabulary/backoff.ts';
import { type BackendDecision, detectBackend } from './backend-detection.ts';
import type { CommandRunner } from './command-runner.ts';
import { type Destination, DesiredSets, type Replaced } from './desired-sets.ts';
import type { InterceptionStateName, InterceptObserver, PassKind } from './intercept-metrics.ts';
import { applyInterception, type FamilyTarget, type PassResult } from './interception-pass.ts';
import type { IptablesBackend, IptablesBackendSetting } from './iptables-backend.ts';
import { type IpFamily, setDefinitions } from './names.ts';
import { summarizePass } from './pass-summary.ts';
import { podMember } from './set-members.ts';
import { removeRulesFrom, removeSets } from './uninstall.ts';
import type { Clock } from '../vocabulary/clock.ts';

export interface InterceptionManagerOptions {
  runner: CommandRunner;
  logger: Logger;
  metrics?: InterceptObserver;
  timers: Clock;
  /** A family is intercepted when its node IP is set; the IP is the DNAT target and the listener guard's address. */
  nodeIPs: { v4: string | null; v6: string | null };
  proxyPort: number;
  backend: IptablesBackendSetting;
  reconcileIntervalMs: number;
  /** The jitter of retry delays (Math.random in the agent). */
  random?: () => number;
  backoff?: BackoffPolicy;
  /** Changes within this time go to the kernel in one pass. */
  coalesceMs?: number;
}

/**
 * `installing`: the first pass (backend detection, sets, rules); `ready`: the kernel held what was desired at the
 * last pass; `applying`: a later pass (sets after a change, or the periodic reconcile); `failed`: the last pass
 * failed and a retry is scheduled (whatever was installed before keeps working); `stopped`: no more passes, and
 * every rule and set stays where it is.
 */
export type InterceptionState =
  | { state: 'idle' }
  | { state: 'installing'; since: number }
  | { state: 'ready'; since: number }
  | { state: 'applying'; pass: 'sets' | 'reconcile'; since: number }
  | { state: 'failed'; code: ErrorCode; reason: string; since: number; failures: number; retryInMs: number }
  | { state: 'stopped' };

const LEGAL: Record<InterceptionStateName, readonly InterceptionStateName[]> = {
  idle: ['installing', 'stopped'],
  installing: ['ready', 'failed', 'stopped'],
  ready: ['applying', 'stopped'],
  applying: ['ready', 'failed', 'stopped'],
  failed: ['installing', 'applying', 'stopped'],
  stopped: [],
};

/** Retries of a failing iptables or ipset command: soon at first, at most every 30 s (a flapping lock, a busy node). */
export const DEFAULT_INTERCEPT_BACKOFF: BackoffPolicy = { initialMs: 200, maxMs: 30_000 };
/** Long enough to gather the burst of changes one informer event or one CNI call causes, short against a pod's start. */
export const DEFAULT_COALESCE_MS = 5;

interface Waiter {
  generation: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

export class InterceptionManager {
  private current: InterceptionState = { state: 'idle' };
  private readonly options: InterceptionManagerOptions;
  private readonly log: Logger;
  private readonly families: readonly FamilyTarget[];
  private readonly desired: DesiredSets;
  /** Bumped by every change of the desired sets; a pass applies the generation it started with. */
  private generation = 0;
  private appliedGeneration = -1;
  /** The desired sets as the last successful pass left them in the kernel; null before the first. */
  private applied: ReadonlyMap<string, ReadonlySet<string>> | null = null;
  private rulesInstalled = false;
  /** Consecutive failed passes, and since when; null after a success. */
  private failures: { count: number; since: number } | null = null;
  private decision: BackendDecision | null = null;
  /** The pass asked for while one was running or being coalesced. */
  private pending: PassKind | null = null;
  private wakeTimer: unknown = null;
  private reconcileTimer: unknown = null;
  private retryTimer: unknown = null;
  private inFlight: Promise<void> | null = null;
  private waiters: Waiter[] = [];
  private lastInvalid = { pods: '', destinations: '' };

  constructor(options: InterceptionManagerOptions) {
    this.options = options;
    this.log = options.logger.child({ component: 'intercept' });
    const families: FamilyTarget[] = [];
    for (const [family, ip] of [[4, options.nodeIPs.v4], [6, options.nodeIPs.v6]] as const) {
      if (ip === null) continue;
      const member = podMember(ip);
      if (member === null || member.family !== family) throw new Error(`interception: node IP ${ip} is not an IPv${family} address`);
      families.push({ family, nodeIP: member.member });
    }
    if (families.length === 0) throw new Error('interception: no node IP');
    this.families = families;
    this.desired = new DesiredSets(families.map((target) => target.family));
  }

  get state(): InterceptionState {
    return this.current;
  }

  /** The backend in use and why; null until the first pass has detected it. */
  get backend(): BackendDecision | null {
    return this.decision;
  }

  /**
   * Detects the backend, creates and fills the sets, installs chains and jumps. Resolves once all of that is in the
   * kernel; a failing command is retried with backoff meanwhile (so the agent is not ready without interception).
   * Rejects only when stop() comes first.
   */
  start(): Promise<void> {
    if (this.current.state !== 'idle') throw new Error(`interception: start() in state ${this.current.state}`);
    this.launch('install');
    return this.whenApplied();
  }

  /** The complete set of this node's opted-in pod IPs (either family; those of a family not intercepted are ignored). */
  setPods(ips: Iterable<string>): void {
    this.changed('pods', this.desired.replacePods(ips));
  }

  /** The complete set of gRPC destinations (ClusterIP:port and endpoint IP:port of every gRPC Service port). */
  setDestinations(destinations: Iterable<Destination>): void {
    this.changed('destinations', this.desired.replaceDestinations(destinations));
  }

  /**
   * Resolves once everything desired when it was called is in the kernel (at once when it already is). Waits through
   * failures and retries: a caller that cannot wait forever (the CNI enrollment) puts its own deadline on it.
   * A pod's update is one `ipset restore` computed against what the last pass left; should someone else have removed
   * a member in between, the next reconcile puts it back.
   */
  whenApplied(): Promise<void> {
    if (this.current.state === 'stopped') return Promise.reject(new Error('interception stopped'));
    if (this.appliedGeneration >= this.generation) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ generation: this.generation, resolve, reject }));
  }

  /** No further passes; a pass under way finishes (never half a restore). Leaves every rule and set in place. */
  stop(): Promise<void> {
    if (this.current.state !== 'stopped') {
      this.transition({ state: 'stopped' });
      for (const timer of [this.wakeTimer, this.reconcileTimer, this.retryTimer]) {
        if (timer !== null) this.options.timers.clearTimeout(timer);
      }
      this.wakeTimer = this.reconcileTimer = this.retryTimer = null;
      const error = new Error('interception stopped');
      for (const waiter of this.waiters) waiter.reject(error);
      this.waiters = [];
    }
    return this.inFlight ?? Promise.resolve();
  }

  private changed(side: 'pods' | 'destinations', replaced: Replaced): void {
    if (this.current.state === 'stopped') return;
    const invalid = replaced.invalid.join(' ');
    if (invalid !== '' && invalid !== this.lastInvalid[side]) {
      this.options.metrics?.countError('ML_INTERCEPT_INVALID_ADDRESS');
      this.log.warn({ code: 'ML_INTERCEPT_INVALID_ADDRESS', side, invalid: replaced.invalid.slice(0, 10), count: replaced.invalid.length }, `skipping ${side} that are not addresses`);
    }
    this.lastInvalid[side] = invalid;
    if (replaced.otherFamily > 0) this.log.debug({ side, count: replaced.otherFamily }, 'ignoring addresses of a family without a node IP');
    this.generation++;
    this.request('sets');
  }

  /** Asks for a pass; passes never overlap, and requests made meanwhile become one pass after the current one. */
  private request(kind: PassKind): void {
    if (this.pending !== 'reconcile') this.pending = kind;
    if (this.current.state !== 'ready' || this.wakeTimer !== null) return;
    this.wakeTimer = this.options.timers.setTimeout(() => {
      this.wakeTimer = null;
      if (this.current.state === 'ready' && this.pending !== null) this.launch(this.pending);
    }, this.options.coalesceMs ?? DEFAULT_COALESCE_MS);
  }

  private launch(kind: PassKind): void {
    this.pending = null;
    const since = this.options.timers.now();
    this.transition(kind === 'install' ? { state: 'installing', since } : { state: 'applying', pass: kind === 'sets' ? 'sets' : 'reconcile', since });
    const pass = this.runPass(kind).finally(() => {
      if (this.inFlight === pass) this.inFlight = null;
    });
    this.inFlight = pass;
  }

  private async runPass(kind: PassKind): Promise<void> {
    const { timers, runner, proxyPort } = this.options;
    const started = timers.now();
    const generation = this.generation;
    const desired = this.desired.snapshot();
    let movedFrom: IptablesBackend | null = null;
    try {
      let dumps: Map<IpFamily, string> | undefined;
      if (kind === 'install' || (kind === 'reconcile' && this.decisionMayChange())) {
        const detection = await detectBackend(runner, this.options.backend);
        if (this.decision !== null && detection.decision.backend !== this.decision.backend && detection.decision.reason === 'kube-chains') {
          movedFrom = this.decision.backend;
        }
        if (this.decision === null || movedFrom !== null) this.logBackend(detection.decision, movedFrom);
        this.decision = detection.decision;
        if (detection.dump !== null) dumps = new Map([[4, detection.dump]]);
      }
      if (this.decision === null) throw new Error('interception: a pass without a backend');
      const { backend } = this.decision;
      const assumed = kind === 'sets' && this.applied !== null ? this.applied : undefined;
      const rules = kind !== 'sets';
      const result = await applyInterception({ runner, backend, families: this.families, proxyPort, desired, rules, dumps, assumed });
      if (movedFrom !== null) await this.removeFromBackend(movedFrom);
      if (kind === 'install') await this.removeDisabledFamilies(backend);
      if (this.current.state === 'stopped') return;
      this.succeeded(kind, result, desired, movedFrom === null, started);
      this.appliedGeneration = generation;
      this.settleWaiters();
    } catch (error) {
      if (this.current.state === 'stopped') {
        this.log.warn({ err: error }, 'a pass failed while stopping');
        return;
      }
      this.failed(kind, error as Error, started);
    }
  }

  private succeeded(kind: PassKind, result: PassResult, desired: ReadonlyMap<string, ReadonlySet<string>>, compare: boolean, started: number): void {
    const { metrics, timers } = this.options;
    const summary = summarizePass(result, this.applied, compare && this.rulesInstalled);
    this.applied = desired;
    if (kind !== 'sets') this.rulesInstalled = true;
    const ms = Math.round(timers.now() - started);
    const backend = this.decision?.backend;
    if (Object.keys(summary.sets).length > 0 || summary.rules.length > 0) {
      // Set updates follow every pod and endpoint change (discovery logs those): debug; install and reconcile: info.
      const level = kind === 'sets' ? 'debug' : 'info';
      this.log[level]({ pass: kind, backend, sets: summary.sets, rules: summary.rules, ms }, 'interception applied');
    } else {
      this.log.debug({ pass: kind, backend, ms }, 'interception already in place');
    }
    if (summary.repairs.length > 0) {
      metrics?.countError('ML_INTERCEPT_REPAIRED');
      for (const repair of summary.repairs) metrics?.repaired(repair.kind, repair.count);
      this.log.warn({ code: 'ML_INTERCEPT_REPAIRED', repaired: summary.repairs.map((r) => r.description) }, 'restored interception that someone else removed or changed');
    }
    if (this.failures !== null) {
      this.log.info({ failures: this.failures.count, downMs: Math.round(timers.now() - this.failures.since) }, 'interception applied again after failures');
      this.failures = null;
    }
    metrics?.passFinished(kind, true, ms / 1000);
    for (const [name, members] of desired) metrics?.setMembers(name, members.size);
    this.transition({ state: 'ready', since: timers.now() });
    if (kind !== 'sets') this.armReconcile();
    if (this.pending !== null) this.request(this.pending);
  }

  private failed(kind: PassKind, error: Error, started: number): void {
    const { metrics, timers } = this.options;
    // Anything but a command's or a set's failure is a bug here; it is retried all the same.
    const code: ErrorCode = error instanceof MeshliteError ? error.code : 'ML_INTERNAL';
    this.failures = { count: (this.failures?.count ?? 0) + 1, since: this.failures?.since ?? started };
    const { count: failures, since } = this.failures;
    const retryInMs = backoffDelay(this.options.backoff ?? DEFAULT_INTERCEPT_BACKOFF, failures, this.options.random ?? Math.random);
    metrics?.passFinished(kind, false, (timers.now() - started) / 1000);
    metrics?.countError(code);
    this.log.warn({ code, err: error, pass: kind, failures, retryInMs }, 'applying interception failed; retrying');
    this.transition({ state: 'failed', code, reason: error.message, since, failures, retryInMs });
    this.retryTimer = timers.setTimeout(() => {
      this.retryTimer = null;
      if (this.current.state === 'failed') this.launch(this.rulesInstalled ? 'reconcile' : 'install');
    }, retryInMs);
  }

  private armReconcile(): void {
    const { timers, reconcileIntervalMs } = this.options;
    if (this.reconcileTimer !== null) timers.clearTimeout(this.reconcileTimer);
    this.reconcileTimer = timers.setTimeout(() => {
      this.reconcileTimer = null;
      this.request('reconcile');
    }, reconcileIntervalMs);
  }

  private settleWaiters(): void {
    const due = this.waiters.filter((waiter) => waiter.generation <= this.appliedGeneration);
    this.waiters = this.waiters.filter((waiter) => waiter.generation > this.appliedGeneration);
    for (const waiter of due) waiter.resolve();
  }

  /** An automatic choice made without seeing kube-proxy's chains is looked at again by each reconcile. */
  private decisionMayChange(): boolean {
    return this.decision !== null && this.decision.reason !== 'forced' && this.decision.reason !== 'kube-chains';
  }

  private logBackend(decision: BackendDecision, movedFrom: string | null): void {
    const fields = { backend: decision.backend, reason: decision.reason, kubeLines: decision.kubeLines };
    if (movedFrom === null) this.log.info(fields, `using iptables backend ${decision.backend}`);
    else this.log.warn({ ...fields, from: movedFrom }, `kube-proxy's chains are in iptables ${decision.backend}: moving interception there`);
  }

  private async removeFromBackend(backend: IptablesBackend): Promise<void> {
    for (const { family } of this.families) {
      const removed = await removeRulesFrom(this.options.runner, backend, family);
      if (removed.length > 0) this.log.info({ backend, family, removed }, 'removed interception from the backend no longer in use');
    }
  }

  /**
   * A family without a node IP is not intercepted; rules a previous configuration left for it would redirect its
   * connections to a listener that is not there. Best effort: a host without IPv6 tables must still get IPv4 done.
   */
  private async removeDisabledFamilies(backend: IptablesBackend): Promise<void> {
    for (const family of [4, 6] as const) {
      if (this.families.some((target) => target.family === family)) continue;
      try {
        const removed = await removeRulesFrom(this.options.runner, backend, family);
        removed.push(...(await removeSets(this.options.runner, setDefinitions(family).map((set) => set.name))));
        if (removed.length > 0) this.log.info({ family, removed }, 'removed interception of a family without a node IP');
      } catch (error) {
        this.log.warn({ code: 'ML_INTERCEPT_COMMAND_FAILED', err: error, family }, 'could not check for interception of a family without a node IP');
      }
    }
  }

  private transition(next: InterceptionState): void {
    const from = this.current;
    if (!LEGAL[from.state].includes(next.state)) throw new Error(`interception: illegal transition ${from.state} → ${next.state}`);
    this.current = next;
    this.log.debug({ from: from.state, to: next.state }, 'interception state');
    this.options.metrics?.stateChanged(next.state);
  }
}
