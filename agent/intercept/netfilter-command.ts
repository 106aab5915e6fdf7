// Runs one iptables/ipset command through the injected runner and turns any failure into one coded error.

import { type ErrorCode, MeshliteError } from '../vocabulary/errors.ts';
import type { CommandResult, CommandRunner } from './command-runner.ts';

/** A command failed (non-zero exit, killed, or could not be started); carries what is needed to act on it. */
export class InterceptCommandError extends MeshliteError {
  /** The command line, for the log (arguments are never secret here). */
  readonly command: string;
  /** null: killed by a signal, or never started. */
  readonly exitCode: number | null;
  readonly stderr: string;

  constructor(command: string, exitCode: number | null, stderr: string, options?: ErrorOptions) {
    const detail = stderr.trim().split('\n').slice(0, 3).join(' | ');
    const how = exitCode === null ? 'did not run to completion' : `exited ${exitCode}`;
    super('ML_INTERCEPT_COMMAND_FAILED', `${command} ${how}${detail === '' ? '' : `: ${detail}`}`, options);
    this.name = 'InterceptCommandError';
    this.command = command;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/** A failure that is not a command's: an existing set of the wrong type (ML_INTERCEPT_SET_CONFLICT). */
export class InterceptError extends MeshliteError {
  constructor(code: ErrorCode, message: string) {
    super(code, message);
    this.name = 'InterceptError';
  }
}

/** Runs the command and returns its stdout; throws InterceptCommandError unless it exits 0. */
export async function runChecked(runner: CommandRunner, file: string, args: readonly string[], input?: string): Promise<string> {
  const command = [file, ...args].join(' ');
  let result: CommandResult;
  try {
    result = await runner(file, args, input === undefined ? undefined : { input });
  } catch (error) {
    throw new InterceptCommandError(command, null, (error as Error).message, { cause: error });
  }
  if (result.code !== 0) throw new InterceptCommandError(command, result.code, result.stderr);
  return result.stdout;
}

/**
 * Runs a command that may legitimately be absent (the iptables backend a host does not ship): null when it cannot
 * be started or fails, so the caller can go on with the other backend.
 */
export async function runOptional(runner: CommandRunner, file: string, args: readonly string[]): Promise<string | null> {
  try {
    const result = await runner(file, args);
    return result.code === 0 ? result.stdout : null;
  } catch {
    return null;
  }
}
