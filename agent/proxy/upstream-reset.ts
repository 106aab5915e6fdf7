// What an upstream stream's reset means for its exchange: a refusal that may be retried, the end of a response, a
// lost connection, or a reset to pass on as a gRPC status. Pure: the relay acts on the verdict.

import { ErrorCode, errorCodeName } from '../http2/constants.ts';
import { GrpcStatus, type ErrorCode as ErrorCodeName } from '../vocabulary/errors.ts';
import type { Exchange, ExchangeUpstream } from './exchange.ts';
import { grpcStatusForReset } from './grpc-status.ts';

/** `chargeEndpoint`: the endpoint caused it, so the balancer counts a failure. */
export type ResetVerdict =
  /** The outcome was known already; a RST_STREAM(NO_ERROR) is passed to the client behind the queued data. */
  | { kind: 'after-finish'; passReset: boolean }
  /** REFUSED_STREAM, or a stream above the endpoint's GOAWAY: never processed, so it may go elsewhere. The endpoint
   *  is charged for a refusal, not for closing its connection (a graceful GOAWAY is no failure). */
  | { kind: 'refused'; chargeEndpoint: boolean; message: string }
  /** The response ended with RST_STREAM(NO_ERROR) after its DATA (Node servers do this): the client gets every
   *  byte, then the same reset, never ahead of the data. */
  | { kind: 'ended-by-reset'; chargeEndpoint: boolean; status: number; message: string }
  /** The connection was lost (or broke HTTP/2): an agent-made error. */
  | { kind: 'fail'; chargeEndpoint: true; code: ErrorCodeName; message: string }
  /** The endpoint reset the stream: the client gets the matching gRPC status. */
  | { kind: 'relay-status'; chargeEndpoint: false; status: number; message: string };

export function judgeUpstreamReset(exchange: Exchange, connection: ExchangeUpstream, code: number): ResetVerdict {
  const address = exchange.pool?.address;
  if (exchange.phase === 'finished') return { kind: 'after-finish', passReset: code === ErrorCode.NO_ERROR };
  if (code === ErrorCode.REFUSED_STREAM) {
    if (connection.goingAwayByPeer) return { kind: 'refused', chargeEndpoint: false, message: `upstream ${address} closed its connection (GOAWAY) before the stream` };
    return { kind: 'refused', chargeEndpoint: true, message: `upstream ${address} refused the stream (${errorCodeName(code)})` };
  }
  const state = connection.lifecycle;
  const lost = state.state === 'closed';
  if (code === ErrorCode.NO_ERROR && exchange.responseStarted) {
    return { kind: 'ended-by-reset', chargeEndpoint: lost, status: GrpcStatus.INTERNAL, message: 'response ended by RST_STREAM(NO_ERROR) without trailers' };
  }
  if (state.state === 'closed') {
    // We closed it for breaking HTTP/2 (e.g. it answered HTTP/1.1); otherwise it went away under us.
    const error = state.error;
    if (error !== null && !error.byPeer) return { kind: 'fail', chargeEndpoint: true, code: 'ML_UPSTREAM_PROTOCOL', message: `endpoint ${address} broke HTTP/2: ${error.message}` };
    return { kind: 'fail', chargeEndpoint: true, code: 'ML_UPSTREAM_CONNECTION_LOST', message: `connection to ${address} lost` };
  }
  return { kind: 'relay-status', chargeEndpoint: false, status: grpcStatusForReset(code), message: `upstream ${address} reset the stream (${errorCodeName(code)})` };
}
