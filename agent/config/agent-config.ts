// The agent's configuration as main receives it: every setting's value, what to do with it, the error of a bad value.

import { MeshliteError } from '../vocabulary/errors.ts';
import type { HostPort } from '../vocabulary/host-port.ts';
import type { LogLevel } from '../telemetry/logger.ts';
import type { BalancerName } from '../vocabulary/balancer-names.ts';
import type { FailMode } from '../intercept/fail-mode.ts';

export type DiscoveryMode = 'kubernetes' | 'static';
export type IptablesBackendChoice = 'auto' | 'nft' | 'legacy';

export interface Config {
  discovery: DiscoveryMode;
  staticFile: string;
  /** null: the in-cluster service account (the DaemonSet's); else a kubeconfig file. */
  kubeconfig: string | null;
  /** Kubernetes discovery's last synced view, served from when the agent starts during an API outage; null: none. */
  stateFile: string | null;
  /** The node this agent serves: only its pods are watched and enrolled. Required with kubernetes discovery. */
  nodeName: string;
  /** Transparent interception: iptables/ipset rules in the node's network namespace, and the CNI socket. */
  intercept: boolean;
  /** The node's IPs (at most one per family): the DNAT target of intercepted connections. Required to intercept. */
  nodeIPs: { v4: string | null; v6: string | null };
  iptablesBackend: IptablesBackendChoice;
  /** The unix socket the CNI plugin enrolls pods through; null: none. */
  cniSocket: string | null;
  /** How often the rules and sets are checked against the kernel and repaired. */
  reconcileIntervalMs: number;
  /** open: without an agent, opted-in pods' connections go to their Service unintercepted; closed: they are refused. */
  failMode: FailMode;
  listen: HostPort;
  admin: HostPort;
  /** null: metrics are served on the admin address only. */
  metrics: MetricsListen | null;
  /** The unix socket that answers /healthz and /readyz for this agent alone (its pod's exec probes); null: none. */
  probeSocket: string | null;
  /** Per-endpoint series (true), or sums per service (false). */
  metricsEndpointLabel: boolean;
  balancer: BalancerName;
  logLevel: LogLevel;
  connectTimeoutMs: number;
  sniffTimeoutMs: number;
  /** Client connections open at once (HTTP/2 and passed through); more are refused at accept. */
  maxClientConnections: number;
  /** Request bytes all client connections together may hold before the agent declares overload. */
  maxBufferedBytes: number;
  /** A client connection without a stream this long is told GOAWAY and closed; 0: never. */
  clientIdleTimeoutMs: number;
  /** Time a client connection has to complete the HTTP/2 handshake (preface and SETTINGS). */
  clientHandshakeTimeoutMs: number;
  drainTimeoutMs: number;
  upstreamMaxConnections: number;
  /** Threads serving the proxy port; 'auto': resolved at start from the CPU limit (workers/worker-count.ts). */
  workers: number | 'auto';
  clusterDomain: string;
}

/**
 * Where the metrics listener binds: one address, or every node IP (--node-ip) at one port, which is how the DaemonSet
 * says "the node IP" on IPv4, IPv6 and dual-stack nodes alike.
 */
export type MetricsListen = { on: 'address'; address: HostPort } | { on: 'node-ips'; port: number };

/** The addresses the metrics listener binds, in the order given (IPv4 first on a dual-stack node). */
export function metricsAddresses(config: Pick<Config, 'metrics' | 'nodeIPs'>): HostPort[] {
  const metrics = config.metrics;
  if (metrics === null) return [];
  if (metrics.on === 'address') return [metrics.address];
  return [config.nodeIPs.v4, config.nodeIPs.v6].flatMap((host) => (host === null ? [] : [{ host, port: metrics.port }]));
}

/** What main does with the command line: run with a configuration, remove every rule and set the agent created
 *  (`uninstall`), check the node for what the agent needs (`check`, agent/preflight/), or print helpText() and exit 0. */
export type ConfigResult =
  | { action: 'run'; config: Config }
  | { action: 'uninstall'; config: Config }
  | { action: 'check'; config: Config }
  | { action: 'help' };

/** A setting has an invalid value; the message names the setting, the value and what is expected. */
export class ConfigError extends MeshliteError {
  constructor(message: string) {
    super('ML_CONFIG_INVALID', message);
    this.name = 'ConfigError';
  }
}
