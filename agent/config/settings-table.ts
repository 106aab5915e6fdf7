// Every setting of the agent in one table: its flag, environment variable, default, placeholder, help and parser.

import { LOG_LEVELS, type LogLevel } from '../telemetry/logger.ts';
import { BALANCER_NAMES, DEFAULT_BALANCER } from '../vocabulary/balancer-names.ts';
import type { BalancerName } from '../vocabulary/balancer-names.ts';
import { FAIL_MODES, type FailMode } from '../intercept/fail-mode.ts';
import type { Config, DiscoveryMode, IptablesBackendChoice } from './agent-config.ts';
import { DNS_NAME, integerIn, listenAddress, metricsListen, nodeIPs, ok, oneOf, type Parsed, workerCount } from './value-parsers.ts';

export interface Setting<K extends keyof Config> {
  readonly key: K;
  readonly flag: string;
  readonly env: string;
  /** Written as a user would write it: the default goes through parse() like any other value. */
  readonly defaultText: string;
  /** The value's placeholder in --help. */
  readonly metavar: string;
  readonly help: string;
  readonly parse: (text: string) => Parsed<Config[K]>;
}

export type AnySetting = { [K in keyof Config]: Setting<K> }[keyof Config];

function setting<K extends keyof Config>(definition: Setting<K>): Setting<K> {
  return definition;
}

