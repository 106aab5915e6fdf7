// Outlier ejection, per service: an endpoint that failed requests several times in a row (connects refused or timed
// out, streams refused, connections lost — what EndpointLoad.onFailure hears) leaves the picker for a probation that
// doubles with each ejection, then comes back on trial: one more failure sends it out again, one answer clears it.
// Never the last endpoints: at most half of a service's endpoints are out at once, so a service with one endpoint
// never ejects it (its requests wait for it instead, see upstream-pool.ts), and a whole-service outage is not
// mistaken for outliers.

import type { Clock } from '../vocabulary/clock.ts';

export interface OutlierPolicy {
  /** Failures in a row that eject an endpoint (Envoy's consecutive-5xx default is 5; Linkerd's failure accrual 7). */
  consecutiveFailures: number;
  /** The first ejection's length; each further one doubles it, up to `maxEjectionMs`. */
  baseEjectionMs: number;
  maxEjectionMs: number;
  /** An endpoint that stayed in this long since its last ejection starts again from the base length. */
  forgetAfterMs: number;
  /** The part of a service's candidate endpoints that may be out at once (rounded down). */
  maxEjectedFraction: number;
}

export const DEFAULT_OUTLIER_POLICY: Readonly<OutlierPolicy> = Object.freeze({
  consecutiveFailures: 5,
  // Short at first: a pod that restarts is back in seconds; one that keeps failing is out for minutes.
  baseEjectionMs: 5_000,
  maxEjectionMs: 300_000,
  forgetAfterMs: 600_000,
  maxEjectedFraction: 0.5,
});

interface EjectionRecord {
  /** Ejections so far (since the last time the endpoint was forgiven). */
  ejections: number;
  /** When the current ejection ends (clock ms); 0 while the endpoint is in. */
  until: number;
  /** When it last came back (clock ms). */
  readmittedAt: number;
  timer: unknown;
}

export interface OutlierEvents {
  /** `address` is out for `forMs` (the picker must be rebuilt without it). */
  ejected(address: string, forMs: number, ejections: number): void;
  /** Its probation ended: back in the picker, on trial. */
  readmitted(address: string): void;
}

export class OutlierEjection {
  readonly policy: OutlierPolicy;
  private readonly clock: Clock;
  private readonly events: OutlierEvents;
  private readonly records = new Map<string, EjectionRecord>();
  private ejectedCount = 0;

  constructor(policy: OutlierPolicy, clock: Clock, events: OutlierEvents) {
    this.policy = policy;
    this.clock = clock;
    this.events = events;
  }

  isEjected(address: string): boolean {
    return (this.records.get(address)?.until ?? 0) > 0;
  }

  get ejected(): number {
    return this.ejectedCount;
  }

  /**
   * `address` failed its `consecutive`-th request in a row, out of `candidates` endpoints the service could pick
   * from (ejected ones included). Ejects it when that reaches the policy's count and the cap allows; true if it did.
   */
  failed(address: string, consecutive: number, candidates: number): boolean {
    if (consecutive < this.policy.consecutiveFailures || this.isEjected(address)) return false;
    if (this.ejectedCount + 1 > Math.floor(candidates * this.policy.maxEjectedFraction)) return false;
    const now = this.clock.now();
    const record = this.records.get(address) ?? { ejections: 0, until: 0, readmittedAt: 0, timer: null };
    if (record.ejections > 0 && now - record.readmittedAt >= this.policy.forgetAfterMs) record.ejections = 0;
    record.ejections++;
    const forMs = Math.min(this.policy.baseEjectionMs * 2 ** (record.ejections - 1), this.policy.maxEjectionMs);
    record.until = now + forMs;
    record.timer = this.clock.setTimeout(() => this.readmit(address), forMs);
    this.records.set(address, record);
    this.ejectedCount++;
    this.events.ejected(address, forMs, record.ejections);
    return true;
  }

  /** The endpoint is no longer listed: its history goes with it. */
  forget(address: string): void {
    const record = this.records.get(address);
    if (record === undefined) return;
    if (record.until > 0) {
      this.clock.clearTimeout(record.timer);
      this.ejectedCount--;
    }
    this.records.delete(address);
  }

  /** The service is gone: no timer may outlive it. */
  close(): void {
    for (const address of [...this.records.keys()]) this.forget(address);
  }

  private readmit(address: string): void {
    const record = this.records.get(address);
    if (record === undefined || record.until === 0) return;
    record.until = 0;
    record.timer = null;
    record.readmittedAt = this.clock.now();
    this.ejectedCount--;
    this.events.readmitted(address);
  }
}
