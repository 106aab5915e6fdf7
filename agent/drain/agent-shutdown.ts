// The agent's shutdown and upgrade sequence: not ready → stop accepting → every client connection told to finish
// (GOAWAY, PING, final GOAWAY) → in-flight streams run up to the drain deadline → what is left is closed → the rest of
// the agent stops → the process may exit.

import type { Logger } from '../telemetry/logger.ts';
import type { Clock } from '../vocabulary/clock.ts';
import type { ErrorCode } from '../vocabulary/errors.ts';
import { Drain, type DrainState, type DrainTarget } from './drain.ts';

/** What the shutdown needs of the proxy listener (ProxyListener). */
export interface DrainableListener {
  /** Closes every listening socket; resolves once they are closed. */
  stopAccepting(now: number): Promise<void>;
  /** Graceful GOAWAY to every client connection; they close once their streams finish. */
  finishConnections(): void;
  /** Accepted sockets still open, HTTP/2 or passed through. */
  readonly openConnections: number;
  /** Abrupt end of every client connection. */
  destroyAll(): void;
}

/**
 * How long stopping the rest may take once the connections are gone. Past it the agent stops anyway: a part that
 * cannot stop (a request to an API server that never answers, say) must not keep a terminated agent running until the
 * kubelet's SIGKILL, nor hold up the upgrade that waits for it.
 */
export const STOP_REST_TIMEOUT_MS = 5_000;

export interface AgentShutdownOptions {
  listener: DrainableListener;
  /** Readiness answers "draining" from now on, so that nothing new is sent this way. */
  markNotReady(): void;
  /** Everything else, once the client connections are gone: interception (rules stay), discovery, pools, admin. */
  stopRest(): Promise<void>;
  clock: Clock;
  drainTimeoutMs: number;
  logger: Logger;
  countError(code: ErrorCode): void;
}

export class AgentShutdown {
  readonly drain: Drain;
  private readonly options: AgentShutdownOptions;
  private finished: Promise<DrainState> | null = null;

  constructor(options: AgentShutdownOptions) {
    this.options = options;
    const { listener, clock } = options;
    const target: DrainTarget = {
      stopAccepting: () => {
        options.markNotReady();
        return listener.stopAccepting(clock.now());
      },
      finishConnections: () => listener.finishConnections(),
      openCount: () => listener.openConnections,
      closeRemaining: () => listener.destroyAll(),
    };
    this.drain = new Drain(target, { clock, deadlineMs: options.drainTimeoutMs, observer: { onDrainStateChange: (_, next) => this.log(next) } });
  }

  /** The listener closed a connection: the drain may be over. */
  connectionClosed(): void {
    this.drain.check();
  }

  /** Runs the whole sequence once; later calls return the same promise. */
  run(signal: string): Promise<DrainState> {
    if (this.finished !== null) return this.finished;
    this.finished = this.drain.start(signal).then(async (state) => {
      const { clock, logger } = this.options;
      let timer: unknown;
      const late = new Promise<'late'>((resolve) => {
        timer = clock.setTimeout(() => resolve('late'), STOP_REST_TIMEOUT_MS);
      });
      const stopped = await Promise.race([this.options.stopRest().then(() => 'stopped' as const), late]);
      clock.clearTimeout(timer);
      if (stopped === 'late') {
        this.options.countError('ML_STOP_TIMEOUT');
        logger.warn({ code: 'ML_STOP_TIMEOUT', timeoutMs: STOP_REST_TIMEOUT_MS }, 'stopping the rest of the agent took too long; stopping anyway');
      }
      logger.info('meshlite stopped');
      return state;
    });
    return this.finished;
  }

  /** A second signal: stop waiting for in-flight streams. */
  force(signal: string): void {
    void this.drain.force(signal);
  }

  private log(next: DrainState): void {
    const { logger, drainTimeoutMs } = this.options;
    if (next.state === 'stopping') logger.info({ signal: next.reason, timeoutMs: drainTimeoutMs }, 'draining');
    if (next.state === 'drained' && next.outcome === 'deadline') {
      this.options.countError('ML_DRAIN_TIMEOUT');
      logger.warn({ code: 'ML_DRAIN_TIMEOUT', open: next.left }, 'drain timeout: closing the remaining connections');
    }
  }
}
