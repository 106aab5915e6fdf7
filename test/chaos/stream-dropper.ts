// A client process that opens server streams (which test/chaos/counting-backend.ts holds open), then drops every one
// of them at once: killed (SIGKILL), as a crashed or OOM-killed client pod, or cancelling them all, as a client whose
// request context ends.

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { echoService, encodeServerStreamRequest, META, makeEchoClient } from '../../lab/grpc-peers.ts';

const passthrough = (b: Buffer): Buffer => b;
/** Longer than any test: the streams stay open until dropped. */
const HOLD_MS = 3_600_000;

/** Streams per channel: each channel is its own connection, below the agent's 1000 concurrent streams. */
const STREAMS_PER_CHANNEL = 500;

export interface StreamDropper {
  child: ChildProcess;
  /** SIGKILL, and wait for the exit. */
  kill(): Promise<void>;
  /** Every call cancelled at once (RST_STREAM(CANCEL) each, as a client cancelling its calls' context does); the
   *  process lives on. Resolves once it says it has cancelled them. */
  cancelAll(): Promise<void>;
}

/** Starts the client; resolves once it has started every call (the test watches the backends to see them arrive). */
export async function startStreamDropper(target: string, authority: string, streams: number): Promise<StreamDropper> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), target, authority, String(streams)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await Promise.race([
    once(child.stdout as NodeJS.ReadableStream, 'data'),
    once(child, 'exit').then(([code, signal]) => {
      throw new Error(`stream dropper exited (${code ?? signal}) before it started its calls`);
    }),
  ]);
  return {
    child,
    cancelAll: async () => {
      const said = once(child.stdout as NodeJS.ReadableStream, 'data');
      child.kill('SIGUSR2');
      await said;
    },
    kill: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    },
  };
}

if (import.meta.main) {
  const [target, authority, count] = [process.argv[2], process.argv[3], Number(process.argv[4])];
  const channels = Array.from({ length: Math.ceil(count / STREAMS_PER_CHANNEL) }, () =>
    makeEchoClient(target, { 'grpc.default_authority': authority, 'grpc.use_local_subchannel_pool': 1 }),
  );
  const request = encodeServerStreamRequest(1, 8);
  // The grpc-js counting backend holds every stream by itself; a grpc-go echo server holds it this long.
  const hold = new grpc.Metadata();
  hold.set(META.delayMs, String(HOLD_MS));
  const calls = Array.from({ length: count }, (_, i) => {
    const call = channels[i % channels.length].makeServerStreamRequest(echoService.ServerStream.path, passthrough, passthrough, request, hold);
    // The outcome does not matter: every call is dropped while still open.
    call.on('error', () => {});
    call.on('data', () => {});
    return call;
  });
  process.on('SIGUSR2', () => {
    for (const call of calls) call.cancel();
    process.stdout.write('cancelled\n');
  });
  process.stdout.write('started\n');
  setInterval(() => {}, 60_000);
}
