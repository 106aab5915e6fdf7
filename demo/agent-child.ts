// The demo's agent: agent/main.ts in a child process on this same (pinned) Node, ready when it logs so, stopped by PID.

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { agentNodeFlags } from '../lab/image-recipe.ts';

const AGENT_MAIN = fileURLToPath(new URL('../agent/main.ts', import.meta.url));
const KEPT_LINES = 20;

export interface AgentChild {
  readonly pid: number;
  /** host:port of the proxy listener and of the admin server, as the agent logged them. */
  readonly listen: string;
  readonly admin: string;
  /** Settles when the agent has exited, for whatever reason, with how: "exit 0", "signal SIGKILL". */
  readonly exited: Promise<string>;
  /** The agent's last lines of output (JSON logs and stderr), to show when it fails. */
  recentOutput(): string[];
  /** SIGTERM to its PID (the agent drains, then exits), SIGKILL if it is still there after graceMs. */
  stop(graceMs: number): Promise<string>;
  /** Last resort for a demo that is exiting abnormally: SIGKILL at once, synchronously. */
  killNow(): void;
}

/** Starts the agent with `args`; resolves once it logged "meshlite ready", rejects if it exits or times out first. */
export async function startAgent(args: readonly string[], readyTimeoutMs: number): Promise<AgentChild> {
  // Its own process group (detached): the terminal's Ctrl-C reaches only the demo, which then stops the agent
  // in order, after the load, instead of both racing to shut down.
  const child = spawn(process.execPath, [...agentNodeFlags(), AGENT_MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${process.execPath} ${AGENT_MAIN}`);

  const output: string[] = [];
  const keep = (line: string): void => {
    output.push(line);
    if (output.length > KEPT_LINES) output.shift();
  };
  let done = false;
  const exited = new Promise<string>((resolve) => {
    // 'close' comes after the output streams ended, so recentOutput() is complete by then.
    child.once('close', (code, signal) => {
      done = true;
      resolve(signal === null ? `exit ${code}` : `signal ${signal}`);
    });
  });

  // Both streams are read to their end: a pipe left full would block the agent's logger.
  createInterface({ input: child.stderr }).on('line', keep);
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the agent was not ready within ${readyTimeoutMs} ms`)), readyTimeoutMs);
    createInterface({ input: child.stdout }).on('line', (line) => {
      keep(line);
      const entry = parseLogLine(line);
      if (entry?.msg === 'meshlite ready') {
        clearTimeout(timer);
        resolve(entry);
      }
    });
    void exited.then((how) => {
      clearTimeout(timer);
      reject(new Error(`the agent stopped (${how}) before it was ready`));
    });
  });

  const killNow = (): void => {
    if (done) return;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  };
  let entry: Record<string, unknown>;
  try {
    entry = await ready;
  } catch (error) {
    killNow();
    await exited;
    throw Object.assign(error as Error, { output: output.slice() });
  }

  return {
    pid,
    listen: String(entry.listen),
    admin: String(entry.admin),
    exited,
    recentOutput: () => output.slice(),
    killNow,
    stop: async (graceMs) => {
      if (done) return exited;
      process.kill(pid, 'SIGTERM');
      const timer = setTimeout(killNow, graceMs);
      const how = await exited;
      clearTimeout(timer);
      return how;
    },
  };
}

function parseLogLine(line: string): Record<string, unknown> | null {
  if (!line.startsWith('{')) return null;
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return null;
  }
}
