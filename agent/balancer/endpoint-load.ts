// One endpoint's load as the balancers see it: requests in flight and a peak-EWMA latency estimate.

/** Monotonic nanoseconds as a double (performance.now() is monotonic and does not allocate like hrtime.bigint). */
export function monotonicNowNs(): number {
  return performance.now() * 1e6;
}

/**
 * Monotonic nanoseconds in element 0 of a one-element Float64Array: read with no call, written with no allocation
 * (V8 in Node 24 boxes every double stored in an object field, a fresh heap number per store).
 */
export type TimeCell = Float64Array;

export function createTimeCell(ns = 0): TimeCell {
  return new Float64Array([ns]);
}

export interface LoadOptions {
  /** Monotonic clock in nanoseconds. */
  now(): number;
  /**
   * Set to the time of the latest sample recorded by any endpoint sharing it; null when no picker needs it.
   * p2c-ewma reads it as "now": a real clock read costs ~45 ns on this kind of machine (more than the rest of a
   * pick), this costs a load; it trails real time by at most the gap between two responses (nothing against a
   * decay constant of seconds), and while nothing completes no estimate needs to fade.
   */
  latestSample: TimeCell | null;
  /** Time constant τ of the decay: a sample's weight is 1 - exp(-Δt/τ). Linkerd uses 10 s. */
  decayNs: number;
  /** The estimate of an endpoint with no sample yet when nothing better is known (a service's first endpoints).
   *  Low enough that a new endpoint gets traffic at once under load (cost = default × (inFlight + 1) beats a warm
   *  endpoint with a few requests in flight); not zero, so it is not flooded before its first response: every
   *  request sent to it raises its cost. */
  defaultRttNs: number;
  /** The latency charged by onFailure(): a connect failure or refusal is often fast, and without a penalty a
   *  failing endpoint would look like the fastest one and attract every request. */
  failurePenaltyNs: number;
}

/** The least weight one sample below the estimate gets (see observe()). */
const MIN_SAMPLE_WEIGHT = 0.05;

export const DEFAULT_LOAD_OPTIONS: Readonly<LoadOptions> = Object.freeze({
  now: monotonicNowNs,
  latestSample: null,
  decayNs: 10e9,
  defaultRttNs: 1e6,
  failurePenaltyNs: 1e9,
});

/**
 * Peak EWMA (Finagle, Linkerd): a sample above the estimate replaces it at once, so a slow endpoint is avoided as
 * soon as it shows; a lower sample pulls the estimate toward itself with weight 1 - exp(-Δt/τ), and at least
 * MIN_SAMPLE_WEIGHT, so recovery needs either time or a run of fast answers (unlike Finagle and Linkerd, where
 * samples close together barely count: on a busy two-core node one early peak then skewed a 3000-request spread
 * to 628/1061/1311; with the floor it stayed within ±20%). Reading the cost also lets the estimate fade toward zero since the last sample (as
 * Finagle and Linkerd do on every read): an endpoint avoided for being slow gets no samples, and without this it
 * would never be tried again. The cost multiplies by (inFlight + 1), so queued work counts at once.
 *
 * The owner (relay) calls onStart() when a request is sent to the endpoint, then exactly one of onFinish(),
 * onFailure() or onCancel(). Every field is set in the constructor so all instances share one hidden class.
 */
const EWMA = 0;
const STAMP = 1;

export class EndpointLoad {
  readonly address: string;
  inFlight: number;
  /** Requests started since this object was created (for debugging and the dashboard). */
  started: number;
  /** Failures since the last answer (outlier ejection's count; its owner may set it, see ServiceBalancer). */
  consecutiveFailures: number;
  /** Told of every failure, after it was counted (the service's outlier ejection); null when nobody listens. */
  failureListener: ((load: EndpointLoad) => void) | null;
  /** [EWMA]: the latency estimate in ns at [STAMP]: the time of the last sample. A typed array, not two fields:
   *  V8 boxes every double stored in an object field, which would allocate on every sample. */
  private readonly estimate: Float64Array;
  private readonly clock: () => number;
  private readonly decayNs: number;
  private readonly penaltyNs: number;
  private readonly latestSample: TimeCell | null;

