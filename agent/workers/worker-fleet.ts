// The data-plane threads beside the main thread's (--workers N: the main thread is worker 0, N-1 worker threads):
// one discovery feeds them all, the drain drains them all, /metrics adds them all up.

import { AggregatorRegistry, Counter } from 'prom-client';
import type { MetricsSource } from '../admin/admin-server.ts';
import type { Config } from '../config/agent-config.ts';
import type { OptInIndex } from '../discovery/opt-in-index.ts';
import type { DrainableListener } from '../drain/agent-shutdown.ts';
import type { EndpointRegistry } from '../registry/endpoint-registry.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { AgentMetrics } from '../telemetry/metrics.ts';
import type { ErrorCode } from '../vocabulary/errors.ts';
import type { HostPort } from '../vocabulary/host-port.ts';
import { DataPlaneThread, type DataPlaneThreadState } from './data-plane-thread.ts';
import { mergeReadings, mergeServices } from './thread-views.ts';
import type { ToWorker } from './worker-messages.ts';
import type { ServiceBalancerView } from '../balancer/service-balancer.ts';
import type { ServiceReading } from '../telemetry/metrics.ts';

/** A scrape waits this long for every thread; past it /metrics fails rather than show totals that went down. */
export const SCRAPE_TIMEOUT_MS = 5_000;

export interface WorkerFleetOptions {
  /** Worker threads to start: --workers minus the main thread. */
  threads: number;
  /** The settings each thread's data plane uses (client limits already divided, workers/limit-share.ts). */
  config: Config;
  registry: EndpointRegistry;
  /** This node's opted-in pods: each thread checks connection sources against its copy. */
  optIn: Pick<OptInIndex, 'subscribe'>;
  /** The main thread's own proxy listener (worker 0). */
  mainListener: DrainableListener;
  mainMetrics: AgentMetrics;
  /** Connections the main thread's listener accepted. */
  mainAccepted(): number;
  logger: Logger;
  countError(code: ErrorCode): void;
  /** A thread failed: the agent must stop (it drains the others and exits 1). */
  onFailure(reason: string): void;
  /** A thread's count of open client connections changed during the drain. */
  onOpenChanged(): void;
  /** The threads' log lines at info and above: the dashboard's recent events (RecentLines.write). */
  recentLine?(line: string): void;
  /** The threads' module: agent/data-plane-worker.ts (wiring, as agent-run.ts is), or a scripted one in tests. */
  workerEntry: URL;
}

export class WorkerFleet implements DrainableListener {
  readonly threads: readonly DataPlaneThread[];
  private readonly options: WorkerFleetOptions;
  private readonly unsubscribe: Array<() => void> = [];
  private everyListenerClosed: Promise<void> = Promise.resolve();

  constructor(options: WorkerFleetOptions) {
    this.options = options;
    const log = options.logger.child({ component: 'workers' });
    const events = {
      onStateChange: (thread: DataPlaneThread, _previous: DataPlaneThreadState, next: DataPlaneThreadState) => {
        if (next.state === 'failed') {
          options.countError('ML_WORKER_EXITED');
          log.error({ code: 'ML_WORKER_EXITED', worker: thread.id, err: next.reason }, 'a worker thread failed: the agent stops');
          options.onFailure(`worker ${thread.id}: ${next.reason}`);
        } else if (next.state === 'draining') {
          options.onOpenChanged();
        }
      },
      onLogLine: (line: string) => options.recentLine?.(line),
    };
    this.threads = Array.from({ length: options.threads }, (_, i) => new DataPlaneThread(i + 1, options.config, options.logger, events, options.workerEntry));
    // The registry's current state arrives as resets with the first batch, whenever the threads are started.
    this.unsubscribe.push(options.registry.subscribeBatches((updates) => this.post({ type: 'registry', updates: [...updates] })));
    let pending: Extract<ToWorker, { type: 'opt-in' }>['changes'] = [];
    this.unsubscribe.push(
      options.optIn.subscribe((change) => {
        if (pending.length === 0) {
          queueMicrotask(() => {
            const changes = pending;
            pending = [];
            this.post({ type: 'opt-in', changes });
          });
        }
        pending.push({ type: change.type, ip: change.ip, pod: { namespace: change.pod.namespace, name: change.pod.name } });
      }),
    );
  }

