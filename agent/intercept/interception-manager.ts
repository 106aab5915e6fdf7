// Keeps the kernel's interception rules and sets equal to the desired ones: install, coalesced updates, periodic repair, retry.

import { type ErrorCode, MeshliteError } from '../vocabulary/errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import { type BackoffPolicy, backoffDelay } from '../vocabulary/backoff.ts';
import type { BackendDecision } from './backend-detection.ts';
import type { CommandRunner } from './command-runner.ts';
import { type Destination, type DestinationChange, DesiredSets, type Replaced } from './desired-sets.ts';
import { type FailMode, POD_MEMBER_TIMEOUT_S, POD_REFRESH_INTERVAL_MS } from './fail-mode.ts';
import type { InterceptObserver, PassKind } from './intercept-metrics.ts';
import type { FamilyTarget, PassResult } from './interception-pass.ts';
import { InterceptionLifecycle, type InterceptionState } from './interception-state.ts';
import type { IptablesBackendSetting } from './iptables-backend.ts';
import { summarizePass } from './pass-summary.ts';
import { PassRunner } from './pass-runner.ts';
import { DEFAULT_COALESCE_MS, PassScheduler } from './pass-scheduler.ts';
import { membersToRefresh, PodSetRefresher } from './pod-set-refresher.ts';
import { podSetName } from './names.ts';
import { podMember } from './set-members.ts';
import type { Clock } from '../vocabulary/clock.ts';
import type { Members } from './member-set.ts';

export type { InterceptionState } from './interception-state.ts';
export { DEFAULT_COALESCE_MS } from './pass-scheduler.ts';

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
  /** open (the default): pods-set members expire unless this manager keeps refreshing them; closed: permanent. */
  failMode?: FailMode;
}

/** Retries of a failing iptables or ipset command: soon at first, at most every 30 s (a flapping lock, a busy node). */
export const DEFAULT_INTERCEPT_BACKOFF: BackoffPolicy = { initialMs: 200, maxMs: 30_000 };

interface Waiter {
  generation: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** The interception manager as the dashboard shows it. */
export interface InterceptionView {
  state: string;
  reason: string | null;
  /** Members per set, as the last successful pass left them. */
  sets: Record<string, number>;
  lastPass: { kind: PassKind; agoMs: number } | null;
}

export class InterceptionManager {
  private readonly options: InterceptionManagerOptions;
  private readonly log: Logger;
  private readonly lifecycle: InterceptionLifecycle;
  private readonly desired: DesiredSets;
  private readonly passes: PassRunner;
  private readonly scheduler: PassScheduler;
  /** Fail open only; runs from the first successful pass until stopRefreshing() or stop(). */
  private readonly refresher: PodSetRefresher | null;
  /** The end of the last pass or refresh: the next one starts after it, so their ipset commands never interleave. */
  private commandTail: Promise<unknown> = Promise.resolve();
  /** Bumped by every change of the desired sets; a pass applies the generation it started with. */
  private generation = 0;
  private appliedGeneration = -1;
  /** The desired sets as the last successful pass left them in the kernel; null before the first. */
  private applied: ReadonlyMap<string, Members> | null = null;
  /** The last pass that succeeded: its kind and when (the manager's clock). */
  private lastPass: { kind: PassKind; at: number } | null = null;
  private rulesInstalled = false;
  /** Consecutive failed passes, and since when; null after a success. */
  private failures: { count: number; since: number } | null = null;
  private inFlight: Promise<void> | null = null;
  private waiters: Waiter[] = [];
  private lastInvalid = { pods: '', destinations: '' };

