// Metrics of interception: the manager's state, passes and their duration, repairs, and the members of each set.

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ErrorCode } from '../vocabulary/errors.ts';

export type InterceptionStateName = 'idle' | 'installing' | 'ready' | 'applying' | 'failed' | 'stopped';
export const INTERCEPTION_STATES: readonly InterceptionStateName[] = ['idle', 'installing', 'ready', 'applying', 'failed', 'stopped'];

/** install: the first pass; sets: after setPods/setDestinations; reconcile: the periodic check (and every retry). */
export type PassKind = 'install' | 'sets' | 'reconcile';

/** What a repair put back: a rule problem (chain, jump) or a set member / a whole set someone removed. */
export type RepairKind = 'chain' | 'jump' | 'set' | 'set_member';

/** What the manager reports; InterceptMetrics is the Prometheus one, tests record the calls. */
export interface InterceptObserver {
  stateChanged(state: InterceptionStateName): void;
  passFinished(pass: PassKind, ok: boolean, seconds: number): void;
  repaired(kind: RepairKind, count: number): void;
  setMembers(set: string, members: number): void;
  countError(code: ErrorCode): void;
}

/** Seconds; a pass is a few exec()s (milliseconds each), a node with a huge kube-proxy rule set takes seconds. */
const PASS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class InterceptMetrics implements InterceptObserver {
  private readonly state: Gauge<'state'>;
  private readonly passes: Counter<'pass' | 'result'>;
  private readonly passSeconds: Histogram<'pass'>;
  private readonly repairs: Counter<'kind'>;
  private readonly members: Gauge<'set'>;
  private readonly onError: (code: ErrorCode) => void;

  /** `countError` feeds the agent-wide meshlite_agent_errors_total (AgentMetrics.countError). */
  constructor(registry: Registry, countError: (code: ErrorCode) => void = () => {}) {
    const registers = [registry];
    this.onError = countError;
    this.state = new Gauge({
      name: 'meshlite_intercept_state',
      help: 'The interception manager by state: 1 for the state it is in. failed means a command failed and is retried with backoff; rules already installed keep working.',
      labelNames: ['state'],
      registers,
    });
    this.passes = new Counter({
      name: 'meshlite_intercept_passes_total',
      help: 'Passes that compared the kernel with the desired rules and sets and applied the difference, by kind (install, sets, reconcile) and result.',
      labelNames: ['pass', 'result'],
      registers,
    });
    this.passSeconds = new Histogram({
      name: 'meshlite_intercept_pass_seconds',
      help: 'Duration of successful passes: for kind sets, the time from a pod or destination change being applied to it being in the kernel, less coalescing.',
      labelNames: ['pass'],
      buckets: PASS_BUCKETS,
      registers,
    });
    this.repairs = new Counter({
      name: 'meshlite_intercept_repairs_total',
      help: 'Things meshlite had installed that the periodic check found removed or changed by someone else, and restored, by kind.',
      labelNames: ['kind'],
      registers,
    });
    this.members = new Gauge({
      name: 'meshlite_intercept_set_members',
      help: 'Members of each interception ipset as last applied.',
      labelNames: ['set'],
      registers,
    });
    this.stateChanged('idle');
  }

  stateChanged(state: InterceptionStateName): void {
    for (const name of INTERCEPTION_STATES) this.state.set({ state: name }, name === state ? 1 : 0);
  }

  passFinished(pass: PassKind, ok: boolean, seconds: number): void {
    this.passes.inc({ pass, result: ok ? 'success' : 'failure' });
    if (ok) this.passSeconds.observe({ pass }, seconds);
  }

  repaired(kind: RepairKind, count: number): void {
    this.repairs.inc({ kind }, count);
  }

  setMembers(set: string, members: number): void {
    this.members.set({ set }, members);
  }

  countError(code: ErrorCode): void {
    this.onError(code);
  }
}
