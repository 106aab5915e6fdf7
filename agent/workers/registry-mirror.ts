// A worker thread's copy of the main thread's endpoint registry: applies the update batches the main registry emits.

import type { EndpointRegistry } from '../registry/endpoint-registry.ts';
import type { EndpointSpec, RegistryUpdate } from '../registry/endpoint.ts';

/**
 * Applies one batch of the main registry's updates (structured-cloned plain objects) to `mirror`, so that the
 * mirror holds what the main registry holds. Within a batch the registry emits, per service, its removes, then
 * drains, then adds (endpoint-registry.ts): a run of them is one patch() with the same effect, so the mirror's
 * subscribers (a worker's balancers) build one picker for it, as the main thread's do. A reset replaces the service
 * (upsert); a delete removes it. Each service's change is one batch of the mirror's (a picker is per service).
 */
export function applyRegistryBatch(mirror: EndpointRegistry, updates: readonly RegistryUpdate[]): void {
  let run: { key: string; listed: EndpointSpec[]; unlisted: string[] } | null = null;
  const flush = (): void => {
    if (run === null) return;
    const { key, listed, unlisted } = run;
    run = null;
    // A change of a service the mirror lacks cannot happen when the batches arrive in order; should it, the batch
    // stops being applied here rather than invent a service (the next reset brings it whole).
    if (!mirror.patch(key, { listed, unlisted })) throw new Error(`registry mirror: update for unknown service ${key}`);
  };
  for (const update of updates) {
    if (update.type === 'reset' || update.type === 'delete') {
      flush();
      if (update.type === 'reset') mirror.upsert(update.service);
      else mirror.remove(update.key);
      continue;
    }
    if (run !== null && run.key !== update.key) flush();
    run ??= { key: update.key, listed: [], unlisted: [] };
    if (update.type === 'remove') run.unlisted.push(update.address);
    else run.listed.push(update.endpoint);
  }
  flush();
}
