// Responses the agent makes itself: a gRPC status as Trailers-Only when nothing was sent to the client yet, else as
// trailers behind what was relayed.

import type { Stream } from '../http2/stream.ts';
import type { DownstreamHttp2, Exchange } from './exchange.ts';
import { statusTrailers, trailersOnly } from './grpc-status.ts';

/** Ends the client's stream of `exchange` with `status`. */
export function replyWithStatus(exchange: Exchange, status: number, message: string): void {
  const connection = exchange.downstream;
  const stream = exchange.downstreamStream;
  if (exchange.responseStarted) connection.sendTrailers(stream, statusTrailers(status, message));
  else connection.sendHeaders(stream, trailersOnly(status, message), true);
  exchange.responseStarted = true;
}

/** Answers a request that never became an exchange (unknown target, invalid grpc-timeout). */
export function refuseRequest(connection: DownstreamHttp2, stream: Stream<Exchange>, status: number, message: string): void {
  stream.context = null;
  connection.sendHeaders(stream, trailersOnly(status, message), true);
}
