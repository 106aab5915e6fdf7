// A grpc-js echo backend in its own process, so a test can kill it the way a node kills a pod (SIGKILL).

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { startGrpcServer } from './grpc-peers.ts';

export interface BackendProcess {
  port: number;
  child: ChildProcess;
  kill(): Promise<void>;
  /** SIGTERM: the server stops as a gRPC server in a terminating pod does (GOAWAY, in-flight calls finish, at most
   *  5 s), then the process exits. */
  stop(): Promise<void>;
}

/** Starts this file as a child process running one echo server (on 127.0.0.1 and a free port unless `at` says
 *  otherwise: pods have their own IPs and share a port, so tests give each backend a loopback IP of its own). */
export async function spawnBackend(id: string, at: { host?: string; port?: number } = {}): Promise<BackendProcess> {
  const args = [fileURLToPath(import.meta.url), id, at.host ?? '127.0.0.1', String(at.port ?? 0)];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await Promise.race([
    once(child.stdout as NodeJS.ReadableStream, 'data'),
    once(child, 'exit').then(() => {
      throw new Error(`backend ${id} exited before it listened`);
    }),
  ])) as [Buffer];
  const port = Number(line.toString().trim());
  return {
    port,
    child,
    kill: () => signalAndWait(child, 'SIGKILL'),
    stop: () => signalAndWait(child, 'SIGTERM'),
  };
}

async function signalAndWait(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  await exited;
}

if (import.meta.main) {
  const server = await startGrpcServer({ id: process.argv[2], host: process.argv[3], port: Number(process.argv[4]) });
  process.stdout.write(`${server.port}\n`);
  process.on('SIGTERM', () => server.close({ graceMs: 5_000 }).then(() => process.exit(0)));
}
