// A service's endpoints counted by state, as meshlite_endpoints{state} reports them; the registry keeps them as it goes.

import { type EndpointSpec, isActive } from './endpoint.ts';

/** Active (isActive), terminating but serving, or neither (see docs/architecture.md, Balancing). */
export type EndpointState = 'ready' | 'terminating' | 'not_ready';

export type EndpointCounts = Record<EndpointState, number>;

export function endpointState(endpoint: EndpointSpec): EndpointState {
  if (isActive(endpoint)) return 'ready';
  return endpoint.serving && endpoint.terminating ? 'terminating' : 'not_ready';
}

export function countEndpoints(endpoints: Iterable<EndpointSpec>): EndpointCounts {
  const counts: EndpointCounts = { ready: 0, terminating: 0, not_ready: 0 };
  for (const endpoint of endpoints) counts[endpointState(endpoint)]++;
  return counts;
}
