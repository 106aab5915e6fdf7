// A process started inside a network namespace (`ip netns exec`), known by its PID and ended only by that PID.

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface NamespaceProcess {
  ns: string;
  /** `ip netns exec` enters the namespace and execs the command in place, so this is the command's own PID. */
  pid: number;
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit, whenever it comes. */
  exited: Promise<Exit>;
  /** The first stdout line that satisfies `match`; rejects if the process exits first or the time runs out. */
  line(match: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Resolves with the exit; after timeoutMs the process is SIGKILLed and this rejects. */
  wait(timeoutMs: number): Promise<Exit>;
  /** Sends `signal` (SIGTERM by default) and waits graceMs for the exit, then SIGKILLs. Resolves once it is gone. */
  stop(options?: { signal?: NodeJS.Signals; graceMs?: number }): Promise<Exit>;
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
}

/**
 * Whether a PID names a running process. A zombie (ended, not yet reaped by its parent) counts as ended: it holds
 * no namespace and runs nothing.
 */
export function processIsAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** A function that starts processes in namespaces; the run's version also ends them in its cleanup. */
export type NamespaceSpawner = (
  ns: string,
  file: string,
  args: readonly string[],
  options?: SpawnOptions,
) => NamespaceProcess;

export function spawnInNamespace(
  ns: string,
  file: string,
  args: readonly string[],
  options: SpawnOptions = {},
): NamespaceProcess {
  const child = spawn('ip', ['netns', 'exec', ns, file, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: options.env ?? process.env,
  });
  if (child.pid === undefined) throw new Error(`could not start ${file} in ${ns}`);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  let exit: Exit | undefined;
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    });
  });
  const describe = () => `${file} ${args.join(' ')} in ${ns} (pid ${child.pid})`;

  const wait = async (timeoutMs: number): Promise<Exit> => {
    if (exit !== undefined) return exit;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${describe()} did not exit within ${timeoutMs} ms; stderr: ${stderr.trim()}`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  };

  const line = async (match: (line: string) => boolean, timeoutMs = 10_000): Promise<string> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = stdout.split('\n').slice(0, -1).find(match);
      if (found !== undefined) return found;
      if (exit !== undefined) {
        throw new Error(`${describe()} exited (${exit.code ?? exit.signal}) first; stderr: ${stderr.trim()}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${describe()}: no such line within ${timeoutMs} ms; stdout: ${stdout.trim()}`);
      // Wake on the next output or exit, whichever comes first; the timer bounds the wait.
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), left);
      await Promise.race([
        once(child.stdout as NodeJS.ReadableStream, 'data', { signal: ac.signal }).catch(() => {}),
        exited,
      ]);
      clearTimeout(timer);
      ac.abort();
    }
  };

  const stop = async ({ signal = 'SIGTERM', graceMs = 2_000 }: { signal?: NodeJS.Signals; graceMs?: number } = {}) => {
    if (exit !== undefined) return exit;
    child.kill(signal);
    if (signal === 'SIGKILL') return exited;
    try {
      return await wait(graceMs);
    } catch {
      return exited; // wait() SIGKILLed it
    }
  };

  return {
    ns,
    pid: child.pid,
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    line,
    wait,
    stop,
  };
}