  constructor(options: InterceptionManagerOptions) {
    this.options = options;
    this.log = options.logger.child({ component: 'intercept' });
    this.lifecycle = new InterceptionLifecycle(this.log, options.metrics);
    const families: FamilyTarget[] = [];
    for (const [family, ip] of [[4, options.nodeIPs.v4], [6, options.nodeIPs.v6]] as const) {
      if (ip === null) continue;
      const member = podMember(ip);
      if (member === null || member.family !== family) throw new Error(`interception: node IP ${ip} is not an IPv${family} address`);
      families.push({ family, nodeIP: member.member });
    }
    if (families.length === 0) throw new Error('interception: no node IP');
    this.desired = new DesiredSets(families.map((target) => target.family));
    const failMode = options.failMode ?? 'open';
    this.passes = new PassRunner({ runner: options.runner, backend: options.backend, families, proxyPort: options.proxyPort, failMode, log: this.log });
    const podSets = families.map((target) => podSetName(target.family));
    this.refresher =
      failMode === 'closed'
        ? null
        : new PodSetRefresher({
            runner: options.runner,
            timers: options.timers,
            log: this.log,
            metrics: options.metrics,
            intervalMs: POD_REFRESH_INTERVAL_MS,
            timeoutS: POD_MEMBER_TIMEOUT_S,
            members: () => membersToRefresh(podSets, this.applied, this.desired.snapshot()),
            exclusive: (work) => this.exclusive(work),
          });
    this.scheduler = new PassScheduler({
      timers: options.timers,
      coalesceMs: options.coalesceMs ?? DEFAULT_COALESCE_MS,
      reconcileIntervalMs: options.reconcileIntervalMs,
      state: () => this.lifecycle.state.state,
      launch: (kind) => this.launch(kind),
    });
  }

  /** What the dashboard shows: the state (and why, when failed), each set's members as last applied, the last pass. */
  describe(): InterceptionView {
    const state = this.state;
    const sets: Record<string, number> = {};
    for (const [name, members] of this.applied ?? []) sets[name] = members.size;
    const lastPass = this.lastPass === null ? null : { kind: this.lastPass.kind, agoMs: Math.round(this.options.timers.now() - this.lastPass.at) };
    return { state: state.state, reason: state.state === 'failed' ? `${state.code}: ${state.reason}` : null, sets, lastPass };
  }

  get state(): InterceptionState {
    return this.lifecycle.state;
  }

  /** The backend in use and why; null until the first pass has detected it. */
  get backend(): BackendDecision | null {
    return this.passes.backend;
  }

