// Runs a system command with an argument array (never a shell string), optionally feeding stdin; injected everywhere.

import { spawn } from 'node:child_process';

export interface CommandResult {
  /** The exit code; null when the command died of a signal. */
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CommandOptions {
  /** Written to the command's stdin, which is then closed (iptables-restore and ipset restore read their script). */
  input?: string;
  /** The whole environment of the command (CNI plugins are driven by theirs); this process's when absent. */
  env?: NodeJS.ProcessEnv;
}

/**
 * Interception runs iptables, ip6tables, iptables-restore, iptables-save and ipset through this, so tests can record
 * the exact calls, and e2e tests can run them inside a network namespace (`ip netns exec NAME file ...args`).
 * Resolves with the result whatever the exit code; rejects only when the command cannot be started at all.
 */
export type CommandRunner = (file: string, args: readonly string[], options?: CommandOptions) => Promise<CommandResult>;

export const runCommand: CommandRunner = (file, args, options = {}) =>
  new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], env: options.env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
    // A command that exits without reading its stdin must not fail the write (EPIPE): its exit code says it all.
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });

/** The same commands, run inside a network namespace: what e2e tests and the demo use. */
export function inNetworkNamespace(namespace: string, runner: CommandRunner = runCommand): CommandRunner {
  return (file, args, options) => runner('ip', ['netns', 'exec', namespace, file, ...args], options);
}
