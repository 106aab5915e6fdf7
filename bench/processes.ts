// Child processes of the benchmark: each started in its own session (own scheduler autogroup), ended by its PID.

import { type ChildProcess, type StdioOptions, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  readonly logFile: string;
  /** Resolves with the exit code (or the signal name) once the process is gone. */
  readonly exited: Promise<number | string>;
  exitStatus: number | string | null;
}

const live = new Set<ManagedProcess>();

export interface SpawnOptions {
  /** stdout and stderr go here (appended); a pipe instead when `pipeStdout`. */
  logFile: string;
  /** Keep stdout readable (e.g. for a ready line); stderr still goes to the log file. */
  pipeStdout?: boolean;
  /** Give the child a stdin pipe it can watch: it ends when this harness goes away. */
  pipeStdin?: boolean;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Spawns `command` with `detached: true`, which calls setsid() in the child before exec: a new session, hence a new
 * scheduler autogroup, and the PID is the command's own (no wrapper process in between).
 */
export function spawnManaged(name: string, command: string, args: readonly string[], options: SpawnOptions): ManagedProcess {
  const fd = openSync(options.logFile, 'a');
  const stdio: StdioOptions = [options.pipeStdin ? 'pipe' : 'ignore', options.pipeStdout ? 'pipe' : fd, fd];
  let child: ChildProcess;
  try {
    child = spawn(command, args, { detached: true, stdio, cwd: options.cwd, env: options.env });
  } finally {
    closeSync(fd);
  }
  let managed: ManagedProcess;
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      const status = code ?? signal ?? 'unknown';
      managed.exitStatus = status;
      live.delete(managed);
      resolve(status);
    });
    child.once('error', (error) => {
      managed.exitStatus = `spawn error: ${error.message}`;
      live.delete(managed);
      resolve(managed.exitStatus);
    });
  });
  managed = { name, pid: child.pid ?? -1, child, logFile: options.logFile, exited, exitStatus: null };
  // stdin errors (EPIPE once the child is gone) must not crash the harness.
  child.stdin?.on('error', () => {});
  if (managed.pid > 0) live.add(managed);
  return managed;
}

/** Whether a PID still exists (and is not a zombie). */
export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Ends one process by its PID: SIGTERM, then SIGKILL after `graceMs`. `extraPids` (e.g. nginx workers) get the same
 * treatment afterwards if they outlived their parent.
 */
export async function stopProcess(p: ManagedProcess, extraPids: readonly number[] = [], graceMs = 3000): Promise<void> {
  if (p.exitStatus === null) {
    signal(p.pid, 'SIGTERM');
    const timer = sleep(graceMs).then(() => 'timeout' as const);
    if ((await Promise.race([p.exited, timer])) === 'timeout') {
      signal(p.pid, 'SIGKILL');
      await Promise.race([p.exited, sleep(1000)]);
    }
  }
  for (const pid of extraPids) {
    if (!pidAlive(pid)) continue;
    signal(pid, 'SIGTERM');
    for (let i = 0; i < graceMs / 100 && pidAlive(pid); i++) await sleep(100);
    if (pidAlive(pid)) signal(pid, 'SIGKILL');
  }
}

/** Ends every process still running that this module started, each by its PID (in reverse start order). */
export async function stopAll(): Promise<void> {
  const all = [...live].reverse();
  await Promise.all(all.map((p) => stopProcess(p)));
}

/** Synchronous last resort (process 'exit' handler): SIGKILL every PID still known. */
export function killAllNow(): void {
  for (const p of live) signal(p.pid, 'SIGKILL');
}

/** The last `lines` lines of a process's log, for error messages. */
export function logTail(p: ManagedProcess, lines = 15): string {
  try {
    const text = readFileSync(p.logFile, 'utf8').trimEnd();
    return text.split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
