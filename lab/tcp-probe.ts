// One TCP connection attempt from inside a namespace: connected, refused or timed out (e.g. from another node).

import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { NamespaceSpawner } from './netns-process.ts';

export type TcpOutcome = 'connected' | 'refused' | 'timeout' | 'reset' | 'unreachable';

export interface TcpProbeResult {
  outcome: TcpOutcome;
  /** The socket error code (ECONNREFUSED, EHOSTUNREACH, …) when it did not connect. */
  code?: string;
}

/** Tries `host:port` from namespace `ns` (a node's or a pod's); the connection is closed at once if it opens. */
export async function probeTcp(
  spawn: NamespaceSpawner,
  ns: string,
  host: string,
  port: number,
  timeoutMs = 2_000,
): Promise<TcpProbeResult> {
  const probe = spawn(ns, process.execPath, [fileURLToPath(import.meta.url), host, String(port), String(timeoutMs)]);
  const exit = await probe.wait(timeoutMs + 10_000);
  if (exit.code !== 0) throw new Error(`TCP probe in ${ns} exited ${exit.code ?? exit.signal}: ${probe.stderr()}`);
  return JSON.parse(probe.stdout()) as TcpProbeResult;
}

const OUTCOMES: Record<string, TcpOutcome> = {
  ECONNREFUSED: 'refused',
  ECONNRESET: 'reset',
  EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'unreachable',
};

if (import.meta.main) {
  const [host, port, timeoutMs] = process.argv.slice(2);
  const result = await new Promise<TcpProbeResult>((resolve) => {
    const socket = connect({ host, port: Number(port) });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ outcome: 'timeout' });
    }, Number(timeoutMs));
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ outcome: 'connected' });
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ outcome: OUTCOMES[err.code ?? ''] ?? 'unreachable', code: err.code ?? String(err) });
    });
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
