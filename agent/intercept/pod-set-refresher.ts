// Fail open's heartbeat: every half second (fail-mode.ts), one `ipset restore` that gives each pods-set member a fresh timeout.

import type { Logger } from '../telemetry/logger.ts';
import type { Clock } from '../vocabulary/clock.ts';
import type { CommandRunner } from './command-runner.ts';
import type { InterceptObserver } from './intercept-metrics.ts';
import { runChecked } from './netfilter-command.ts';
import type { Members } from './member-set.ts';

export interface PodSetRefresherOptions {
  runner: CommandRunner;
  timers: Clock;
  log: Logger;
  metrics?: InterceptObserver;
  intervalMs: number;
  timeoutS: number;
  /** Pods set name → the members to refresh, asked for at each refresh (what is in the kernel and still wanted). */
  members: () => ReadonlyMap<string, Members>;
  /** Runs the refresh between the manager's passes, never during one (a pass may delete or swap a member). */
  exclusive: <T>(work: () => Promise<T>) => Promise<T>;
}

/** `add NAME MEMBER timeout N -exist` for every member (`-exist` refreshes one that is there); null when none. */
export function refreshScript(members: ReadonlyMap<string, Members>, timeoutS: number): string | null {
  const lines: string[] = [];
  for (const [name, set] of members) for (const member of set) lines.push(`add ${name} ${member} timeout ${timeoutS} -exist`);
  return lines.length === 0 ? null : `${lines.join('\n')}\n`;
}

/** The pods sets' members that the last successful pass left in the kernel and that are still desired. */
export function membersToRefresh(
  podSetNames: readonly string[],
  applied: ReadonlyMap<string, Members> | null,
  desired: ReadonlyMap<string, Members>,
): Map<string, Members> {
  const members = new Map<string, Members>();
  for (const name of podSetNames) {
    const wanted = desired.get(name);
    members.set(name, new Set([...(applied?.get(name) ?? [])].filter((member) => wanted?.has(member) === true)));
  }
  return members;
}

/**
 * Ticks at a fixed rate from start() to stop(); a tick while the previous refresh still runs is skipped. A failure
 * is counted each time and logged (ML_INTERCEPT_REFRESH_FAILED) at the first of a run of failures; the next tick is
 * the retry, and the first success after failures is logged with their count.
 */
export class PodSetRefresher {
  private readonly options: PodSetRefresherOptions;
  private timer: unknown = null;
  private running = false;
  private stopped = false;
  private failures = 0;

  constructor(options: PodSetRefresherOptions) {
    this.options = options;
  }

  get started(): boolean {
    return this.timer !== null;
  }

  start(): void {
    if (this.timer !== null || this.stopped) return;
    this.arm();
  }

  /** No more refreshes; one under way finishes. The members keep the timeouts they have and then expire. */
  stop(): void {
    this.stopped = true;
    if (this.timer !== null) this.options.timers.clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(): void {
    this.timer = this.options.timers.setTimeout(() => {
      this.arm();
      if (!this.running) void this.refresh();
    }, this.options.intervalMs);
  }

  private async refresh(): Promise<void> {
    const { runner, log, metrics, timeoutS } = this.options;
    this.running = true;
    try {
      await this.options.exclusive(async () => {
        if (this.stopped) return;
        const script = refreshScript(this.options.members(), timeoutS);
        if (script !== null) await runChecked(runner, 'ipset', ['restore'], script);
      });
      if (this.failures > 0) log.info({ failures: this.failures }, 'pod set timeouts refreshed again after failures');
      this.failures = 0;
    } catch (error) {
      this.failures++;
      metrics?.countError('ML_INTERCEPT_REFRESH_FAILED');
      if (this.failures === 1) log.warn({ code: 'ML_INTERCEPT_REFRESH_FAILED', err: error }, "refreshing the pod sets' timeouts failed; retrying every tick");
    } finally {
      this.running = false;
    }
  }
}
