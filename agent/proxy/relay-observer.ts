// What the relay tells about requests and upstream connections: the seam to metrics and logs (RelayTelemetry).

import type { UpstreamConnection } from '../upstream/upstream-connection.ts';
import type { UpstreamPool } from '../upstream/upstream-pool.ts';
import type { ErrorCode } from '../vocabulary/errors.ts';
import type { Exchange } from './exchange.ts';

export interface RelayObserver {
  /** Once per request, when its outcome is known. `errorCode` is set when the agent made the response. */
  onExchangeFinished(exchange: Exchange, grpcStatus: number, errorCode: ErrorCode | null, message: string): void;
  /** The endpoint's response headers arrived: the request's time to first response byte, streaming or not. */
  onResponseStarted(exchange: Exchange): void;
  /** A request answered by the agent before it was routed (unknown target, invalid grpc-timeout). */
  onRequestRejected(grpcStatus: number, errorCode: ErrorCode, message: string): void;
  onUpstreamConnectionState(pool: UpstreamPool<Exchange>, connection: UpstreamConnection<Exchange>, previous: string | null): void;
  /** A request goes to another endpoint, unseen by its client: its connect failed, or the endpoint refused the stream. */
  onTransparentRetry(exchange: Exchange, reason: TransparentRetryReason): void;
}

export type TransparentRetryReason = 'connect_failed' | 'refused_stream';
