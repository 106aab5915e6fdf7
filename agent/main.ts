// Entry point. It reads the settings, starts the probe socket's thread (so the pod's exec probes answer from the
// process's first moments), and only then loads the agent: its modules and the Kubernetes client take about a
// second to evaluate, a second in which the main thread answers nothing.

import { ProbeThread } from './admin/probe-thread.ts';
import { type Config, ConfigError, helpText, parseConfig } from './config.ts';

async function main(): Promise<void> {
  let config: Config;
  try {
    const result = parseConfig(process.argv.slice(2), process.env);
    if (result.action === 'help') {
      process.stdout.write(helpText());
      return;
    }
    if (result.action === 'uninstall') {
      const { uninstallRules } = await import('./agent-run.ts');
      process.exitCode = await uninstallRules(result.config);
      return;
    }
    if (result.action === 'check') {
      const { checkNode } = await import('./agent-run.ts');
      process.exitCode = await checkNode(result.config);
      return;
    }
    config = result.config;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    if (process.argv[2] === 'check') {
      const { checkNode } = await import('./agent-run.ts');
      process.exitCode = await checkNode(error);
      return;
    }
    process.stderr.write(`meshlite: ${error.message}\nRun with --help to see every setting.\n`);
    process.exitCode = 2;
    return;
  }
  const probes = config.probeSocket === null ? null : new ProbeThread(config.probeSocket);
  const { startAgent } = await import('./agent-run.ts');
  await startAgent(config, probes);
}

await main();
