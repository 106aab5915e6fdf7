// Turns relay events into metrics and log lines: counters per request, a log line per connection event or error
// code (requests themselves are logged only at debug level, so the request path does no I/O by default).

import { GrpcStatus, type ErrorCode } from '../vocabulary/errors.ts';
import type { Exchange } from './exchange.ts';
import type { RelayObserver, TransparentRetryReason } from './relay-observer.ts';
import type { UpstreamConnection } from '../upstream/upstream-connection.ts';
import type { UpstreamPool } from '../upstream/upstream-pool.ts';
import type { Logger } from '../telemetry/logger.ts';
import { type AgentMetrics, NO_ENDPOINT, UNKNOWN_SERVICE } from '../telemetry/metrics.ts';

export class RelayTelemetry implements RelayObserver {
  private readonly metrics: AgentMetrics;
  private readonly logger: Logger;
  private readonly now: () => number;

  constructor(metrics: AgentMetrics, logger: Logger, now: () => number) {
    this.metrics = metrics;
    this.logger = logger;
    this.now = now;
  }

  onExchangeFinished(exchange: Exchange, grpcStatus: number, errorCode: ErrorCode | null, message: string): void {
    const endpoint = exchange.pool?.address ?? NO_ENDPOINT;
    this.metrics.requestMetrics(exchange.route.key, endpoint).record(grpcStatus, (this.now() - exchange.startedAt) / 1000);
    if (errorCode !== null) this.countError(errorCode, grpcStatus, message, exchange.route.key);
  }

  onResponseStarted(exchange: Exchange): void {
    const endpoint = exchange.pool?.address;
    if (endpoint === undefined) return;
    this.metrics.requestMetrics(exchange.route.key, endpoint).recordResponseStart((this.now() - exchange.startedAt) / 1000);
  }

  onRequestRejected(grpcStatus: number, errorCode: ErrorCode, message: string): void {
    this.metrics.requestMetrics(UNKNOWN_SERVICE, NO_ENDPOINT).count(grpcStatus);
    this.countError(errorCode, grpcStatus, message, UNKNOWN_SERVICE);
  }

  onTransparentRetry(exchange: Exchange, reason: TransparentRetryReason): void {
    this.metrics.countTransparentRetry(exchange.route.key, reason);
  }

  onUpstreamConnectionState(pool: UpstreamPool, connection: UpstreamConnection, previous: string | null): void {
    const state = connection.state;
    this.metrics.upstreamConnectionMoved(pool.address, previous, state.state === 'closed' ? null : state.state);
    if (state.state === 'closed' && previous === 'connecting') {
      this.metrics.countError('ML_CONNECT_FAILED');
      // Every failure is counted; of a run of failures (an endpoint that stays down while requests wait for it, tried
      // every quarter second) the 1st, 2nd, 4th, 8th… are logged: a line per event, not per attempt.
      const failures = pool.connectFailures;
      if ((failures & (failures - 1)) === 0) this.logger.warn({ code: 'ML_CONNECT_FAILED', endpoint: pool.address, err: state.error, failures }, 'upstream connect failed');
    } else if (state.state === 'closed' && state.error !== null) {
      this.logger.info({ endpoint: pool.address, err: state.error }, 'upstream connection closed');
    }
  }

  private countError(code: ErrorCode, grpcStatus: number, message: string, service: string): void {
    this.metrics.countError(code);
    // Cancellations are the client's choice, not a fault: counted, logged only when debugging.
    if (grpcStatus === GrpcStatus.CANCELLED || !this.logger.isLevelEnabled('debug')) return;
    this.logger.debug({ code, service, grpcStatus }, message);
  }
}
