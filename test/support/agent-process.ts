// Runs the real agent (agent/main.ts) as a child process, as users do, and reads its addresses from the log.

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { agentNodeFlags } from '../../lab/image-recipe.ts';

const MAIN = fileURLToPath(new URL('../../agent/main.ts', import.meta.url));

export interface AgentProcess {
  child: ChildProcess;
  /** "127.0.0.1:PORT" of the proxy listener and of the admin server. */
  listen: string;
  admin: string;
  /** Every log line so far, parsed. */
  logs: Array<Record<string, unknown>>;
  /** SIGTERM and wait for the exit; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** The log line the agent writes once it serves, and the one it writes as soon as /healthz answers. */
export const READY_MESSAGE = 'meshlite ready';
export const HEALTH_UP_MESSAGE = 'meshlite starting: health and metrics endpoints listening';

/**
 * Starts the agent with `args`; resolves once it logged `until` (by default "meshlite ready"), rejects if it exits
 * first. Waiting for HEALTH_UP_MESSAGE instead gives an agent whose `listen` is not known yet ("undefined").
 */
export async function startAgent(args: string[], timeoutMs = 15_000, until = READY_MESSAGE): Promise<AgentProcess> {
  const child = spawn(process.execPath, [...agentNodeFlags(), MAIN, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  let buffered = '';
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`agent not ready within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let newline = buffered.indexOf('\n');
      while (newline >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        newline = buffered.indexOf('\n');
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          logs.push(entry);
          if (entry.msg === until) {
            clearTimeout(timer);
            resolve(entry);
          }
        } catch {
          // Not a log line.
        }
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`agent exited with ${code} before it was ready; stderr: ${stderr}`));
    });
  });
  const entry = await ready;
  return {
    child,
    listen: String(entry.listen),
    admin: String(entry.admin),
    logs,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      return code;
    },
  };
}

/** Runs the agent expecting it to fail at start; resolves with its exit code and stderr. */
export async function runAgentExpectingFailure(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [...agentNodeFlags(), MAIN, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stderr };
}
