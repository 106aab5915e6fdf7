// Choosing the endpoint of one attempt: the route's picker, steering around endpoints in reconnect backoff.

import type { EndpointLoad } from '../balancer/endpoint-load.ts';
import type { EndpointPools } from '../upstream/endpoint-pools.ts';
import type { Route } from './route.ts';

/** Extra picks when the picked endpoint is backing off: a few suffice for p2c and round-robin alike. */
const BACKOFF_REPICKS = 3;

/** An endpoint for the next attempt, or null when the route has none. One in backoff is taken only when the
 *  re-picks found nothing better (it fails fast, and the request may be retried elsewhere). */
export function pickEndpoint<S>(route: Route, pools: EndpointPools<S>): EndpointLoad | null {
  let endpoint = route.picker.pick();
  for (let i = 0; endpoint !== null && i < BACKOFF_REPICKS && pools.inBackoff(endpoint.address); i++) {
    endpoint = route.picker.pick();
  }
  return endpoint;
}