export const SETTINGS: readonly AnySetting[] = [
  setting({
    key: 'discovery',
    flag: '--discovery',
    env: 'MESHLITE_DISCOVERY',
    defaultText: 'kubernetes',
    metavar: 'MODE',
    help:
      'Where services and endpoints come from: "kubernetes" (Services, EndpointSlices and this node\'s pods from ' +
      'the API server) or "static" (the file of --static-file, no cluster needed).',
    parse: oneOf<DiscoveryMode>(['kubernetes', 'static']),
  }),
  setting({
    key: 'staticFile',
    flag: '--static-file',
    env: 'MESHLITE_STATIC_FILE',
    defaultText: 'meshlite.yaml',
    metavar: 'PATH',
    help:
      'The YAML file of services and endpoints for static discovery (relative to the working directory). ' +
      'Watched while the agent runs: an edit takes effect within 1 s; a malformed edit is logged and ignored.',
    parse: (text) => (text.length > 0 && !text.includes('\0') ? ok(text) : { ok: false, expected: 'a file path' }),
  }),
  setting({
    key: 'kubeconfig',
    flag: '--kubeconfig',
    env: 'MESHLITE_KUBECONFIG',
    defaultText: 'in-cluster',
    metavar: 'PATH|in-cluster',
    help:
      'How to reach the API server with kubernetes discovery: "in-cluster" uses the pod\'s service account; a path ' +
      'names a kubeconfig file (its current context), for running the agent outside a cluster.',
    parse: (text) => {
      if (text === 'in-cluster') return ok(null);
      return text.length > 0 && !text.includes('\0') ? ok(text) : { ok: false, expected: 'a file path or "in-cluster"' };
    },
  }),
  setting({
    key: 'stateFile',
    flag: '--state-file',
    env: 'MESHLITE_STATE_FILE',
    defaultText: 'off',
    metavar: 'PATH|off',
    help:
      'Where kubernetes discovery keeps its last synced view (Services and this node\'s opted-in pods), rewritten ' +
      'at most once a second after a change. An agent that starts while the API server is unreachable serves from ' +
      'it until the API answers. The DaemonSet keeps it in /run/meshlite (kept across agent restarts, not reboots).',
    parse: (text) => (text === 'off' ? ok(null) : text.startsWith('/') && !text.includes('\0') ? ok(text) : { ok: false, expected: 'an absolute path or off' }),
  }),
  setting({
    key: 'nodeName',
    flag: '--node-name',
    env: 'MESHLITE_NODE_NAME',
    defaultText: '',
    metavar: 'NAME',
    help:
      'The name of the node the agent runs on (the DaemonSet passes spec.nodeName). Required with kubernetes ' +
      'discovery: only this node\'s pods are watched and may opt in.',
    parse: (text) =>
      text === '' || DNS_NAME.test(text) ? ok(text) : { ok: false, expected: 'a node name (a lower-case DNS name)' },
  }),
  setting({
    key: 'intercept',
    flag: '--intercept',
    env: 'MESHLITE_INTERCEPT',
    defaultText: 'off',
    metavar: 'on|off',
    help:
      'Transparent interception (needs root or NET_ADMIN, in the node\'s network namespace): opted-in pods\' ' +
      'connections to gRPC Services are redirected to --listen by iptables and ipset rules the agent keeps; the ' +
      'CNI plugin enrolls new pods through --cni-socket. The DaemonSet turns it on; off means explicit mode only.',
    parse: (text) => (text === 'on' ? ok(true) : text === 'off' ? ok(false) : { ok: false, expected: 'on or off' }),
  }),
  setting({
    key: 'nodeIPs',
    flag: '--node-ip',
    env: 'MESHLITE_NODE_IP',
    defaultText: '',
    metavar: 'IP[,IP]',
    help:
      'The node\'s IP addresses (the DaemonSet passes status.hostIPs): intercepted connections are redirected to ' +
      'NODE_IP:<--listen port>. Required with --intercept on; IPv6 is intercepted when an IPv6 address is given.',
    parse: nodeIPs,
  }),
  setting({
    key: 'iptablesBackend',
    flag: '--iptables-backend',
    env: 'MESHLITE_IPTABLES_BACKEND',
    defaultText: 'auto',
    metavar: 'auto|nft|legacy',
    help: 'Which iptables the rules go to: auto uses the one where kube-proxy\'s KUBE-* chains are.',
    parse: oneOf<IptablesBackendChoice>(['auto', 'nft', 'legacy']),
  }),
  setting({
    key: 'cniSocket',
    flag: '--cni-socket',
    env: 'MESHLITE_CNI_SOCKET',
    defaultText: '/run/meshlite/cni.sock',
    metavar: 'PATH|off',
    help: 'The unix socket the meshlite CNI plugin enrolls new pods through (with --intercept on).',
    parse: (text) => (text === 'off' ? ok(null) : text.startsWith('/') && !text.includes('\0') ? ok(text) : { ok: false, expected: 'an absolute path or off' }),
  }),
  setting({
    key: 'reconcileIntervalMs',
    flag: '--reconcile-interval-ms',
    env: 'MESHLITE_RECONCILE_INTERVAL_MS',
    defaultText: '10000',
    metavar: 'MS',
    help: 'How often the interception rules and sets are compared with the kernel\'s and repaired if someone changed them.',
    parse: integerIn(100, 3_600_000),
  }),
  setting({
    key: 'failMode',
    flag: '--fail-mode',
    env: 'MESHLITE_FAIL_MODE',
    defaultText: 'open',
    metavar: 'open|closed',
    help:
      'What opted-in pods\' connections do while no agent runs on the node (crash, OOM kill, deletion): "open" sends ' +
      'them to their Service through kube-proxy, unbalanced, within 2 s (interception expires unless a live agent ' +
      'refreshes it every half second); "closed" keeps intercepting them, so they are refused until an agent serves again.',
    parse: oneOf<FailMode>(FAIL_MODES),
  }),
  setting({
    key: 'listen',
    flag: '--listen',
    env: 'MESHLITE_LISTEN',
    defaultText: '0.0.0.0:15001',
    metavar: 'HOST:PORT',
    help: 'The proxy listener: intercepted connections are redirected here, and clients may dial it directly.',
    parse: listenAddress,
  }),
  setting({
    key: 'admin',
    flag: '--admin',
    env: 'MESHLITE_ADMIN',
    defaultText: '127.0.0.1:15000',
    metavar: 'HOST:PORT',
    help:
      'The admin server (/healthz, /readyz, /metrics, /debug/endpoints). Loopback by default: reach it with ' +
      'kubectl port-forward.',
    parse: listenAddress,
  }),
  setting({
    key: 'metrics',
    flag: '--metrics',
    env: 'MESHLITE_METRICS',
    defaultText: 'off',
    metavar: 'node:PORT|HOST:PORT|off',
    help:
      'A separate listener serving only /metrics, for Prometheus to scrape. "node:PORT" listens on every --node-ip ' +
      '(IPv4 and IPv6) at PORT, as the DaemonSet does; "off": /metrics only on --admin.',
    parse: metricsListen,
  }),
  setting({
    key: 'metricsEndpointLabel',
    flag: '--metrics-endpoint-label',
    env: 'MESHLITE_METRICS_ENDPOINT_LABEL',
    defaultText: 'on',
    metavar: 'on|off',
    help:
      'Label request counts, first-byte latency, in-flight and upstream connection gauges by endpoint (pod ' +
      'IP:port): at most 39 series per endpoint plus 23 per service. "off" sums them per service (59 series per ' +
      'service, 3 for upstream connections in all), for fleets too large to keep series per pod.',
    parse: (text) => (text === 'on' ? ok(true) : text === 'off' ? ok(false) : { ok: false, expected: 'on or off' }),
  }),
  setting({
    key: 'probeSocket',
    flag: '--probe-socket',
    env: 'MESHLITE_PROBE_SOCKET',
    defaultText: 'off',
    metavar: 'PATH|off',
    help:
      'A unix socket answering /healthz and /readyz for this agent alone. The DaemonSet\'s probes ask it (in the ' +
      'pod\'s own /tmp): during an upgrade two agents share the admin port, and a probe there could reach either.',
    parse: (text) => (text === 'off' ? ok(null) : text.startsWith('/') && !text.includes('\0') ? ok(text) : { ok: false, expected: 'an absolute path or off' }),
  }),
  setting({
    key: 'balancer',
    flag: '--balancer',
    env: 'MESHLITE_BALANCER',
    defaultText: DEFAULT_BALANCER,
    metavar: 'NAME',
    help:
      'How each request picks an endpoint, unless the service names its own: p2c-ewma (two random choices, the ' +
      'one with the lower latency-times-load estimate), least-request, or round-robin.',
    parse: oneOf<BalancerName>(BALANCER_NAMES),
  }),
  setting({
    key: 'logLevel',
    flag: '--log-level',
    env: 'MESHLITE_LOG_LEVEL',
    defaultText: 'info',
    metavar: 'LEVEL',
    help: `Least severe level logged: ${LOG_LEVELS.join(', ')}. Requests are never logged one by one.`,
    parse: oneOf<LogLevel>(LOG_LEVELS),
  }),
  setting({
    key: 'connectTimeoutMs',
    flag: '--connect-timeout-ms',
    env: 'MESHLITE_CONNECT_TIMEOUT_MS',
    defaultText: '1000',
    metavar: 'MS',
    help:
      'Time allowed to connect to an endpoint (TCP and the HTTP/2 handshake) or to a passthrough destination. ' +
      'Short, because in-cluster connects take well under a millisecond: a dead pod IP fails fast.',
    parse: integerIn(1, 60_000),
  }),
  setting({
    key: 'sniffTimeoutMs',
    flag: '--sniff-timeout-ms',
    env: 'MESHLITE_SNIFF_TIMEOUT_MS',
    defaultText: '1000',
    metavar: 'MS',
    help:
      'How long a new connection may stay silent before it is relayed byte for byte instead of as HTTP/2. gRPC ' +
      'clients send their preface at once; only server-speaks-first protocols wait this long, once per connection.',
    parse: integerIn(1, 60_000),
  }),
  setting({
    key: 'maxClientConnections',
    flag: '--max-client-connections',
    env: 'MESHLITE_MAX_CLIENT_CONNECTIONS',
    defaultText: '20000',
    metavar: 'N',
    help:
      'Client connections open at once, HTTP/2 and passed through; more are refused at accept (ML_CLIENT_CONNECTION_LIMIT). ' +
      'An idle HTTP/2 connection costs about 15 KiB and a file descriptor: 20000 is about 300 MiB.',
    parse: integerIn(1, 1_000_000),
  }),
  setting({
    key: 'maxBufferedBytes',
    flag: '--max-buffered-mib',
    env: 'MESHLITE_MAX_BUFFERED_MIB',
    defaultText: '128',
    metavar: 'MIB',
    help:
      'Request bytes that all client connections together may hold before they are passed on (an endpoint that does ' +
      'not read). Past it the agent is overloaded (ML_OVERLOADED): new streams are refused with REFUSED_STREAM, new ' +
      'connections wait unread, and no connection gets window back before its bytes are passed on; it recovers below 3/4.',
    parse: (text) => {
      const mib = integerIn(1, 1_048_576)(text);
      return mib.ok ? ok(mib.value * 1024 * 1024) : mib;
    },
  }),
  setting({
    key: 'clientIdleTimeoutMs',
    flag: '--client-idle-timeout-ms',
    env: 'MESHLITE_CLIENT_IDLE_TIMEOUT_MS',
    defaultText: '3600000',
    metavar: 'MS',
    help:
      'A client connection without a stream for this long is told GOAWAY and closed (ML_CLIENT_IDLE_TIMEOUT); a gRPC ' +
      'channel reconnects when it next needs to. 0: never.',
    parse: integerIn(0, 86_400_000),
  }),
  setting({
    key: 'clientHandshakeTimeoutMs',
    flag: '--client-handshake-timeout-ms',
    env: 'MESHLITE_CLIENT_HANDSHAKE_TIMEOUT_MS',
    defaultText: '10000',
    metavar: 'MS',
    help:
      'Time a client connection has, once it is known to be HTTP/2, for its preface and SETTINGS and to acknowledge ' +
      'ours; else it is closed (ML_CLIENT_HANDSHAKE_TIMEOUT).',
    parse: integerIn(1, 600_000),
  }),
  setting({
    key: 'drainTimeoutMs',
    flag: '--drain-timeout-ms',
    env: 'MESHLITE_DRAIN_TIMEOUT_MS',
    defaultText: '25000',
    metavar: 'MS',
    help:
      'On SIGTERM, time given to in-flight requests before the remaining connections are closed. Keep it below ' +
      "the pod's terminationGracePeriodSeconds (30 s by default) so the agent exits on its own.",
    parse: integerIn(0, 3_600_000),
  }),
  setting({
    key: 'upstreamMaxConnections',
    flag: '--upstream-max-connections',
    env: 'MESHLITE_UPSTREAM_MAX_CONNECTIONS',
    defaultText: '4',
    metavar: 'N',
    help:
      'HTTP/2 connections the agent may open to one endpoint; another is opened only when the open ones are ' +
      "near the endpoint's MAX_CONCURRENT_STREAMS.",
    parse: integerIn(1, 1024),
  }),
  setting({
    key: 'workers',
    flag: '--workers',
    env: 'MESHLITE_WORKERS',
    defaultText: 'auto',
    metavar: 'N|auto',
    help:
      'Threads that serve the proxy port (each its own event loop, relay, balancers and upstream connections; one ' +
      'discovery feeds them all). "auto": as many as the container\'s CPU limit allows (cgroup cpu.max, rounded up, ' +
      'at most the usable cores and 8), one without a limit. 1: one thread, no worker started. A thread that dies ' +
      'stops the agent (exit 1).',
    parse: workerCount,
  }),
  setting({
    key: 'clusterDomain',
    flag: '--cluster-domain',
    env: 'MESHLITE_CLUSTER_DOMAIN',
    defaultText: 'cluster.local',
    metavar: 'DOMAIN',
    help: 'The cluster DNS domain, for authorities like name.namespace.svc.cluster.local:port.',
    parse: (text) => (DNS_NAME.test(text) ? ok(text) : { ok: false, expected: 'a lower-case DNS name, e.g. cluster.local' }),
  }),
];
