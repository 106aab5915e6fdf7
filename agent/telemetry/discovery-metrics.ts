// Metrics of Kubernetes discovery: each informer's state, restarts, and the time from an endpoint change to the new picker.

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type InformerStateName = 'idle' | 'syncing' | 'watching' | 'failed' | 'stopped';
const INFORMER_STATES: readonly InformerStateName[] = ['idle', 'syncing', 'watching', 'failed', 'stopped'];

/** Seconds; a change usually reaches the picker in milliseconds, an overloaded control plane takes seconds. */
export const ENDPOINT_CHANGE_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class DiscoveryMetrics {
  private readonly state: Gauge<'resource' | 'state'>;
  private readonly degraded: Gauge;
  private readonly failures: Counter<'resource'>;
  private readonly changeToPicker: Histogram;

  constructor(registry: Registry) {
    const registers = [registry];
    this.state = new Gauge({
      name: 'meshlite_discovery_informer_state',
      help: 'Each Kubernetes informer by state: 1 for the state it is in. failed means the API server is unreachable or erroring and the last known objects are in use.',
      labelNames: ['resource', 'state'],
      registers,
    });
    this.degraded = new Gauge({
      name: 'meshlite_discovery_degraded',
      help: '1 while any informer has failed and is retrying (the agent serves from its last known endpoints), else 0.',
      registers,
    });
    this.failures = new Counter({
      name: 'meshlite_discovery_informer_failures_total',
      help: 'Failed LISTs and watches of a Kubernetes resource (each is retried with backoff).',
      labelNames: ['resource'],
      registers,
    });
    this.changeToPicker = new Histogram({
      name: 'meshlite_endpoint_change_to_picker_seconds',
      help: "Time from the change that triggered an EndpointSlice update (its endpoints.kubernetes.io/last-change-trigger-time) to the balancer's new picker.",
      buckets: [...ENDPOINT_CHANGE_BUCKETS],
      registers,
    });
    this.degraded.set(0);
  }

  /** Called on every transition; each entry into `failed` (a retry that fails again included) counts a failure. */
  informerState(resource: string, state: InformerStateName): void {
    for (const name of INFORMER_STATES) this.state.set({ resource, state: name }, name === state ? 1 : 0);
    if (state === 'failed') this.failures.inc({ resource });
  }

  setDegraded(degraded: boolean): void {
    this.degraded.set(degraded ? 1 : 0);
  }

  observeChangeToPicker(seconds: number): void {
    this.changeToPicker.observe(Math.max(0, seconds));
  }
}
