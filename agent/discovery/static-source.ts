// Static discovery at run time: loads the file, watches it, and hands every good version on; a bad edit keeps the last.

import { watch as fsWatch } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { ErrorCode } from '../vocabulary/errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { StaticReloadResult } from '../telemetry/metrics.ts';
import { parseStaticFile, type StaticConfig, StaticFileError } from './static-file.ts';
import type { Clock } from '../vocabulary/clock.ts';

/** Enough of a file's identity to notice a change without reading it: a cheap stat per poll. */
export interface FileStamp {
  mtimeMs: number;
  size: number;
  ino: number;
}

/** The file system as the source needs it; injected so that tests can take the watcher away and see the poll work. */
export interface FileAccess {
  readFile(path: string): Promise<string>;
  /** null when the file does not exist (it may come back: editors delete and recreate). */
  stat(path: string): Promise<FileStamp | null>;
  /** Calls onEvent with the changed entry's name (null when the platform does not say). */
  watchDirectory(dir: string, onEvent: (fileName: string | null) => void, onError: (error: Error) => void): { close(): void };
}

export interface StaticSourceMetrics {
  countStaticReload(result: StaticReloadResult): void;
  countError(code: ErrorCode): void;
}

export interface StaticSourceOptions {
  path: string;
  files: FileAccess;
  timers: Clock;
  logger: Logger;
  metrics: StaticSourceMetrics;
  /** Every version of the file that parsed, the first one included; complete, never a delta. */
  onSnapshot: (config: StaticConfig) => void;
  /** The fallback poll: 500 ms keeps "an edit applies within 1 s" even where change events are lost. */
  pollIntervalMs?: number;
  /** Events come in bursts (truncate, write, close, rename); one read after the burst settles sees the whole edit. */
  settleMs?: number;
}

export type StaticSourceState =
  | { state: 'idle' }
  | { state: 'watching' }
  | { state: 'reloading'; again: boolean }
  | { state: 'stopped' };

