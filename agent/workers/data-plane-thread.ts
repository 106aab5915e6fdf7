// The main thread's handle on one data-plane worker thread: its lifecycle as one state value, its messages.

import { Worker } from 'node:worker_threads';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { Config } from '../config/agent-config.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { HostPort } from '../vocabulary/host-port.ts';
import type { ThreadView } from './thread-views.ts';
import type { DataPlaneWorkerData, FromWorker, ToWorker } from './worker-messages.ts';

/**
 * starting: the thread loads its modules and follows the registry; it does not listen yet.
 * listening: it serves the proxy port beside the others.
 * draining: the agent drains; `open` is its client connections still open as it last said (null: not said yet).
 * stopped: it ended because the agent told it to.
 * failed: it threw, could not listen, or ended unasked; the agent stops (see WorkerFleet).
 */
export type DataPlaneThreadState =
  | { state: 'starting' }
  | { state: 'listening'; addresses: readonly string[] }
  | { state: 'draining'; open: number | null }
  | { state: 'stopped' }
  | { state: 'failed'; reason: string };

const legal: Record<DataPlaneThreadState['state'], ReadonlyArray<DataPlaneThreadState['state']>> = {
  starting: ['listening', 'draining', 'failed', 'stopped'],
  listening: ['draining', 'failed', 'stopped'],
  draining: ['draining', 'stopped', 'failed'],
  stopped: [],
  failed: [],
};

export type ThreadMetrics = { metrics: Array<MetricObjectWithValues<MetricValue<string>>>; accepted: number };

export interface DataPlaneThreadEvents {
  onStateChange(thread: DataPlaneThread, previous: DataPlaneThreadState, next: DataPlaneThreadState): void;
  /** A log line of the thread at info and above (JSON), for the recent events. */
  onLogLine(line: string): void;
}

export class DataPlaneThread {
  readonly id: number;
  state: DataPlaneThreadState = { state: 'starting' };
  /** What the thread last said of its balancers and counts; null until it first did. */
  view: ThreadView | null = null;
  private readonly worker: Worker;
  private readonly events: DataPlaneThreadEvents;
  private readonly log: Logger;
  private readonly scrapes = new Map<number, { resolve: (reply: ThreadMetrics) => void; reject: (error: Error) => void }>();
  private nextScrape = 0;
  private listened: { resolve: () => void; reject: (error: Error) => void } | null = null;
  private readonly exited: Promise<void>;
  private acceptingStopped: (() => void) | null = null;
  /** Resolves once the thread's listening sockets are closed, or the thread is gone. */
  private stoppedAccepting: Promise<void> | null = null;

  /** `entry`: the thread's module (agent/data-plane-worker.ts; a scripted one in tests). */
  constructor(id: number, config: Config, logger: Logger, events: DataPlaneThreadEvents, entry: URL) {
    this.id = id;
    this.events = events;
    this.log = logger.child({ component: 'workers', worker: id });
    const data: DataPlaneWorkerData = { config, id };
    this.worker = new Worker(entry, { workerData: data });
    this.worker.on('message', (message: FromWorker) => this.received(message));
    this.worker.on('error', (error) => this.fail(`it threw: ${error.message}`));
    this.exited = new Promise((resolve) => {
      this.worker.once('exit', (code) => {
        if (this.state.state !== 'stopped') this.fail(`it exited with code ${code} unasked`);
        resolve();
      });
    });
  }

  post(message: ToWorker): void {
    if (this.state.state === 'failed' || this.state.state === 'stopped') return;
    this.worker.postMessage(message);
  }

  /** Binds the proxy port in the thread; rejects when it cannot (or the thread fails first). */
  listen(addresses: HostPort[]): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.state.state === 'failed') {
        reject(new Error(this.state.reason));
        return;
      }
      this.listened = { resolve, reject };
      this.post({ type: 'listen', addresses });
    });
  }

  /** The thread's metrics as JSON and its accepted connections; rejects after `timeoutMs` or if the thread is gone. */
  scrape(timeoutMs: number): Promise<ThreadMetrics> {
    if (this.state.state === 'failed' || this.state.state === 'stopped') return Promise.reject(new Error(`worker ${this.id} is ${this.state.state}`));
    const id = this.nextScrape++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.scrapes.delete(id);
        reject(new Error(`worker ${this.id} sent no metrics within ${timeoutMs} ms`));
      }, timeoutMs);
      this.scrapes.set(id, {
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.post({ type: 'scrape', id });
    });
  }

  /** Client connections still open, as far as the drain must count them: unknown counts as open. */
  get openConnections(): number {
    if (this.state.state !== 'draining') return 0;
    return this.state.open ?? 1;
  }

  /** Draining from now on: the thread closes its listening sockets; resolves once they are closed (or it is gone). */
  stopAccepting(): Promise<void> {
    if (this.stoppedAccepting !== null) return this.stoppedAccepting;
    this.stoppedAccepting = new Promise((resolve) => {
      this.acceptingStopped = resolve;
    });
    if (this.state.state === 'starting' || this.state.state === 'listening') {
      this.transition({ state: 'draining', open: null });
      this.post({ type: 'stop-accepting' });
    } else if (this.state.state !== 'draining') {
      this.acceptingStopped?.();
    }
    return this.stoppedAccepting;
  }

  /** Tells the thread to end and waits until it has. */
  async stop(): Promise<void> {
    if (this.state.state !== 'failed' && this.state.state !== 'stopped') {
      this.worker.postMessage({ type: 'stop' } satisfies ToWorker);
      this.transition({ state: 'stopped' });
      this.acceptingStopped?.();
    }
    await this.exited;
  }

  /** Ends the thread without asking (the agent is exiting on a failure). */
  terminate(): Promise<number> {
    return this.worker.terminate();
  }

  private received(message: FromWorker): void {
    switch (message.type) {
      case 'listening':
        if (this.state.state === 'starting') this.transition({ state: 'listening', addresses: message.addresses });
        this.listened?.resolve();
        this.listened = null;
        return;
      case 'listen-failed':
        this.fail(message.message);
        return;
      case 'stopped-accepting':
        this.acceptingStopped?.();
        return;
      case 'metrics':
        this.scrapes.get(message.id)?.resolve({ metrics: message.metrics, accepted: message.accepted });
        this.scrapes.delete(message.id);
        return;
      case 'log-line':
        this.events.onLogLine(message.line);
        return;
      case 'view':
        this.view = message.view;
        return;
      case 'open-connections':
        if (this.state.state === 'draining') this.transition({ state: 'draining', open: message.open });
        return;
    }
  }

  private fail(reason: string): void {
    if (this.state.state === 'failed' || this.state.state === 'stopped') return;
    this.transition({ state: 'failed', reason });
    this.listened?.reject(new Error(reason));
    this.listened = null;
    // A thread that is gone accepts nothing: the drain need not wait for it, nor a scrape for its answer.
    this.acceptingStopped?.();
    for (const scrape of this.scrapes.values()) scrape.reject(new Error(`worker ${this.id} failed: ${reason}`));
    this.scrapes.clear();
  }

  private transition(next: DataPlaneThreadState): void {
    const previous = this.state;
    if (!legal[previous.state].includes(next.state)) throw new Error(`worker ${this.id}: illegal transition ${previous.state} → ${next.state}`);
    this.state = next;
    if (next.state !== 'draining') this.log.debug({ from: previous.state, to: next.state }, 'worker thread state');
    this.events.onStateChange(this, previous, next);
  }
}
