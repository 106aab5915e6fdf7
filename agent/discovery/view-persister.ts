// Writes discovery's synced view to the state file: after a change, at most once per interval, one write at a time.

import type { Logger } from '../telemetry/logger.ts';
import type { Clock } from '../vocabulary/clock.ts';
import { type ErrorCode, MeshliteError } from '../vocabulary/errors.ts';
import type { PersistedView } from './persisted-view.ts';

/**
 * `idle`: the file holds the current view (or the last write failed and a change will try again); `waiting`: a
 * write is due when the timer fires; `writing`: a write is under way, `again` when the view changed meanwhile;
 * `stopped`: nothing more is written.
 */
export type PersisterState = { state: 'idle' } | { state: 'waiting' } | { state: 'writing'; again: boolean } | { state: 'stopped' };

type StateName = PersisterState['state'];

const LEGAL: Record<StateName, readonly StateName[]> = {
  idle: ['waiting', 'stopped'],
  waiting: ['writing', 'stopped'],
  writing: ['writing', 'idle', 'waiting', 'stopped'],
  stopped: [],
};

export interface ViewPersisterOptions {
  /** Writes atomically; throws a MeshliteError whose code says why it failed. */
  write: (view: PersistedView) => Promise<number>;
  /** The current view; called when a write starts, so one write carries every change before it. */
  snapshot: () => PersistedView;
  timers: Clock;
  logger: Logger;
  countError: (code: ErrorCode) => void;
  /** Time from a change to its write, and the least time between two writes. */
  intervalMs: number;
  /** After a failed write, the next attempt (a change brings it no earlier: the interval holds). */
  retryMs: number;
}

export class ViewPersister {
  state: PersisterState = { state: 'idle' };
  private readonly options: ViewPersisterOptions;
  private readonly log: Logger;
  private timer: unknown = null;
  private writes = 0;

  constructor(options: ViewPersisterOptions) {
    this.options = options;
    this.log = options.logger.child({ component: 'state-file' });
  }

  /** The view changed: it is written `intervalMs` from now, or after the write under way and the interval. */
  changed(): void {
    if (this.state.state === 'idle') this.schedule(this.options.intervalMs);
    else if (this.state.state === 'writing' && !this.state.again) this.transition({ state: 'writing', again: true });
  }

  /** Clears the timer; a write under way finishes, and nothing follows it. */
  stop(): void {
    if (this.state.state === 'stopped') return;
    if (this.timer !== null) this.options.timers.clearTimeout(this.timer);
    this.timer = null;
    this.transition({ state: 'stopped' });
  }

  private schedule(ms: number): void {
    this.transition({ state: 'waiting' });
    this.timer = this.options.timers.setTimeout(() => {
      this.timer = null;
      void this.write();
    }, ms);
  }

  private async write(): Promise<void> {
    if (this.state.state !== 'waiting') return;
    this.transition({ state: 'writing', again: false });
    const view = this.options.snapshot();
    let failed: { code: ErrorCode; reason: string } | null = null;
    try {
      const bytes = await this.options.write(view);
      this.writes++;
      const fields = { bytes, services: view.services.length, pods: view.pods.length };
      // The first write says that persisting works; the later ones would only repeat it.
      if (this.writes === 1) this.log.info(fields, 'discovery view saved to the state file');
      else this.log.debug(fields, 'discovery view saved to the state file');
    } catch (error) {
      const code = error instanceof MeshliteError ? error.code : 'ML_STATE_FILE_WRITE_FAILED';
      failed = { code, reason: error instanceof Error ? error.message : String(error) };
    }
    // stop() may have come while the file was written (TypeScript still sees the narrowed 'writing').
    const state: PersisterState = this.currentState();
    if (state.state !== 'writing') return;
    if (failed !== null) {
      this.options.countError(failed.code);
      this.log.error({ code: failed.code, err: failed.reason, retryInMs: this.options.retryMs }, 'the state file was not written; serving goes on');
      this.schedule(this.options.retryMs);
    } else if (state.again) {
      this.schedule(this.options.intervalMs);
    } else {
      this.transition({ state: 'idle' });
    }
  }

  private currentState(): PersisterState {
    return this.state;
  }

  private transition(next: PersisterState): void {
    const from = this.state.state;
    if (!LEGAL[from].includes(next.state)) throw new Error(`state file persister: illegal transition ${from} → ${next.state}`);
    this.state = next;
  }
}
