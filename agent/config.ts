// Every setting of the agent in one table (flag, environment variable, default, validation, help) and its parser.

import { MeshliteError } from './vocabulary/errors.ts';
import { isIP } from 'node:net';
import { canonicalIPv6, formatHostPort, type HostPort, parseHostPort } from './vocabulary/host-port.ts';
import { LOG_LEVELS, type LogLevel } from './telemetry/logger.ts';
import { BALANCER_NAMES, DEFAULT_BALANCER } from './vocabulary/balancer-names.ts';
import type { BalancerName } from './vocabulary/balancer-names.ts';

export type DiscoveryMode = 'kubernetes' | 'static';
export type IptablesBackendChoice = 'auto' | 'nft' | 'legacy';

export interface Config {
  discovery: DiscoveryMode;
  staticFile: string;
  /** null: the in-cluster service account (the DaemonSet's); else a kubeconfig file. */
  kubeconfig: string | null;
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
  listen: HostPort;
  admin: HostPort;
  /** null: metrics are served on the admin address only. */
  metrics: HostPort | null;
  balancer: BalancerName;
  logLevel: LogLevel;
  connectTimeoutMs: number;
  sniffTimeoutMs: number;
  drainTimeoutMs: number;
  upstreamMaxConnections: number;
  clusterDomain: string;
}

/** What main does with the command line: run with a configuration, remove every rule and set the agent created
 *  (`uninstall`), or print helpText() and exit 0. */
export type ConfigResult = { action: 'run'; config: Config } | { action: 'uninstall'; config: Config } | { action: 'help' };

/** A setting has an invalid value; the message names the setting, the value and what is expected. */
export class ConfigError extends MeshliteError {
  constructor(message: string) {
    super('ML_CONFIG_INVALID', message);
    this.name = 'ConfigError';
  }
}

type Parsed<T> = { ok: true; value: T } | { ok: false; expected: string };

interface Setting<K extends keyof Config> {
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

type AnySetting = { [K in keyof Config]: Setting<K> }[keyof Config];

function setting<K extends keyof Config>(definition: Setting<K>): Setting<K> {
  return definition;
}

function ok<T>(value: T): Parsed<T> {
  return { ok: true, value };
}

function oneOf<T extends string>(choices: readonly T[]): (text: string) => Parsed<T> {
  return (text) => ((choices as readonly string[]).includes(text) ? ok(text as T) : { ok: false, expected: `one of ${choices.join(', ')}` });
}

function listenAddress(text: string): Parsed<HostPort> {
  const result = parseHostPort(text, { allowHostname: true, allowPortZero: true });
  return result.ok ? result : { ok: false, expected: `host:port, e.g. 0.0.0.0:15001 or [::1]:15001 (${result.reason})` };
}

function integerIn(min: number, max: number): (text: string) => Parsed<number> {
  return (text) => {
    const value = /^[0-9]+$/.test(text) ? Number(text) : Number.NaN;
    return value >= min && value <= max ? ok(value) : { ok: false, expected: `an integer from ${min} to ${max}` };
  };
}

/** A comma-separated list of at most one IPv4 and one IPv6 address, as the downward API's status.hostIPs gives. */
function nodeIPs(text: string): Parsed<Config['nodeIPs']> {
  const result: Config['nodeIPs'] = { v4: null, v6: null };
  if (text === '') return ok(result);
  for (const part of text.split(',')) {
    const ip = part.trim();
    const family = isIP(ip);
    const slot = family === 4 ? 'v4' : family === 6 ? 'v6' : null;
    if (slot === null || result[slot] !== null) return { ok: false, expected: 'one IPv4 and/or one IPv6 address, comma-separated' };
    result[slot] = family === 6 ? canonicalIPv6(ip) : ip;
  }
  return ok(result);
}

const DNS_NAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

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
    metavar: 'HOST:PORT|off',
    help: 'A separate listener serving only /metrics, for Prometheus to scrape on the node IP. "off": only on --admin.',
    parse: (text) => (text === 'off' ? ok(null) : listenAddress(text)),
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
    key: 'clusterDomain',
    flag: '--cluster-domain',
    env: 'MESHLITE_CLUSTER_DOMAIN',
    defaultText: 'cluster.local',
    metavar: 'DOMAIN',
    help: 'The cluster DNS domain, for authorities like name.namespace.svc.cluster.local:port.',
    parse: (text) => (DNS_NAME.test(text) ? ok(text) : { ok: false, expected: 'a lower-case DNS name, e.g. cluster.local' }),
  }),
];

