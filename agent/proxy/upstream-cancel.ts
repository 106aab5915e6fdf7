// Cancelling the upstream side of an exchange (client cancel, deadline): RST_STREAM(CANCEL) within the connection's
// reset budget, so that a mass cancellation does not trip the endpoint's rapid-reset protection.

import { ErrorCode } from '../http2/constants.ts';
import type { Exchange } from './exchange.ts';

/** Stops the exchange's upstream side: a queued wait is withdrawn, an open stream reset (or, past the reset budget,
 *  left to finish with its response discarded). */
export function cancelUpstream(exchange: Exchange, now: number): void {
  if (exchange.phase === 'waiting') {
    exchange.pool?.cancelWait(exchange);
    return;
  }
  const connection = exchange.upstream;
  const stream = exchange.upstreamStream;
  if (connection === null || stream === null) return;
  const owner = connection.context;
  // Past the reset budget the stream is left to finish on the endpoint: once detached below it has no exchange, so
  // its response is read and discarded.
  if (owner === null || owner.resetBudget.take(now)) connection.resetStream(stream, ErrorCode.CANCEL);
  detachUpstream(exchange);
}

/** The exchange lets go of its upstream stream, whose later events then find no exchange. */
export function detachUpstream(exchange: Exchange): void {
  if (exchange.upstreamStream !== null && exchange.upstreamStream.context === exchange) exchange.upstreamStream.context = null;
  exchange.upstream = null;
  exchange.upstreamStream = null;
}
