// Runs one system command (argument array, never a shell string) with a deadline; throws on a non-zero exit.

import { spawn } from 'node:child_process';

export interface RunOptions {
  /** Written to stdin, which is then closed (CNI plugins read their config here; iptables-restore its script). */
  input?: string;
  /** The whole environment of the command; defaults to this process's. */
  env?: NodeJS.ProcessEnv;
  /** The command is killed (SIGKILL) after this long, so a hung tool fails a test instead of hanging it. */
  timeoutMs?: number;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export class CommandError extends Error {
  readonly result: RunResult;
  constructor(file: string, args: readonly string[], result: RunResult, reason: string) {
    const output = `${result.stderr.trim()} ${result.stdout.trim()}`.trim();
    super(`${[file, ...args].join(' ')}: ${reason}${output === '' ? '' : `: ${output}`}`);
    this.result = result;
  }
}

/** Resolves with the result whatever the exit code; rejects when the command cannot start or overruns. */
export function runCommand(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], env: options.env ?? process.env });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const result = { code, signal, stdout, stderr };
      if (timedOut) reject(new CommandError(file, args, result, `no exit within ${timeoutMs} ms`));
      else resolve(result);
    });
    // A command that exits without reading stdin must not fail on EPIPE: its exit code says what happened.
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}

/** Like runCommand, but a non-zero exit is an error carrying the command's output. Resolves with stdout. */
export async function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<string> {
  const result = await runCommand(file, args, options);
  if (result.code !== 0) throw new CommandError(file, args, result, `exit ${result.code ?? result.signal}`);
  return result.stdout;
}