const HELP_FLAGS = new Set(['--help', '-h']);

/**
 * Reads the settings from the command line and the environment (a flag overrides its variable; an empty variable
 * counts as unset). Pure: main passes process.argv.slice(2) and process.env. Throws ConfigError.
 */
export function parseConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): ConfigResult {
  // --help wins wherever it stands, even after a mistake: someone asking for help gets it.
  if (argv.some((arg) => HELP_FLAGS.has(arg))) return { action: 'help' };
  if (argv[0] === 'uninstall') return { action: 'uninstall', config: parseSettings(argv.slice(1), env) };
  const config = parseSettings(argv, env);
  if (config.discovery === 'kubernetes' && config.nodeName === '') {
    throw new ConfigError(
      'kubernetes discovery needs the node name: set --node-name (env MESHLITE_NODE_NAME; the DaemonSet passes spec.nodeName)',
    );
  }
  if (config.intercept && config.nodeIPs.v4 === null && config.nodeIPs.v6 === null) {
    throw new ConfigError('--intercept on needs the node IP: set --node-ip (env MESHLITE_NODE_IP; the DaemonSet passes status.hostIPs)');
  }
  return { action: 'run', config };
}

function parseSettings(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Config {
  const byFlag = new Map(SETTINGS.map((s) => [s.flag, s] as const));
  const fromFlags = new Map<AnySetting, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument "${arg}": settings are given as --name value (see --help)`);
    const eq = arg.indexOf('=');
    const flag = eq < 0 ? arg : arg.slice(0, eq);
    const definition = byFlag.get(flag);
    if (definition === undefined) throw new ConfigError(`unknown flag ${flag} (see --help for the list)`);
    let value: string;
    if (eq >= 0) {
      value = arg.slice(eq + 1);
    } else {
      if (i + 1 >= argv.length) throw new ConfigError(`${flag} needs a value: ${flag} ${definition.metavar}`);
      value = argv[++i];
    }
    fromFlags.set(definition, value);
  }

  const values: Record<string, unknown> = {};
  for (const definition of SETTINGS) {
    const flagValue = fromFlags.get(definition);
    const envValue = env[definition.env];
    let text = definition.defaultText;
    let source = `${definition.flag} (default)`;
    if (flagValue !== undefined) {
      text = flagValue;
      source = definition.flag;
    } else if (envValue !== undefined && envValue !== '') {
      text = envValue;
      source = `${definition.flag} (from ${definition.env})`;
    }
    const parsed = definition.parse(text);
    if (!parsed.ok) throw new ConfigError(`invalid ${source}: "${text}"; expected ${parsed.expected}`);
    values[definition.key] = parsed.value;
  }
  const config = values as unknown as Config;
  checkListenersDistinct(config);
  return config;
}

/** Two of our listeners on one port would fail at bind time with a less helpful message; say it here instead. */
function checkListenersDistinct(config: Config): void {
  const listeners: [string, HostPort | null][] = [
    ['--listen', config.listen],
    ['--admin', config.admin],
    ['--metrics', config.metrics],
  ];
  for (let i = 0; i < listeners.length; i++) {
    for (let j = i + 1; j < listeners.length; j++) {
      const [nameA, a] = listeners[i];
      const [nameB, b] = listeners[j];
      if (a === null || b === null || a.port === 0 || a.port !== b.port) continue;
      if (a.host === b.host || isWildcard(a.host) || isWildcard(b.host)) {
        throw new ConfigError(
          `${nameA} ${formatHostPort(a.host, a.port)} and ${nameB} ${formatHostPort(b.host, b.port)} overlap; expected different ports`,
        );
      }
    }
  }
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}

/** The --help text, generated from the table so that it cannot drift from what is parsed. */
export function helpText(): string {
  const lines = [
    'meshlite agent: balances every gRPC request, not every connection.',
    '',
    'Usage: npm run agent -- [--name value | --name=value]...',
    '       npm run agent -- uninstall [--iptables-backend auto|nft|legacy]',
    '         removes every iptables rule, chain and ipset the agent created, and nothing else.',
    '',
    'Every setting has a flag and an environment variable; a flag overrides its variable.',
    '',
  ];
  for (const s of SETTINGS) {
    lines.push(`  ${s.flag} ${s.metavar}`);
    lines.push(`      env ${s.env}, default ${s.defaultText}`);
    for (const line of wrap(s.help, 100)) lines.push(`      ${line}`);
    lines.push('');
  }
  lines.push('  --help, -h', '      Print this text and exit.');
  return `${lines.join('\n')}\n`;
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}
