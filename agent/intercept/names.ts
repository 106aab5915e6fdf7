// The names of everything interception creates in the kernel (chains, the comment on its jumps, ipsets), per IP family.

import { POD_MEMBER_TIMEOUT_S, POD_SET_TIMEOUT_S } from './fail-mode.ts';

export type IpFamily = 4 | 6;
export const IP_FAMILIES: readonly IpFamily[] = [4, 6];

/**
 * Every rule meshlite adds to a chain it does not own carries this comment (`-m comment --comment meshlite`): it is
 * how uninstall and reconcile find meshlite's jumps among kube-proxy's and the CNI's rules, and touch nothing else.
 */
export const MESHLITE_COMMENT = 'meshlite';

/** The nat chain that DNATs opted-in pods' connections to gRPC destinations to the agent's listener. */
export const NAT_CHAIN = 'MESHLITE-PREROUTING';
/** The filter chain that lets only DNATed connections reach the listener on the node IP. */
export const FILTER_CHAIN = 'MESHLITE-INPUT';

export type TableName = 'nat' | 'filter';

/** A chain meshlite owns, and the built-in chain that jumps to it (the jump goes first, before kube-proxy's). */
export interface ChainHook {
  readonly table: TableName;
  readonly builtin: 'PREROUTING' | 'INPUT';
  readonly chain: string;
}

export const CHAIN_HOOKS: readonly ChainHook[] = [
  { table: 'nat', builtin: 'PREROUTING', chain: NAT_CHAIN },
  { table: 'filter', builtin: 'INPUT', chain: FILTER_CHAIN },
];

export type SetRole = 'pods' | 'dsts';

/** One ipset as `ipset create` takes it. `maxelem` and `timeoutS` are written only when the set is created. */
export interface SetDefinition {
  readonly name: string;
  readonly role: SetRole;
  readonly ipFamily: IpFamily;
  readonly type: 'hash:ip' | 'hash:ip,port';
  readonly family: 'inet' | 'inet6';
  readonly maxelem: number;
  /**
   * The pods sets are created with timeout support (fail-mode.ts: their members expire unless a live agent refreshes
   * them); null for the destinations sets, whose members only matter together with a pod's.
   */
  readonly timeoutS: number | null;
  /** What each member is added with when failing open (the set's default is only a default); null without timeouts. */
  readonly memberTimeoutS: number | null;
}

/**
 * Pods: at most a node's pods (a few hundred), ipset's default limit is plenty. Destinations: every ClusterIP:port and
 * endpoint IP:port of every gRPC Service in the cluster, which can pass the default 65536 on a large cluster; the
 * limit costs nothing until used (the hash grows with its members).
 */
const POD_SET_MAXELEM = 65_536;
const DESTINATION_SET_MAXELEM = 1_048_576;

export function podSetName(family: IpFamily): string {
  return `meshlite-pods-v${family}`;
}

export function destinationSetName(family: IpFamily): string {
  return `meshlite-dsts-v${family}`;
}

/**
 * The set a pods set left by an older meshlite (created without timeout support) is rebuilt in, then swapped with it:
 * a set that iptables rules reference cannot be destroyed and re-created. Exists only during one `ipset restore`.
 */
export function migrationSetName(setName: string): string {
  return `${setName}-new`;
}

/** The two sets of one family: local opted-in pods (sources) and gRPC destinations (ip,port). */
export function setDefinitions(family: IpFamily): readonly SetDefinition[] {
  const inet = family === 4 ? 'inet' : 'inet6';
  return [
    {
      name: podSetName(family),
      role: 'pods',
      ipFamily: family,
      type: 'hash:ip',
      family: inet,
      maxelem: POD_SET_MAXELEM,
      timeoutS: POD_SET_TIMEOUT_S,
      memberTimeoutS: POD_MEMBER_TIMEOUT_S,
    },
    {
      name: destinationSetName(family),
      role: 'dsts',
      ipFamily: family,
      type: 'hash:ip,port',
      family: inet,
      maxelem: DESTINATION_SET_MAXELEM,
      timeoutS: null,
      memberTimeoutS: null,
    },
  ];
}

/** Every set name meshlite may have created, both families (a migration's leftover last): what uninstall looks for. */
export const ALL_SET_NAMES: readonly string[] = [
  ...IP_FAMILIES.flatMap((family) => setDefinitions(family).map((set) => set.name)),
  ...IP_FAMILIES.map((family) => migrationSetName(podSetName(family))),
];
