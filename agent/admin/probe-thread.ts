// The main thread's side of the probe socket's thread (probe-worker.ts): starts it before the agent's modules load,
// then keeps it told, by a heartbeat, that the main thread turns and what /readyz should answer.

import { Worker } from 'node:worker_threads';
import type { Readiness } from './admin-server.ts';

export interface ProbeWorkerData {
  socketPath: string;
  /** /healthz fails once the main thread has sent nothing for this long. */
  stallLimitMs: number;
}

export type ProbeThreadMessage = { type: 'readiness'; answer: Readiness };
export type ProbeWorkerReport = { type: 'listening' } | { type: 'failed'; message: string };

export const HEARTBEAT_MS = 250;
/**
 * Far above any pause a healthy agent makes (module loading, a large relist's parse, a full GC), far below what
 * the DaemonSet's liveness probe tolerates (6 × 10 s): only a stuck event loop gets the agent restarted.
 */
export const STALL_LIMIT_MS = 20_000;

const STARTING: Readiness = { ready: false, reason: 'starting: the agent is loading', phase: 'discovery' };

export class ProbeThread {
  /** Resolves once the socket listens; rejects with the reason it cannot. */
  readonly listening: Promise<void>;
  private readonly worker: Worker;
  private readiness: () => Readiness = () => STARTING;
  private readonly heartbeat: NodeJS.Timeout;

  constructor(socketPath: string, options: { stallLimitMs?: number } = {}) {
    const data: ProbeWorkerData = { socketPath, stallLimitMs: options.stallLimitMs ?? STALL_LIMIT_MS };
    this.worker = new Worker(new URL('./probe-worker.ts', import.meta.url), { workerData: data });
    // The thread never keeps the process alive: the agent exits when its work is done, probes or not.
    this.worker.unref();
    this.listening = new Promise((resolve, reject) => {
      this.worker.once('message', (report: ProbeWorkerReport) => (report.type === 'listening' ? resolve() : reject(new Error(report.message))));
      this.worker.once('error', reject);
      this.worker.once('exit', (code) => reject(new Error(`probe thread exited (${code})`)));
    });
    this.heartbeat = setInterval(() => this.send(), HEARTBEAT_MS);
    this.heartbeat.unref();
    this.send();
  }

  /** Where /readyz's answer comes from from now on; sent at once, with every heartbeat, and on refresh(). */
  follow(readiness: () => Readiness): void {
    this.readiness = readiness;
    this.send();
  }

  /** The answer changed: tell the thread now rather than at the next heartbeat. */
  refresh(): void {
    this.send();
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    await this.worker.terminate();
  }

  private send(): void {
    const message: ProbeThreadMessage = { type: 'readiness', answer: this.readiness() };
    this.worker.postMessage(message);
  }
}