  /** Every thread binds the proxy port at `addresses` (the ones the main thread bound, with its real port). */
  async listen(addresses: HostPort[]): Promise<void> {
    await Promise.all(this.threads.map((thread) => thread.listen(addresses)));
  }

  /** /metrics: every thread's series added up (prom-client's aggregation, `sum` for our counters and gauges), the
   *  process metrics of the main thread, and the connections each thread accepted. */
  get metrics(): MetricsSource {
    const { mainMetrics } = this.options;
    return {
      contentType: mainMetrics.registry.contentType,
      metrics: async () => {
        const replies = await Promise.all(this.threads.map((thread) => thread.scrape(SCRAPE_TIMEOUT_MS))).catch((error: Error) => {
          this.options.countError('ML_WORKER_SCRAPE_FAILED');
          this.options.logger.child({ component: 'workers' }).warn({ code: 'ML_WORKER_SCRAPE_FAILED', err: error }, 'a worker thread sent no metrics');
          throw error;
        });
        const merged = AggregatorRegistry.aggregate([await mainMetrics.registry.getMetricsAsJSON(), ...replies.map((reply) => reply.metrics)]);
        const accepted = new Counter({
          name: 'meshlite_worker_connections_accepted_total',
          help: 'Client connections each thread serving the proxy port accepted (worker 0 is the main thread); only with --workers above 1.',
          labelNames: ['worker'],
          registers: [merged],
        });
        accepted.inc({ worker: '0' }, this.options.mainAccepted());
        for (const [i, reply] of replies.entries()) accepted.inc({ worker: String(this.threads[i].id) }, reply.accepted);
        return merged.metrics();
      },
    };
  }

  stopAccepting(now: number): Promise<void> {
    this.everyListenerClosed = Promise.all(this.threads.map((thread) => thread.stopAccepting())).then(() => undefined);
    return this.options.mainListener.stopAccepting(now);
  }

  /**
   * GOAWAY goes out only once no thread of this agent accepts any more: a client told to reconnect must reach the
   * next agent (or fail open), never a thread of this one whose listening socket was a message away from closing,
   * where its connection could wait in an accept queue that is about to be reset.
   */
  finishConnections(): void {
    void this.everyListenerClosed.then(() => {
      this.options.mainListener.finishConnections();
      this.post({ type: 'finish-connections' });
    });
  }

  get openConnections(): number {
    return this.threads.reduce((sum, thread) => sum + thread.openConnections, this.options.mainListener.openConnections);
  }

  destroyAll(): void {
    this.options.mainListener.destroyAll();
    this.post({ type: 'destroy-all' });
  }

  /** After the drain: each thread closes its pools and ends. */
  async stop(): Promise<void> {
    for (const unsubscribe of this.unsubscribe) unsubscribe();
    await Promise.all(this.threads.map((thread) => thread.stop()));
  }

  /** The main thread's balancers with every thread's counts (workers/thread-views.ts): /debug/endpoints, the dashboard. */
  services(main: readonly ServiceBalancerView[]): ServiceBalancerView[] {
    return mergeServices(main, this.views().map((view) => view.services));
  }

  /** Request counts of every thread, as of each one's latest view. */
  readings(main: readonly ServiceReading[]): ServiceReading[] {
    return mergeReadings([main, ...this.views().map((view) => view.readings)]);
  }

  /** Whether some thread's pool of the endpoint is in reconnect backoff. */
  backingOff(address: string): boolean {
    return this.views().some((view) => view.backingOff.includes(address));
  }

  describe(): Array<{ worker: number; state: DataPlaneThreadState['state'] }> {
    return this.threads.map((thread) => ({ worker: thread.id, state: thread.state.state }));
  }

  private views() {
    return this.threads.flatMap((thread) => (thread.view === null || thread.state.state === 'failed' || thread.state.state === 'stopped' ? [] : [thread.view]));
  }

  private post(message: ToWorker): void {
    for (const thread of this.threads) thread.post(message);
  }
}