  /** `initialRttNs`: the estimate before the first sample; the service balancer passes what its other endpoints
   *  currently show, so a new endpoint looks average (see ServiceBalancer). */
  constructor(address: string, options: LoadOptions = DEFAULT_LOAD_OPTIONS, initialRttNs = options.defaultRttNs) {
    this.address = address;
    this.inFlight = 0;
    this.started = 0;
    this.consecutiveFailures = 0;
    this.failureListener = null;
    this.estimate = new Float64Array(2);
    this.clock = options.now;
    this.decayNs = options.decayNs;
    this.penaltyNs = options.failurePenaltyNs;
    this.latestSample = options.latestSample;
    this.estimate[EWMA] = initialRttNs;
    this.estimate[STAMP] = options.now();
    this.advance(this.estimate[STAMP]);
  }

  /** The latency estimate as of the last sample, in ns. */
  get ewmaNs(): number {
    return this.estimate[EWMA];
  }

  /** When the last sample was recorded (monotonic ns). */
  get stampNs(): number {
    return this.estimate[STAMP];
  }

  onStart(): void {
    this.inFlight++;
    this.started++;
  }

  /** The request completed (whatever its gRPC status: the endpoint answered) after `latencyNs`. Pass `nowNs`
   *  when the caller has just read the clock anyway. */
  onFinish(latencyNs: number, nowNs: number = this.clock()): void {
    this.inFlight--;
    this.consecutiveFailures = 0;
    this.observe(latencyNs, nowNs);
  }

  /** The endpoint failed the request (connect failure, refused, reset before a response): a penalty sample. */
  onFailure(nowNs: number = this.clock()): void {
    this.inFlight--;
    this.consecutiveFailures++;
    this.observe(this.penaltyNs, nowNs);
    this.failureListener?.(this);
  }

  /** The request ended without telling anything about the endpoint (the client cancelled): no sample. */
  onCancel(): void {
    this.inFlight--;
  }

  /** The latency estimate at `nowNs`, faded toward zero since the last sample. */
  latencyAt(nowNs: number): number {
    const elapsed = nowNs - this.estimate[STAMP];
    return this.estimate[EWMA] * (elapsed > 0 ? Math.exp(-elapsed / this.decayNs) : 1);
  }

  /** What p2c-ewma compares: expected latency × the work ahead of a new request. */
  costAt(nowNs: number): number {
    return this.latencyAt(nowNs) * (this.inFlight + 1);
  }

  /**
   * costAt(now) < other.costAt(now) with now = time[0], for pick(). Written out in one body and taking the time
   * as a cell: if V8 does not inline this into pick(), still no double crosses a call boundary (it would be boxed).
   */
  costsLessThan(other: EndpointLoad, time: TimeCell): boolean {
    const now = time[0];
    const mine = this.estimate;
    const theirs = other.estimate;
    const elapsed = now - mine[STAMP];
    const otherElapsed = now - theirs[STAMP];
    // Each ternary yields the decay factor, not the latency: a ternary mixing a computed double with a loaded value
    // made TurboFan box the double (measured: one heap number per pick).
    const latency = mine[EWMA] * (elapsed > 0 ? Math.exp(-elapsed / this.decayNs) : 1);
    const otherLatency = theirs[EWMA] * (otherElapsed > 0 ? Math.exp(-otherElapsed / other.decayNs) : 1);
    return latency * (this.inFlight + 1) < otherLatency * (other.inFlight + 1);
  }

  private observe(sampleNs: number, nowNs: number): void {
    const estimate = this.estimate;
    if (sampleNs > estimate[EWMA]) {
      estimate[EWMA] = sampleNs;
    } else {
      const elapsed = nowNs - estimate[STAMP];
      // Every sample moves the estimate by at least MIN_SAMPLE_WEIGHT: with time-only weights, samples that arrive
      // close together barely count, so one early peak (a cold backend's first answer) would steer traffic away
      // for about τ however many fast answers followed.
      const keep = Math.min(elapsed > 0 ? Math.exp(-elapsed / this.decayNs) : 1, 1 - MIN_SAMPLE_WEIGHT);
      estimate[EWMA] = estimate[EWMA] * keep + sampleNs * (1 - keep);
    }
    if (nowNs > estimate[STAMP]) estimate[STAMP] = nowNs;
    this.advance(nowNs);
  }

  private advance(nowNs: number): void {
    const latest = this.latestSample;
    if (latest !== null && nowNs > latest[0]) latest[0] = nowNs;
  }
}
