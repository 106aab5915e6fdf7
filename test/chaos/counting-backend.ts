// A grpc-js backend in its own process that holds server streams open and reports how many calls it got and how many
// held streams were cancelled, so a chaos test can watch cancellations arrive at a backend it shares nothing with.

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { echoService } from '../../lab/grpc-peers.ts';

/** What the backend process last reported. */
export interface BackendCounts {
  /** Every call: the held streams and the echoes. */
  calls: number;
  /** Held streams still open. */
  held: number;
  /** Held streams the client side cancelled. */
  cancelled: number;
}

export interface CountingBackend {
  id: string;
  port: number;
  /** Updated as the process reports (at most every REPORT_EVERY_MS, and only on a change). */
  readonly counts: BackendCounts;
  kill(): Promise<void>;
}

const REPORT_EVERY_MS = 50;

/** Starts one backend process on 127.0.0.1 and a free port; resolves once it listens. */
export async function spawnCountingBackend(id: string): Promise<CountingBackend> {
  const child: ChildProcess = spawn(process.execPath, [fileURLToPath(import.meta.url)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const reported: BackendCounts = { calls: 0, held: 0, cancelled: 0 };
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code, signal) => reject(new Error(`backend ${id} exited (${code ?? signal}) before it listened`)));
    lines.on('line', (line) => {
      const report = JSON.parse(line) as { port?: number } & Partial<BackendCounts>;
      if (report.port !== undefined) resolve(report.port);
      if (report.calls !== undefined) Object.assign(reported, report);
    });
  });
  return {
    id,
    port,
    counts: reported,
    kill: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    },
  };
}

const counts: BackendCounts = { calls: 0, held: 0, cancelled: 0 };

/**
 * The backend: Unary echoes (the other client's RPCs); ServerStream holds every call open without answering and counts
 * the ones the client side cancels. Only held calls are counted: grpc-js (1.14) emits 'cancelled' on a server call after
 * it sent the status too, so its event alone does not tell a cancel from a completed call.
 */
function startHoldingServer(): Promise<number> {
  const server = new grpc.Server();
  server.addService(echoService, {
    Unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      counts.calls++;
      callback(null, call.request);
    },
    ServerStream: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      counts.calls++;
      counts.held++;
      call.once('cancelled', () => {
        counts.held--;
        counts.cancelled++;
      });
    },
  } satisfies grpc.UntypedServiceImplementation);
  return new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port)));
  });
}

if (import.meta.main) {
  const port = await startHoldingServer();
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  let last = '';
  setInterval(() => {
    const report = JSON.stringify(counts);
    if (report === last) return;
    last = report;
    process.stdout.write(`${report}\n`);
  }, REPORT_EVERY_MS);
}
