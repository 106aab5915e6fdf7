// Reads the agent's settings from the command line and the environment (the table is in config/settings-table.ts).

import { formatHostPort, type HostPort } from './vocabulary/host-port.ts';
import { type Config, ConfigError, type ConfigResult, metricsAddresses } from './config/agent-config.ts';
import { type AnySetting, SETTINGS } from './config/settings-table.ts';

export {
  type Config,
  ConfigError,
  type ConfigResult,
  type DiscoveryMode,
  type IptablesBackendChoice,
  metricsAddresses,
} from './config/agent-config.ts';
export { SETTINGS } from './config/settings-table.ts';
export { helpText } from './config/help-text.ts';

const HELP_FLAGS = new Set(['--help', '-h']);

/**
 * Reads the settings from the command line and the environment (a flag overrides its variable; an empty variable
 * counts as unset). Pure: main passes process.argv.slice(2) and process.env. Throws ConfigError.
 */
export function parseConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): ConfigResult {
  // --help wins wherever it stands, even after a mistake: someone asking for help gets it.
  if (argv.some((arg) => HELP_FLAGS.has(arg))) return { action: 'help' };
  if (argv[0] === 'uninstall') return { action: 'uninstall', config: parseSettings(argv.slice(1), env) };
  // `check` takes the agent's settings and demands what the agent demands: it checks the node for that agent.
  const check = argv[0] === 'check';
  const config = parseSettings(check ? argv.slice(1) : argv, env);
  if (config.discovery === 'kubernetes' && config.nodeName === '') {
    throw new ConfigError(
      'kubernetes discovery needs the node name: set --node-name (env MESHLITE_NODE_NAME; the DaemonSet passes spec.nodeName)',
    );
  }
  if (config.intercept && config.nodeIPs.v4 === null && config.nodeIPs.v6 === null) {
    throw new ConfigError('--intercept on needs the node IP: set --node-ip (env MESHLITE_NODE_IP; the DaemonSet passes status.hostIPs)');
  }
  if (config.metrics?.on === 'node-ips' && config.nodeIPs.v4 === null && config.nodeIPs.v6 === null) {
    throw new ConfigError(`--metrics node:${config.metrics.port} needs the node IP: set --node-ip (env MESHLITE_NODE_IP)`);
  }
  return { action: check ? 'check' : 'run', config };
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
    ...metricsAddresses(config).map((address): [string, HostPort] => ['--metrics', address]),
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
