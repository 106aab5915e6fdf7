// Benchmark backend on @grpc/grpc-js (a peer nobody here wrote, DESIGN.md decision 15): one registered unary method,
// helloworld.Greeter/SayHello, answering every call with a fixed 32-byte reply. Like bench/backend.ts it prints
// {"grpcPort","controlPort"} once it listens and answers GET /count on the control port; one process per backend.

import * as grpc from '@grpc/grpc-js';
import type { BackendReady } from './backend.ts';
import { announceReady, serveCounts } from './backend-ready.ts';
import type { ServedCounts } from './targets.ts';

/** The same reply as bench/backend.ts's REPLY_PAYLOAD_BYTES (the harness checks replies by their size). */
const REPLY_PAYLOAD_BYTES = 32;

const passthrough = (b: Buffer): Buffer => b;
const greeter = {
  SayHello: {
    path: '/helloworld.Greeter/SayHello',
    requestStream: false,
    responseStream: false,
    requestSerialize: passthrough,
    requestDeserialize: passthrough,
    responseSerialize: passthrough,
    responseDeserialize: passthrough,
  },
} satisfies grpc.ServiceDefinition;

const REPLY = Buffer.alloc(REPLY_PAYLOAD_BYTES, 0x61);
// grpc-js does not tell its application about connections: null, not a made-up 0.
const counts: ServedCounts = { requests: 0, resets: 0, connections: null };

function bindGrpc(server: grpc.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port)));
  });
}

async function main(): Promise<void> {
  const server = new grpc.Server();
  server.addService(greeter, {
    SayHello(_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) {
      counts.requests++;
      callback(null, REPLY);
    },
  });
  const grpcPort = await bindGrpc(server);
  const ready: BackendReady = { grpcPort, controlPort: await serveCounts(counts) };
  announceReady(ready);
}

if (import.meta.main) await main();
