// The installer's command line: `install` (once, for an init container), `watch` (keep it there, for a sidecar), `uninstall`.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createInstaller } from './install.ts';

const USAGE = `usage: node cni/install-main.ts install|watch|uninstall [options]

  --plugin-source PATH   the plugin executable to install      (MESHLITE_CNI_PLUGIN_SOURCE, default dist/meshlite-cni)
  --bin-dir DIR          the host's CNI bin directory          (MESHLITE_CNI_BIN_DIR, default /host/opt/cni/bin)
  --conf-dir DIR         the host's CNI configuration directory (MESHLITE_CNI_CONF_DIR, default /host/etc/cni/net.d)
  --plugin-name NAME     executable name and entry type        (MESHLITE_CNI_PLUGIN_NAME, default meshlite)
  --agent-socket PATH    the entry's agentSocket                (MESHLITE_CNI_AGENT_SOCKET, plugin default /run/meshlite/cni.sock)
  --fail-policy P        the entry's failPolicy: open|closed    (MESHLITE_CNI_FAIL_POLICY, plugin default open)
  --timeout-ms N         the entry's timeoutMs                  (MESHLITE_CNI_TIMEOUT_MS, plugin default 5000)
  --log-file PATH        the entry's logFile                    (MESHLITE_CNI_LOG_FILE, plugin default stderr)

install exits 0 once meshlite is in the primary network, 1 when it cannot be (no network configuration yet, an
unsupported cniVersion), 2 on bad usage. watch runs until SIGTERM or SIGINT and leaves the configuration in place
(an upgrade must not take meshlite out of the network); uninstall takes meshlite out and deletes the executable.`;

const OPTIONS = {
  'plugin-source': { type: 'string', env: 'MESHLITE_CNI_PLUGIN_SOURCE' },
  'bin-dir': { type: 'string', env: 'MESHLITE_CNI_BIN_DIR' },
  'conf-dir': { type: 'string', env: 'MESHLITE_CNI_CONF_DIR' },
  'plugin-name': { type: 'string', env: 'MESHLITE_CNI_PLUGIN_NAME' },
  'agent-socket': { type: 'string', env: 'MESHLITE_CNI_AGENT_SOCKET' },
  'fail-policy': { type: 'string', env: 'MESHLITE_CNI_FAIL_POLICY' },
  'timeout-ms': { type: 'string', env: 'MESHLITE_CNI_TIMEOUT_MS' },
  'log-file': { type: 'string', env: 'MESHLITE_CNI_LOG_FILE' },
} as const;

type OptionName = keyof typeof OPTIONS;

class UsageError extends Error {}

function log(line: string): void {
  console.log(`${new Date().toISOString()} meshlite-cni-install ${line}`);
}

/** The entry's settings: only those given, so that the plugin's own defaults apply to the rest. */
function settingsOf(value: (name: OptionName) => string | undefined): Record<string, unknown> {
  const settings: Record<string, unknown> = {};
  const socket = value('agent-socket');
  if (socket !== undefined) settings.agentSocket = socket;
  const policy = value('fail-policy');
  if (policy !== undefined) {
    if (policy !== 'open' && policy !== 'closed') throw new UsageError(`--fail-policy must be open or closed, not ${JSON.stringify(policy)}`);
    settings.failPolicy = policy;
  }
  const timeout = value('timeout-ms');
  if (timeout !== undefined) {
    const ms = Number(timeout);
    if (!Number.isInteger(ms) || ms <= 0 || ms > 120_000) throw new UsageError(`--timeout-ms must be an integer from 1 to 120000, not ${JSON.stringify(timeout)}`);
    settings.timeoutMs = ms;
  }
  const logFile = value('log-file');
  if (logFile !== undefined) settings.logFile = logFile;
  return settings;
}

async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: Object.fromEntries(Object.keys(OPTIONS).map((name) => [name, { type: 'string' as const }])),
  });
  const value = (name: OptionName): string | undefined => {
    const given = values[name] ?? env[OPTIONS[name].env];
    return typeof given === 'string' && given !== '' ? given : undefined;
  };
  const [command, ...rest] = positionals;
  if (rest.length > 0 || (command !== 'install' && command !== 'watch' && command !== 'uninstall')) throw new UsageError(USAGE);
  const installer = createInstaller({
    pluginSource: value('plugin-source') ?? join(dirname(dirname(fileURLToPath(import.meta.url))), 'dist', 'meshlite-cni'),
    binDir: value('bin-dir') ?? '/host/opt/cni/bin',
    confDir: value('conf-dir') ?? '/host/etc/cni/net.d',
    pluginName: value('plugin-name') ?? 'meshlite',
    settings: settingsOf(value),
    log,
  });
  if (command === 'uninstall') {
    const result = await installer.uninstall();
    for (const refusal of result.refusals) log(`left in place: ${refusal}`);
    log(`uninstalled (${result.changes.length} configuration change(s), executable ${result.binaryRemoved ? 'removed' : 'was not there'})`);
    return 0;
  }
  if (command === 'watch') {
    const stop = new AbortController();
    for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => stop.abort());
    log('watching for changes to the CNI configuration');
    await installer.watch({ signal: stop.signal });
    log('stopped; the configuration stays as it is');
    return 0;
  }
  const { config } = await installer.reconcileOnce();
  if (config.kind === 'no-config') log(config.reason);
  if (config.kind === 'refused') log(`meshlite not added to ${config.file}: ${config.reason}`);
  if (config.kind === 'unchanged') log(`meshlite already in ${config.file}`);
  return config.kind === 'no-config' || config.kind === 'refused' ? 1 : 0;
}

main(process.argv.slice(2), process.env).then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    const usage = err instanceof UsageError || ((err as NodeJS.ErrnoException).code ?? '').startsWith('ERR_PARSE_ARGS');
    console.error(usage ? err.message : `meshlite-cni-install: ${err.stack ?? err.message}`);
    process.exitCode = usage ? 2 : 1;
  },
);
