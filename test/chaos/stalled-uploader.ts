// A client process that starts many client-streaming uploads (grpc-js, spread over several channels) and writes each
// one message at a time, the next once the previous was sent, so that it holds little itself; it reports the bytes
// its uploads got out and is killed when the test is done.

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type * as grpc from '@grpc/grpc-js';
import { echoService, makeEchoClient } from '../../lab/grpc-peers.ts';

const MESSAGE_BYTES = 16 * 1024;
/** Streams per channel (one connection each), below the agent's 1000 concurrent streams. */
const STREAMS_PER_CHANNEL = 250;

export interface StalledUploader {
  /** What the process last reported: calls started, bytes its writes got out, calls that ended (they should not). */
  readonly progress: { started: number; sentBytes: number; ended: number };
  kill(): Promise<void>;
}

export async function startStalledUploader(target: string, authority: string, streams: number, bytesPerStream: number): Promise<StalledUploader> {
  const child: ChildProcess = spawn(process.execPath, [fileURLToPath(import.meta.url), target, authority, String(streams), String(bytesPerStream)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const progress = { started: 0, sentBytes: 0, ended: 0 };
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => Object.assign(progress, JSON.parse(line)));
  await Promise.race([
    once(child.stdout as NodeJS.ReadableStream, 'data'),
    once(child, 'exit').then(([code, signal]) => {
      throw new Error(`uploader exited (${code ?? signal}) before it started`);
    }),
  ]);
  return {
    progress,
    kill: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    },
  };
}

if (import.meta.main) {
  const [target, authority, streams, bytesPerStream] = [process.argv[2], process.argv[3], Number(process.argv[4]), Number(process.argv[5])];
  const channels = Array.from({ length: Math.ceil(streams / STREAMS_PER_CHANNEL) }, () =>
    makeEchoClient(target, { 'grpc.default_authority': authority, 'grpc.use_local_subchannel_pool': 1 }),
  );
  const progress = { started: 0, sentBytes: 0, ended: 0 };
  const message = Buffer.alloc(MESSAGE_BYTES, 7);
  const upload = async (client: grpc.Client): Promise<void> => {
    const method = echoService.ClientStream;
    const call = client.makeClientStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, () => {
      progress.ended++;
    });
    call.on('error', () => {});
    progress.started++;
    for (let sent = 0; sent < bytesPerStream; sent += MESSAGE_BYTES) {
      await new Promise<void>((resolve) => call.write(message, () => resolve()));
      progress.sentBytes += MESSAGE_BYTES;
    }
    call.end();
  };
  for (let i = 0; i < streams; i++) upload(channels[i % channels.length]).catch(() => {});
  const report = (): void => {
    process.stdout.write(`${JSON.stringify(progress)}\n`);
  };
  report();
  setInterval(report, 250);
}
