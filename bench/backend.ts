// Benchmark backend: a minimal gRPC unary responder on agent/http2 that counts requests; one process per backend.

import net from 'node:net';
import type { Http2Connection } from '../agent/http2/connection.ts';
import type { Http2Handler } from '../agent/http2/handler.ts';
import { serveSocket } from '../agent/http2/socket-transport.ts';
import { announceReady, serveCounts } from './backend-ready.ts';
import type { Stream } from '../agent/http2/stream.ts';

/** Payload bytes of the reply message (after its 5-byte gRPC prefix); the harness checks h2load's data bytes with it. */
export const REPLY_PAYLOAD_BYTES = 32;

/** What a backend prints as its first stdout line once both of its ports listen. */
export interface BackendReady {
  grpcPort: number;
  controlPort: number;
}

/** What GET /count on the control port answers. */
export interface BackendCounts {
  /** Requests answered with grpc-status 0. */
  requests: number;
  /** Streams that ended by a reset before they were answered. */
  resets: number;
  connections: number;
}

const RESPONSE_HEAD = [':status', '200', 'content-type', 'application/grpc'];
const TRAILERS = ['grpc-status', '0'];
const REPLY = Buffer.alloc(5 + REPLY_PAYLOAD_BYTES, 0x61);
REPLY[0] = 0;
REPLY.writeUInt32BE(REPLY_PAYLOAD_BYTES, 1);

const counts: BackendCounts = { requests: 0, resets: 0, connections: 0 };

function respond(connection: Http2Connection, stream: Stream): void {
  connection.sendHeaders(stream, RESPONSE_HEAD, false);
  // The same buffer for every reply: the connection keeps it by reference and never changes it.
  connection.sendData(stream, REPLY, false);
  connection.sendTrailers(stream, TRAILERS);
  counts.requests++;
}

const handler: Http2Handler = {
  onHeaders(connection, stream, _headers, endStream, isTrailers) {
    if (endStream || isTrailers) respond(connection, stream);
  },
  onData(connection, stream, data, endStream) {
    connection.consume(stream, data.length);
    if (endStream) respond(connection, stream);
  },
  onStreamReset() {
    counts.resets++;
  },
  onStreamClose() {},
  onDataSent() {},
  onGoaway() {},
  onRemoteSettings() {},
  onConnectionClose() {},
};

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
  });
}

async function main(): Promise<void> {
  const grpc = net.createServer((socket) => {
    counts.connections++;
    serveSocket(socket, handler);
  });
  const ready: BackendReady = { grpcPort: await listen(grpc), controlPort: await serveCounts(counts) };
  announceReady(ready);
}

if (import.meta.main) await main();
