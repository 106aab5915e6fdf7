// What the admin endpoints and the dashboard show with --workers above 1: every thread's balancers and request counts
// as one agent's, from the latest view each thread sent.

import type { EndpointView, ServiceBalancerView } from '../balancer/service-balancer.ts';
import type { ServiceReading } from '../telemetry/metrics.ts';

/** What a worker thread sends of itself, every VIEW_INTERVAL_MS (plain objects). */
export interface ThreadView {
  services: ServiceBalancerView[];
  readings: ServiceReading[];
  /** Endpoints whose pool in this thread is in reconnect backoff. */
  backingOff: string[];
}

/** Often enough for the dashboard's one frame a second; a view is a copy of every endpoint's state. */
export const VIEW_INTERVAL_MS = 250;

/**
 * The balancers of every thread as one: the main thread's services and endpoints (they follow the same registry, so
 * the lists agree but for a change still on its way to a thread), with in-flight and started requests added up, an
 * endpoint ejected when a thread ejected it and eligible only when every thread that knows it has it in its picker,
 * and latency the mean of the threads' weighted by the requests each started.
 */
export function mergeServices(main: readonly ServiceBalancerView[], others: ReadonlyArray<readonly ServiceBalancerView[]>): ServiceBalancerView[] {
  const byKey = others.map((views) => new Map(views.map((view) => [view.key, new Map(view.endpoints.map((endpoint) => [endpoint.address, endpoint]))])));
  return main.map((service) => ({
    ...service,
    endpoints: service.endpoints.map((endpoint) => {
      const seen: EndpointView[] = [endpoint];
      for (const thread of byKey) {
        const there = thread.get(service.key)?.get(endpoint.address);
        if (there !== undefined) seen.push(there);
      }
      const started = seen.reduce((sum, each) => sum + each.started, 0);
      return {
        ...endpoint,
        eligible: seen.every((each) => each.eligible),
        ejected: seen.some((each) => each.ejected),
        inFlight: seen.reduce((sum, each) => sum + each.inFlight, 0),
        started,
        latencyMs: started === 0 ? endpoint.latencyMs : seen.reduce((sum, each) => sum + each.latencyMs * each.started, 0) / started,
      };
    }),
  }));
}

/** Every thread's request counts added up, per service and endpoint (the dashboard's rates come from these). */
export function mergeReadings(all: ReadonlyArray<readonly ServiceReading[]>): ServiceReading[] {
  const merged = new Map<string, { reading: ServiceReading; endpoints: Map<string, number[]> }>();
  for (const readings of all) {
    for (const reading of readings) {
      let entry = merged.get(reading.key);
      if (entry === undefined) {
        entry = { reading: { key: reading.key, endpoints: [], durationBuckets: reading.durationBuckets.map(() => 0), durationCount: 0 }, endpoints: new Map() };
        merged.set(reading.key, entry);
      }
      entry.reading.durationCount += reading.durationCount;
      reading.durationBuckets.forEach((count, i) => {
        entry.reading.durationBuckets[i] += count;
      });
      for (const endpoint of reading.endpoints) {
        const counts = entry.endpoints.get(endpoint.address);
        if (counts === undefined) entry.endpoints.set(endpoint.address, [...endpoint.byStatus]);
        else endpoint.byStatus.forEach((count, code) => {
          counts[code] += count;
        });
      }
    }
  }
  return [...merged.values()].map(({ reading, endpoints }) => ({ ...reading, endpoints: [...endpoints].map(([address, byStatus]) => ({ address, byStatus })) }));
}
