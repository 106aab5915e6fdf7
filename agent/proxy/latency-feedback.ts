// What the balancer learns from each attempt: its latency when it finished, a failure when the endpoint failed it,
// nothing when the client cancelled. Exactly one report per attempt (EndpointLoad's contract).

import type { Exchange } from './exchange.ts';

/** The attempt failed because of the endpoint (connect failure, refused or lost stream). */
export function reportFailure(exchange: Exchange): void {
  const endpoint = exchange.endpoint;
  if (endpoint === null) return;
  endpoint.onFailure();
  exchange.endpoint = null;
}

/** The client cancelled: says nothing about the endpoint's speed. */
export function reportCancel(exchange: Exchange): void {
  exchange.endpoint?.onCancel();
  exchange.endpoint = null;
}

/** The exchange finished on its endpoint at `now`. */
export function reportLatency(exchange: Exchange, now: number): void {
  const endpoint = exchange.endpoint;
  if (endpoint === null) return;
  // From the upstream stream's opening, not the request's arrival: waiting for a connection to be set up says
  // nothing about how fast the endpoint answers, and counting it would keep a peak-EWMA estimate high.
  const since = exchange.upstreamStartedAt > 0 ? exchange.upstreamStartedAt : exchange.startedAt;
  endpoint.onFinish((now - since) * 1e6);
  exchange.endpoint = null;
}