  /**
   * Detects the backend, creates and fills the sets, installs chains and jumps. Resolves once all of that is in the
   * kernel; a failing command is retried with backoff meanwhile (so the agent is not ready without interception).
   * Rejects only when stop() comes first.
   */
  start(): Promise<void> {
    if (this.state.state !== 'idle') throw new Error(`interception: start() in state ${this.state.state}`);
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

  /** Destinations claimed and given up since the last call (the registry's address changes); none: nothing to do. */
  changeDestinations(changes: readonly DestinationChange[]): void {
    if (changes.length > 0) this.changed('destinations', this.desired.changeDestinations(changes));
  }

  /**
   * Resolves once everything desired when it was called is in the kernel (at once when it already is). Waits through
   * failures and retries: a caller that cannot wait forever (the CNI enrollment) puts its own deadline on it.
   * A pod's update is one `ipset restore` computed against what the last pass left; should someone else have removed
   * a member in between, the next reconcile puts it back.
   */
  whenApplied(): Promise<void> {
    if (this.state.state === 'stopped') return Promise.reject(new Error('interception stopped'));
    if (this.appliedGeneration >= this.generation) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ generation: this.generation, resolve, reject }));
  }

  /**
   * Fail open: no more refreshes, so this node's pods' members expire within the timeout unless another agent
   * refreshes them. A draining agent calls it first: it no longer accepts connections, and if no new agent takes
   * over, the pods' new connections should reach their Services through kube-proxy, not be refused for the drain.
   */
  stopRefreshing(): void {
    this.refresher?.stop();
  }

  /**
   * No further passes or refreshes; a pass under way finishes (never half a restore). Leaves every rule and set in
   * place, members too: a new agent may be taking over, and if none does, fail open's members expire by themselves.
   */
  stop(): Promise<void> {
    if (this.state.state !== 'stopped') {
      this.lifecycle.transition({ state: 'stopped' });
      this.scheduler.cancel();
      this.refresher?.stop();
      const error = new Error('interception stopped');
      for (const waiter of this.waiters) waiter.reject(error);
      this.waiters = [];
    }
    return this.inFlight ?? Promise.resolve();
  }

  private changed(side: 'pods' | 'destinations', replaced: Replaced): void {
    if (this.state.state === 'stopped') return;
    const invalid = replaced.invalid.join(' ');
    if (invalid !== '' && invalid !== this.lastInvalid[side]) {
      this.options.metrics?.countError('ML_INTERCEPT_INVALID_ADDRESS');
      this.log.warn({ code: 'ML_INTERCEPT_INVALID_ADDRESS', side, invalid: replaced.invalid.slice(0, 10), count: replaced.invalid.length }, `skipping ${side} that are not addresses`);
    }
    this.lastInvalid[side] = invalid;
    if (replaced.otherFamily > 0) this.log.debug({ side, count: replaced.otherFamily }, 'ignoring addresses of a family without a node IP');
    this.generation++;
    this.scheduler.request('sets');
  }

  private launch(kind: PassKind): void {
    this.scheduler.takePending();
    const since = this.options.timers.now();
    this.lifecycle.transition(kind === 'install' ? { state: 'installing', since } : { state: 'applying', pass: kind === 'sets' ? 'sets' : 'reconcile', since });
    const pass = this.runPass(kind).finally(() => {
      if (this.inFlight === pass) this.inFlight = null;
    });
    this.inFlight = pass;
  }

  private async runPass(kind: PassKind): Promise<void> {
    const started = this.options.timers.now();
    const generation = this.generation;
    const desired = this.desired.snapshot();
    try {
      const assumed = kind === 'sets' && this.applied !== null ? this.applied : undefined;
      const { result, movedFrom } = await this.exclusive(() => this.passes.run(kind, desired, assumed));
      if (this.state.state === 'stopped') return;
      this.succeeded(kind, result, desired, movedFrom === null, started);
      this.appliedGeneration = generation;
      this.settleWaiters();
    } catch (error) {
      if (this.state.state === 'stopped') {
        this.log.warn({ code: error instanceof MeshliteError ? error.code : 'ML_INTERNAL', err: error }, 'a pass failed while stopping');
        return;
      }
      this.failed(kind, error as Error, started);
    }
  }

  private succeeded(kind: PassKind, result: PassResult, desired: ReadonlyMap<string, Members>, compare: boolean, started: number): void {
    const { metrics, timers } = this.options;
    const summary = summarizePass(result, this.applied, compare && this.rulesInstalled);
    this.applied = desired;
    this.lastPass = { kind, at: timers.now() };
    if (kind !== 'sets') this.rulesInstalled = true;
    const ms = Math.round(timers.now() - started);
    const backend = this.passes.backend?.backend;
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
    this.lifecycle.transition({ state: 'ready', since: timers.now() });
    this.refresher?.start();
    if (kind !== 'sets') this.scheduler.armReconcile();
    this.scheduler.requestPending();
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
    this.lifecycle.transition({ state: 'failed', code, reason: error.message, since, failures, retryInMs });
    this.scheduler.retry(retryInMs, () => (this.rulesInstalled ? 'reconcile' : 'install'));
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const result = this.commandTail.then(work);
    this.commandTail = result.catch(() => {});
    return result;
  }

  private settleWaiters(): void {
    const due = this.waiters.filter((waiter) => waiter.generation <= this.appliedGeneration);
    this.waiters = this.waiters.filter((waiter) => waiter.generation > this.appliedGeneration);
    for (const waiter of due) waiter.resolve();
  }
}