export const nodeFileAccess: FileAccess = {
  readFile: (path) => readFile(path, 'utf8'),
  stat: async (path) => {
    try {
      const s = await stat(path);
      return { mtimeMs: s.mtimeMs, size: s.size, ino: s.ino };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  },
  watchDirectory: (dir, onEvent, onError) => {
    const watcher = fsWatch(dir, { persistent: true }, (_event, fileName) => onEvent(fileName));
    watcher.on('error', onError);
    return watcher;
  },
};

export class StaticSource {
  state: StaticSourceState = { state: 'idle' };
  private readonly options: StaticSourceOptions;
  private readonly log: Logger;
  private readonly fileName: string;
  private watcher: { close(): void } | null = null;
  private pollTimer: unknown = null;
  private settleTimer: unknown = null;
  private lastStamp: FileStamp | null = null;
  /** The text last handled, good or bad: the same bytes are not parsed (or complained about) twice. */
  private lastText: string | null = null;
  private lastReadError: string | null = null;

  constructor(options: StaticSourceOptions) {
    this.options = options;
    this.log = options.logger.child({ component: 'static-source' });
    this.fileName = basename(options.path);
  }

  /**
   * Reads and validates the file, delivers the first snapshot, then starts watching. Throws StaticFileError
   * (unreadable or malformed file): main prints the message and exits, as nothing is running yet.
   */
  async load(): Promise<StaticConfig> {
    if (this.state.state !== 'idle') throw new Error(`StaticSource.load() in state ${this.state.state}`);
    const { path, files } = this.options;
    let text: string;
    try {
      // Stamp before reading: an edit that lands between the two is seen by the first poll.
      this.lastStamp = await files.stat(path);
      text = await files.readFile(path);
    } catch (error) {
      throw new StaticFileError(`${path}: cannot read the static discovery file: ${(error as Error).message}`, { cause: error });
    }
    const config = parseStaticFile(text, path);
    if (this.state.state !== 'idle') return config; // stopped while loading
    this.lastText = text;
    this.options.onSnapshot(config);
    this.transition({ state: 'watching' });
    this.startWatcher();
    this.schedulePoll();
    this.log.info({ path, services: config.services.length, pods: config.pods.length }, 'static discovery file loaded');
    return config;
  }

  /** Closes the watcher and clears every timer: nothing of the source keeps the process alive afterwards. */
  stop(): void {
    if (this.state.state === 'stopped') return;
    this.transition({ state: 'stopped' });
    this.watcher?.close();
    this.watcher = null;
    if (this.pollTimer !== null) this.options.timers.clearTimeout(this.pollTimer);
    if (this.settleTimer !== null) this.options.timers.clearTimeout(this.settleTimer);
    this.pollTimer = null;
    this.settleTimer = null;
  }

  private transition(next: StaticSourceState): void {
    const from = this.state.state;
    const legal =
      (from === 'idle' && (next.state === 'watching' || next.state === 'stopped')) ||
      (from === 'watching' && (next.state === 'reloading' || next.state === 'stopped')) ||
      (from === 'reloading' && (next.state === 'watching' || next.state === 'reloading' || next.state === 'stopped'));
    if (!legal) throw new Error(`static source: illegal transition ${from} → ${next.state}`);
    this.state = next;
    this.log.debug({ from, to: next.state }, 'static source state');
  }

  private startWatcher(): void {
    const dir = dirname(this.options.path);
    try {
      // The directory, not the file: editors save by writing a new file and renaming it over the old one, and
      // a watch on the old file's inode would see nothing after the first save.
      this.watcher = this.options.files.watchDirectory(
        dir,
        (name) => {
          // Kubernetes mounts a ConfigMap through symlinks it swaps (`..data`), so those entries count too.
          if (name === null || name === this.fileName || name.startsWith('..')) this.changed();
        },
        (error) => {
          this.options.metrics.countError('ML_STATIC_FILE_WATCH_FAILED');
          this.log.warn({ code: 'ML_STATIC_FILE_WATCH_FAILED', err: error, dir }, 'watching the static file directory failed; polling only');
          this.watcher?.close();
          this.watcher = null;
        },
      );
    } catch (error) {
      this.options.metrics.countError('ML_STATIC_FILE_WATCH_FAILED');
      this.log.warn({ code: 'ML_STATIC_FILE_WATCH_FAILED', err: error, dir }, 'cannot watch the static file directory; polling only');
    }
  }

  private schedulePoll(): void {
    this.pollTimer = this.options.timers.setTimeout(() => {
      this.pollTimer = null;
      void this.poll();
    }, this.options.pollIntervalMs ?? 500);
  }

  private async poll(): Promise<void> {
    let stamp: FileStamp | null;
    try {
      stamp = await this.options.files.stat(this.options.path);
    } catch {
      stamp = null;
    }
    if (this.state.state === 'stopped') return;
    const last = this.lastStamp;
    if (stamp?.mtimeMs !== last?.mtimeMs || stamp?.size !== last?.size || stamp?.ino !== last?.ino) {
      this.lastStamp = stamp;
      this.changed();
    }
    this.schedulePoll();
  }

  /** A change was seen: reload once the burst settles; a change during a reload runs one more after it. */
  private changed(): void {
    if (this.state.state === 'reloading') {
      if (!this.state.again) this.transition({ state: 'reloading', again: true });
      return;
    }
    if (this.state.state !== 'watching' || this.settleTimer !== null) return;
    this.settleTimer = this.options.timers.setTimeout(() => {
      this.settleTimer = null;
      void this.reload();
    }, this.options.settleMs ?? 50);
  }

  private async reload(): Promise<void> {
    if (this.state.state !== 'watching') return;
    this.transition({ state: 'reloading', again: false });
    try {
      await this.readAndApply();
    } finally {
      // Re-read: stop() may have run while the file was read (TypeScript still sees the narrowed 'watching').
      const state = this.state as StaticSourceState;
      if (state.state === 'reloading') {
        const again = state.again;
        this.transition({ state: 'watching' });
        if (again) this.changed();
      }
    }
  }

  private async readAndApply(): Promise<void> {
    const { path } = this.options;
    let text: string;
    try {
      text = await this.options.files.readFile(path);
    } catch (error) {
      // Missing for a moment while an editor saves, or gone: complain once per cause, keep the last good state.
      const reason = `cannot read the static discovery file: ${(error as Error).message}`;
      if (this.state.state === 'reloading' && reason !== this.lastReadError) this.rejected(reason);
      this.lastReadError = reason;
      return;
    }
    this.lastReadError = null;
    if (this.state.state !== 'reloading' || text === this.lastText) return;
    this.lastText = text;
    let config: StaticConfig;
    try {
      config = parseStaticFile(text, path);
    } catch (error) {
      this.rejected((error as Error).message);
      return;
    }
    this.options.onSnapshot(config);
    this.options.metrics.countStaticReload('success');
    this.log.info({ path, services: config.services.length, pods: config.pods.length }, 'static discovery file reloaded');
  }

  private rejected(reason: string): void {
    this.options.metrics.countStaticReload('failure');
    this.options.metrics.countError('ML_STATIC_FILE_RELOAD_FAILED');
    this.log.error(
      { code: 'ML_STATIC_FILE_RELOAD_FAILED', path: this.options.path, err: reason },
      'static discovery file not applied; keeping the last good state',
    );
  }
}
