// Fail open or closed: how long a pods-set member lives without an agent refreshing it, and how often a live agent refreshes.

/**
 * `open` (the default): the pods sets' members carry an ipset timeout that the live agent keeps refreshing, so when no
 * agent runs (crash, OOM kill, deletion) the kernel itself drops them and opted-in pods' new connections go to their
 * Service through kube-proxy, as if they had not opted in. `closed`: members are permanent (`timeout 0`); without an
 * agent those connections are refused until one serves again — for clusters that would rather fail than go unbalanced.
 */
export type FailMode = 'open' | 'closed';
export const FAIL_MODES: readonly FailMode[] = ['open', 'closed'];

/**
 * Seconds a pods-set member lives after its last refresh (ipset counts whole seconds). The acceptance bound is 5 s from
 * the agent's death to RPCs succeeding through kube-proxy again: a member refreshed at most 1 s before the death expires
 * 2 to 3 s after it, which leaves 2 s for a client to reconnect. While the agent lives, two refreshes in a row may be
 * late or fail (a slow `ipset`, a long pause of the event loop) before a member expires; and should one expire, only
 * new connections go unbalanced through kube-proxy until the next refresh puts it back.
 */
export const POD_MEMBER_TIMEOUT_S = 3;

/** How often the live agent refreshes every pods-set member: a third of the timeout (see above). */
export const POD_REFRESH_INTERVAL_MS = 1000;

/** ipset's `timeout 0` on a member of a set with timeout support: the member never expires. */
export const PERMANENT_TIMEOUT_S = 0;
