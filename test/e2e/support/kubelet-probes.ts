// A container's probes as the kubelet runs them: the startup probe first (the others wait for its success), then
// readiness and liveness, each every periodSeconds after initialDelaySeconds, each attempt bounded by
// timeoutSeconds, thresholds counted over consecutive results. A failed startup or liveness probe is where the
// kubelet would restart the container: recorded here, for tests that say it must never happen.

export interface ProbeSpec {
  exec?: { command: string[] };
  initialDelaySeconds?: number;
  periodSeconds?: number;
  timeoutSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
}

export type ProbeKind = 'startup' | 'readiness' | 'liveness';

export interface ProbeResult {
  probe: ProbeKind;
  /** Wall clock (Date.now()) when the attempt ended. */
  atMs: number;
  ok: boolean;
}

/** Runs one exec probe attempt; true when the command exited 0 within the time. */
export type ProbeRunner = (command: readonly string[], timeoutMs: number) => Promise<boolean>;

export interface ProbedContainer {
  name: string;
  startupProbe?: ProbeSpec;
  readinessProbe?: ProbeSpec;
  livenessProbe?: ProbeSpec;
}

interface ProbeLoop {
  kind: ProbeKind;
  spec: ProbeSpec;
  successes: number;
  failures: number;
}

export class ContainerProbes {
  readonly results: ProbeResult[] = [];
  /** Where the kubelet would have restarted the container (a startup or liveness probe over its threshold). */
  readonly restarts: Array<{ probe: ProbeKind; atMs: number }> = [];
  /** When the startup probe succeeded (or the container started, without one); null before. */
  startedAtMs: number | null = null;
  /** When the container last became ready; null while it is not. */
  readySinceMs: number | null = null;
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;
  private readonly container: ProbedContainer;
  private readonly runner: ProbeRunner;

  constructor(container: ProbedContainer, runner: ProbeRunner) {
    this.container = container;
    this.runner = runner;
  }

  get ready(): boolean {
    return this.readySinceMs !== null;
  }

  start(): void {
    if (this.container.startupProbe !== undefined) this.loop({ kind: 'startup', spec: this.container.startupProbe, successes: 0, failures: 0 });
    else this.started();
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private started(): void {
    this.startedAtMs = Date.now();
    // Without a readiness probe a started container is ready.
    if (this.container.readinessProbe === undefined) this.readySinceMs = Date.now();
    else this.loop({ kind: 'readiness', spec: this.container.readinessProbe, successes: 0, failures: 0 });
    if (this.container.livenessProbe !== undefined) this.loop({ kind: 'liveness', spec: this.container.livenessProbe, successes: 0, failures: 0 });
  }

  private loop(state: ProbeLoop): void {
    const command = state.spec.exec?.command;
    if (command === undefined) throw new Error(`${this.container.name}: only exec probes are run by this kubelet`);
    const periodMs = (state.spec.periodSeconds ?? 10) * 1000;
    const timeoutMs = (state.spec.timeoutSeconds ?? 1) * 1000;
    const attempt = async (): Promise<void> => {
      if (this.stopped) return;
      const ok = await this.runner(command, timeoutMs).catch(() => false);
      if (this.stopped) return;
      this.results.push({ probe: state.kind, atMs: Date.now(), ok });
      if (ok) {
        state.failures = 0;
        state.successes++;
      } else {
        state.successes = 0;
        state.failures++;
      }
      if (this.settle(state)) this.schedule(attempt, periodMs);
    };
    this.schedule(attempt, (state.spec.initialDelaySeconds ?? 0) * 1000);
  }

  /** Applies the thresholds; false when this probe is done (a startup probe that succeeded). */
  private settle(state: ProbeLoop): boolean {
    const successThreshold = state.spec.successThreshold ?? 1;
    const failureThreshold = state.spec.failureThreshold ?? 3;
    if (state.kind === 'startup') {
      if (state.successes >= successThreshold) {
        this.started();
        return false;
      }
      if (state.failures >= failureThreshold) {
        this.restarts.push({ probe: 'startup', atMs: Date.now() });
        state.failures = 0;
      }
      return true;
    }
    if (state.kind === 'readiness') {
      if (state.successes >= successThreshold && this.readySinceMs === null) this.readySinceMs = Date.now();
      if (state.failures >= failureThreshold) this.readySinceMs = null;
      return true;
    }
    if (state.failures >= failureThreshold) {
      this.restarts.push({ probe: 'liveness', atMs: Date.now() });
      state.failures = 0;
    }
    return true;
  }

  private schedule(attempt: () => Promise<void>, delayMs: number): void {
    if (this.stopped) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void attempt();
    }, delayMs);
    this.timers.add(timer);
  }
}
