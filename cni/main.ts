// The meshlite CNI plugin's entry: process.env and stdin in, one JSON document on stdout and the exit status out.

import { appendFileSync } from 'node:fs';
import { createAgentClient } from './agent-client.ts';
import { CniError, CniErrorCode } from './cni-errors.ts';
import { errorOutcome } from './cni-result.ts';
import { LATEST_VERSION } from './cni-version.ts';
import { handleInvocation, type LogLine, type PluginDependencies } from './plugin.ts';

/** Far above any network configuration; a runtime that streams more is not sending one. */
const MAX_STDIN_BYTES = 4 * 1024 * 1024;

async function readStdin(): Promise<string> {
  // Started by hand from a terminal (VERSION), there is no configuration to wait for.
  if (process.stdin.isTTY) return '';
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length;
    if (size > MAX_STDIN_BYTES) break;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Log lines go to the configured file or else to stderr; never to stdout, which is the runtime's result channel. */
function logTo(file: string | null): LogLine {
  return (message) => {
    // One line per event, so that a log reader never mistakes a quoted error's newline for the next event.
    const line = `${new Date().toISOString()} meshlite-cni[${process.pid}] ${message.replaceAll('\n', '\\n')}\n`;
    if (file !== null) {
      try {
        appendFileSync(file, line, { mode: 0o640 });
        return;
      } catch (err) {
        process.stderr.write(`${new Date().toISOString()} meshlite-cni cannot write log file ${file}: ${(err as Error).message}\n`);
      }
    }
    process.stderr.write(line);
  };
}

const dependencies: PluginDependencies = {
  agentFor: (settings) => createAgentClient({ socketPath: settings.agentSocket, timeoutMs: settings.timeoutMs }),
  logFor: (settings) => logTo(settings?.logFile ?? null),
};

function finish(exitCode: number, stdout: string): void {
  // Exit only once stdout is flushed, and without waiting for anything else still pending (a timed-out exchange).
  if (stdout === '') process.exit(exitCode);
  process.stdout.write(stdout, () => process.exit(exitCode));
}

readStdin()
  .catch((err: Error) => {
    process.stderr.write(`meshlite-cni: cannot read stdin: ${err.message}\n`);
    return null;
  })
  .then(async (stdin) => {
    if (stdin === null) {
      const outcome = errorOutcome(new CniError(CniErrorCode.IO_FAILURE, 'cannot read the network configuration from stdin'), LATEST_VERSION);
      return finish(outcome.exitCode, outcome.stdout);
    }
    const outcome = await handleInvocation(process.env, stdin, dependencies);
    finish(outcome.exitCode, outcome.stdout);
  });
