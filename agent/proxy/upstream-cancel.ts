// Cancelling the upstream side of an exchange (client cancel, deadline): RST_STREAM(CANCEL) within the connection's
// reset budget, or queued behind it, so that a mass cancellation neither trips the endpoint's rapid-reset protection
// nor leaves streams open on the endpoint.

import { ErrorCode } from '../http2/constants.ts';
import type { Exchange } from './exchange.ts';

/** Stops the exchange's upstream side: a queued wait is withdrawn, an open stream reset now or, past the reset
 *  budget, as soon as the budget allows (its response read and discarded meanwhile). */
export function cancelUpstream(exchange: Exchange, now: number): void {
  if (exchange.phase === 'waiting') {
    exchange.pool?.cancelWait(exchange);
    return;
  }
  const connection = exchange.upstream;
  const stream = exchange.upstreamStream;
  if (connection === null || stream === null) return;
  const owner = connection.context;
  if (owner === null || owner.resetBudget.take(now)) connection.resetStream(stream, ErrorCode.CANCEL);
  else owner.resetBudget.defer(stream, owner);
  // Detached, the stream has no exchange: whatever the endpoint still sends on it is read and discarded.
  detachUpstream(exchange);
}

/** The exchange lets go of its upstream stream, whose later events then find no exchange. */
export function detachUpstream(exchange: Exchange): void {
  if (exchange.upstreamStream !== null && exchange.upstreamStream.context === exchange) exchange.upstreamStream.context = null;
  exchange.upstream = null;
  exchange.upstreamStream = null;
}
