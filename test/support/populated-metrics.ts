// An agent's metrics with every kind of series present (requests of every outcome, latencies, retries, connections,
// endpoints, in flight, build info, process metrics): what exposition and dashboard tests read.

import { type AgentMetrics, createMetrics, type EndpointsView } from '../../agent/telemetry/metrics.ts';
import { countEndpoints } from '../../agent/registry/endpoint-counts.ts';

export function populatedMetrics(options: { services?: number; endpoints?: number; endpointLabel?: boolean } = {}): AgentMetrics {
  const metrics = createMetrics({ processMetrics: true, buildInfo: { version: '0.1.0', nodejs: process.version }, endpointLabel: options.endpointLabel });
  const views: EndpointsView[] = [];
  for (let s = 0; s < (options.services ?? 2); s++) {
    const key = `ns${s % 10}/svc${s}:50051`;
    const addresses = Array.from({ length: options.endpoints ?? 3 }, (_, e) => `10.${s >> 8}.${s & 255}.${e + 1}:50051`);
    for (const address of addresses) {
      const handle = metrics.requestMetrics(key, address);
      for (let code = 0; code < 17; code++) handle.record(code, 0.001 * code);
      handle.recordResponseStart(0.002);
      // A connection in each state: connecting, ready, draining.
      metrics.upstreamConnectionMoved(address, null, 'connecting');
      metrics.upstreamConnectionMoved(address, 'connecting', 'ready');
      metrics.upstreamConnectionMoved(address, null, 'connecting');
      metrics.upstreamConnectionMoved(address, 'connecting', 'draining');
      metrics.upstreamConnectionMoved(address, null, 'connecting');
    }
    metrics.countTransparentRetry(key, 'connect_failed');
    metrics.countTransparentRetry(key, 'refused_stream');
    metrics.setServiceEndpoints(key, countEndpoints([]));
    views.push({ key, endpoints: addresses.map((address) => ({ address, inFlight: 1 })) });
  }
  metrics.followEndpoints(() => views);
  metrics.downstreamOpened();
  metrics.countError('ML_NO_ENDPOINT');
  metrics.countStaticReload('success');
  return metrics;
}
