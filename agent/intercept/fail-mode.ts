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
 * Seconds a pods-set member lives after its last refresh (ipset counts whole seconds), refreshed every half second:
 * from the agent's death a member expires after 1.5 to 2 s. Why not later: a gRPC client whose connections are
 * refused in between reconnects on gRPC's connection backoff (1 s, then 1.6 s more, each ±20%), so its second
 * reconnect comes 2.08 s at the earliest after the first failure; a member gone by then makes every standard gRPC
 * client succeed through kube-proxy on that reconnect, about 2.6 s after the death. With 3 s (refreshed each second)
 * about half the runs missed it and waited for the third reconnect, 5.2 s. While the agent lives, three refreshes in a
 * row may be late or fail (a slow `ipset`, a long pause of the event loop) before a member expires; and should one
 * expire, only new connections go unbalanced through kube-proxy until the next refresh puts it back.
 */
export const POD_MEMBER_TIMEOUT_S = 2;

/** How often the live agent refreshes every pods-set member: a quarter of the timeout (see above). */
export const POD_REFRESH_INTERVAL_MS = 500;

/**
 * The pods sets' own default timeout, written when a set is created: only a default (every member is added with
 * POD_MEMBER_TIMEOUT_S), kept at the value earlier agents created their sets with, since `create -exist` fails on a
 * set whose options differ and a set that rules reference cannot be re-created.
 */
export const POD_SET_TIMEOUT_S = 3;

/** ipset's `timeout 0` on a member of a set with timeout support: the member never expires. */
export const PERMANENT_TIMEOUT_S = 0;
