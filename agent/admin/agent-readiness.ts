// What /readyz says, from the first line of main to the last: the agent's start-up and shutdown phases, in order.

import type { Readiness } from './admin-server.ts';

/**
 * `discovery`: waiting for the first snapshot of Services, slices and pods (the API may be unreachable: the agent
 * answers /healthz all the same, so liveness never restarts it for an outage it cannot fix); `listening`: the
 * proxy binds its sockets; `interception`: the rules and sets are being applied; `serving`; `draining`: a signal
 * came, nothing new should come this way. Each phase follows the one before; any phase may go to draining.
 */
export type AgentPhase = 'discovery' | 'listening' | 'interception' | 'serving' | 'draining';

const ORDER: readonly AgentPhase[] = ['discovery', 'listening', 'interception', 'serving', 'draining'];

const REASONS: Readonly<Record<Exclude<AgentPhase, 'serving'>, string>> = {
  discovery: 'discovery syncing: waiting for the first snapshot of Services, EndpointSlices and pods',
  listening: 'proxy listener starting',
  interception: 'interception rules not applied yet',
  draining: 'draining',
};

export class AgentReadiness {
  private current: AgentPhase = 'discovery';
  /** What discovery reports of itself (its state, the last error), shown with the answer in every phase. */
  private discoveryStatus: () => unknown = () => undefined;
  private readonly phaseListeners: Array<(phase: AgentPhase) => void> = [];

  get phase(): AgentPhase {
    return this.current;
  }

  /** Moves forward only: a phase that comes earlier than the current one is a wiring mistake. */
  enter(next: AgentPhase): void {
    if (ORDER.indexOf(next) < ORDER.indexOf(this.current)) {
      throw new Error(`readiness: ${this.current} cannot go back to ${next}`);
    }
    this.current = next;
    for (const listener of this.phaseListeners) listener(next);
  }

  /** Called after every phase change (the probe thread is told at once, not at its next heartbeat). */
  onPhaseChange(listener: (phase: AgentPhase) => void): void {
    this.phaseListeners.push(listener);
  }

  reportDiscovery(status: () => unknown): void {
    this.discoveryStatus = status;
  }

  answer(): Readiness {
    const discovery = this.discoveryStatus();
    if (this.current === 'serving') return { ready: true, discovery };
    return { ready: false, reason: REASONS[this.current], phase: this.current, discovery };
  }
}
