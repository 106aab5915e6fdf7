// Choosing the endpoint of one attempt: the route's picker, steering around endpoints in reconnect backoff and the one
// that declined an earlier attempt of the request.

import type { EndpointLoad } from '../balancer/endpoint-load.ts';
import type { EndpointPools } from '../upstream/endpoint-pools.ts';
import type { Route } from './route.ts';

/** Extra picks when the picked endpoint is backing off or declined this request before: a few suffice for p2c and
 *  round-robin alike. */
const REPICKS = 3;

/**
 * An endpoint for the next attempt, or null when the route has none. One in backoff, or one that declined an earlier
 * attempt of this request (`avoid`), is taken only when the re-picks found nothing better.
 */
export function pickEndpoint<S>(route: Route, pools: EndpointPools<S>, avoid: readonly string[] | null = null): EndpointLoad | null {
  let endpoint = route.picker.pick();
  for (let i = 0; endpoint !== null && i < REPICKS && (avoid?.includes(endpoint.address) === true || pools.inBackoff(endpoint.address)); i++) {
    endpoint = route.picker.pick();
  }
  return endpoint;
}
