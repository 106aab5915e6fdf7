// The per-service endpoint series follow the registry: a service's endpoint counts change with it (counted once per
// registry call, not once per endpoint updated), an endpoint's series go when it leaves, a service's when it goes.

import type { EndpointRegistry } from '../registry/endpoint-registry.ts';
import type { AgentMetrics } from './metrics.ts';

/** `counts: false` only forgets what left (a worker thread's metrics: meshlite_endpoints is the main thread's to set,
 *  once, where the threads' series are added up). */
export function followRegistry(registry: Pick<EndpointRegistry, 'subscribeBatches' | 'endpointCounts'>, metrics: AgentMetrics, { counts = true } = {}): () => void {
  return registry.subscribeBatches((updates) => {
    let counted: string | null = null;
    for (const update of updates) {
      if (update.type === 'delete') {
        metrics.forgetService(update.key);
        counted = null;
        continue;
      }
      if (update.type === 'remove') metrics.forgetEndpoint(update.key, update.address);
      if (update.key === counted || !counts) continue;
      const byState = registry.endpointCounts(update.key);
      if (byState !== undefined) metrics.setServiceEndpoints(update.key, byState);
      counted = update.key;
    }
  });
}
