// Interception's destinations follow the registry's address claims: collected as they come, handed over once per turn.

import type { DestinationChange } from './desired-sets.ts';

/** What this reads of the registry: its address claims as they come and go (EndpointRegistry.subscribeAddresses). */
export interface ClaimedAddresses {
  subscribeAddresses(listener: (ip: string, port: number, claimed: boolean) => void): () => void;
}

/** What this gives the interception manager: the destinations claimed and given up since the last call. */
export interface DestinationSink {
  changeDestinations(changes: readonly DestinationChange[]): void;
}

/**
 * Destinations are every ClusterIP:port and endpoint ip:port a gRPC service claims (both: clients of headless
 * Services, and CNIs that translate ClusterIPs in the socket layer, dial pod IPs). The addresses claimed now go over
 * at once; later changes are collected and handed over on `defer` (the next event-loop turn in the agent), however
 * many services one informer event touched. An endpoint's state (ready, terminating) is not a destination, and a
 * change costs what changed. Returns the unsubscribe function.
 */
export function followDestinations(registry: ClaimedAddresses, sink: DestinationSink, defer: (handOver: () => void) => void = setImmediate): () => void {
  let pending: DestinationChange[] = [];
  const handOver = (): void => {
    const changes = pending;
    pending = [];
    sink.changeDestinations(changes);
  };
  const unsubscribe = registry.subscribeAddresses((ip, port, claimed) => {
    if (pending.length === 0) defer(handOver);
    pending.push({ ip, port, claimed });
  });
  handOver();
  return unsubscribe;
}
