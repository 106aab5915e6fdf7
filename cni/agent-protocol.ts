// The plugin ↔ agent protocol: JSON over HTTP/1.1 on the agent's unix socket; paths, bodies and replies (the agent imports these).

/** POST bodies, one per path. Field names are the wire names. */
export interface AddBody {
  containerId: string;
  netns: string;
  ifName: string;
  namespace: string;
  name: string;
  /** Every address of prevResult.ips, without prefix length. */
  ips: string[];
}

/** CHECK sends what ADD sent, so the agent can compare its state with the attachment the runtime believes in. */
export type CheckBody = AddBody;

export interface DelBody {
  containerId: string;
  /** null when the runtime's CNI_ARGS did not name the pod (DEL must work with whatever the runtime still has). */
  namespace: string | null;
  name: string | null;
}

export type StatusBody = Record<string, never>;

export const AgentPath = {
  ADD: '/v1/cni/add',
  DEL: '/v1/cni/del',
  CHECK: '/v1/cni/check',
  STATUS: '/v1/cni/status',
} as const;

/**
 * Replies, all with status 200. ADD: the agent answers only once the pod's IPs are in the interception set
 * (enrolled: true) or once it decided the pod is not to be intercepted (enrolled: false, e.g. not opted in). An agent
 * that wants the pod but cannot enroll it answers 5xx, which the plugin treats like an unreachable agent.
 */
export interface AddReply {
  enrolled: boolean;
  reason: string;
}

/** CHECK: ok false when the agent's state for the pod is not what it should be (its reason says what). */
export interface CheckReply {
  ok: boolean;
  reason: string;
}

/** STATUS: ready once the agent can service ADD (rules installed, informers synced). */
export interface StatusReply {
  ready: boolean;
  reason: string;
}

/** DEL: any 2xx; the body is not read. */

/** Reads a reply `{ <flag>: boolean, reason?: string }`; null when it is not one (reason defaults to ''). */
export function replyOf(text: string, flag: 'enrolled' | 'ok' | 'ready'): { flag: boolean; reason: string } | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const record = value as Record<string, unknown>;
  const answer = record[flag];
  if (typeof answer !== 'boolean') return null;
  return { flag: answer, reason: typeof record.reason === 'string' ? record.reason : '' };
}
