// What a mode sets up, as demo/run.ts drives it: backends, clients with live tallies, and the agent.

import type { Tally } from './load.ts';

// The same in both modes, so that they compare.
export const BACKEND_IDS = ['backend-a', 'backend-b', 'backend-c'];
/** RPCs each client keeps in flight on its one channel. */
export const IN_FLIGHT = 8;
export const RPC_DEADLINE_MS = 5_000;
export const AGENT_DRAIN_TIMEOUT_MS = 5_000;
/** After SIGTERM the agent drains (at most AGENT_DRAIN_TIMEOUT_MS); past this it is killed. */
export const AGENT_STOP_GRACE_MS = 10_000;

export interface SceneClient {
  /** Shown above its table; '' when it is the scene's only client (explicit mode keeps the plain table). */
  title: string;
  /** Kept current while the load runs; final once the scene's stopLoad() resolved. */
  tally: Tally;
  /** Whether meshlite balances its requests: then every backend must have served it (the smoke test). */
  balanced: boolean;
}

export interface Scene {
  /** Backend id → the address its requests reach it at. */
  backends: ReadonlyMap<string, string>;
  clients: readonly SceneClient[];
  /** Client connections open at the agent (its meshlite_downstream_connections); null when unknown. */
  connections(): Promise<number | null>;
  /** Settles if the agent exits on its own, with how: "exit 1", "signal SIGKILL". */
  agentExited: Promise<string>;
  /** The agent's last lines of output, to show when it fails. */
  agentOutput(): string[];
  /** Sends no new request and resolves once the tallies are final. */
  stopLoad(): Promise<void>;
}

export type Say = (line?: string) => void;
