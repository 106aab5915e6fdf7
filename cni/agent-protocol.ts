// The plugin ↔ agent protocol: JSON over HTTP/1.1 on the agent's unix socket; paths, bodies and replies (the agent imports these).

/** POST bodies, one per path. Field names are the wire names. */
export interface AddBody {
  containerId: string;
  netns: string;
  ifName: string;
  namespace: string;
  name: string;
  /** Every address of prevResult.ips, without prefix length; never empty (with no IP there is nothing to ask). */
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

/** add, del and check are POSTs with the bodies above; status is a GET without a body. */
export const AgentPath = {
  ADD: '/v1/cni/add',
  DEL: '/v1/cni/del',
  CHECK: '/v1/cni/check',
  STATUS: '/v1/cni/status',
} as const;

/**
 * ADD's 200 reply. The agent answers only once the pod's IPs are in the interception set (enrolled: true) or once it
 * decided the pod is not to be intercepted (enrolled: false, e.g. not opted in). An agent that wants the pod but
 * cannot enroll it answers an error status, which the plugin treats like an unreachable agent.
 */
export interface AddReply {
  enrolled: boolean;
  reason: string;
}

/** CHECK's 200 reply: what holds and what should; the plugin fails CHECK when they differ. */
export interface CheckReply {
  enrolled: boolean;
  expected: boolean;
  reason: string;
}

/** STATUS's 200 reply: ready once the agent can service ADD. */
export interface StatusReply {
  ready: boolean;
  reason: string;
}

/**
 * DEL: any 2xx; the body is not read. Every non-2xx reply may carry `{ code, message }`, which the plugin reports.
 * In every reply `reason` may be left out; the plugin reads it as ''.
 */
export interface ErrorReply {
  code: string;
  message: string;
}

function recordOf(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function reasonOf(record: Record<string, unknown>): string {
  return typeof record.reason === 'string' ? record.reason : '';
}

/** Null unless the text is the protocol's ADD reply. */
export function addReplyOf(text: string): AddReply | null {
  const record = recordOf(text);
  if (record === null || typeof record.enrolled !== 'boolean') return null;
  return { enrolled: record.enrolled, reason: reasonOf(record) };
}

/** Null unless the text is the protocol's CHECK reply. */
export function checkReplyOf(text: string): CheckReply | null {
  const record = recordOf(text);
  if (record === null || typeof record.enrolled !== 'boolean' || typeof record.expected !== 'boolean') return null;
  return { enrolled: record.enrolled, expected: record.expected, reason: reasonOf(record) };
}

/** Null unless the text is the protocol's STATUS reply. */
export function statusReplyOf(text: string): StatusReply | null {
  const record = recordOf(text);
  if (record === null || typeof record.ready !== 'boolean') return null;
  return { ready: record.ready, reason: reasonOf(record) };
}

/** What an error reply says, as one line for details: "CODE: message", else the start of the raw text. */
export function errorTextOf(text: string): string {
  const record = recordOf(text);
  if (record !== null && typeof record.code === 'string' && typeof record.message === 'string') return `${record.code}: ${record.message}`;
  return text.slice(0, 500);
}
