// A grpc-js backend in its own process whose ClientStream handler never reads the request stream nor answers: an
// upload into it stalls once the windows between it and the client are full. It reports how many calls it holds.

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { echoService } from '../../lab/grpc-peers.ts';

export interface NonReadingBackend {
  port: number;
  /** Calls held open (updated as the process reports). */
  readonly counts: { held: number };
  kill(): Promise<void>;
}

export async function spawnNonReadingBackend(): Promise<NonReadingBackend> {
  const child: ChildProcess = spawn(process.execPath, [fileURLToPath(import.meta.url)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const counts = { held: 0 };
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code, signal) => reject(new Error(`non-reading backend exited (${code ?? signal}) before it listened`)));
    lines.on('line', (line) => {
      const report = JSON.parse(line) as { port?: number; held?: number };
      if (report.port !== undefined) resolve(report.port);
      if (report.held !== undefined) counts.held = report.held;
    });
  });
  return {
    port,
    counts,
    kill: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    },
  };
}

if (import.meta.main) {
  let held = 0;
  const server = new grpc.Server();
  server.addService(echoService, {
    Unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => callback(null, call.request),
    // Never reads, never answers: the request stream stays paused with no 'data' listener.
    ClientStream: (call: grpc.ServerReadableStream<Buffer, Buffer>) => {
      held++;
      call.pause();
      call.once('cancelled', () => held--);
    },
    ServerStream: (call: grpc.ServerWritableStream<Buffer, Buffer>) => call.end(),
    BidiStream: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => call.end(),
  } satisfies grpc.UntypedServiceImplementation);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound)));
  });
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  let last = -1;
  setInterval(() => {
    if (held === last) return;
    last = held;
    process.stdout.write(`${JSON.stringify({ held })}\n`);
  }, 200);
}
