// A gRPC test.Echo server (plus a plain HTTP echo) built directly on our HTTP/2 server role, and gRPC framing.

import { createHash, type Hash } from 'node:crypto';
import * as net from 'node:net';
import type { Http2Connection } from '../../agent/http2/connection.ts';
import type { Http2ConnectionError, Http2Handler } from '../../agent/http2/handler.ts';
import { type SocketConnectionOptions, serveSocket } from '../../agent/http2/socket-transport.ts';
import type { Stream } from '../../agent/http2/stream.ts';
import { META } from '../../lab/grpc-peers.ts';

const EMPTY = Buffer.alloc(0);
/** ServerStream keeps at most this much response queued; the rest is produced as DATA leaves (onDataSent). */
const SERVER_STREAM_QUEUE = 256 * 1024;

/** The value of the first header `name` in a flat header list, or undefined. */
export function headerValue(headers: readonly string[] | null, name: string): string | undefined {
  if (headers === null) return undefined;
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === name) return headers[i + 1];
  return undefined;
}

/** A gRPC message with its 5-byte prefix (uncompressed). */
export function grpcFrame(message: Buffer): Buffer[] {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  return [prefix, message];
}

/** Splits a gRPC byte stream into messages whatever the DATA frame boundaries are. */
export class MessageDeframer {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private need = -1; // length of the message being read; -1 while the prefix is read
  /** True when no partial message is buffered (a stream that ends otherwise was cut mid-message). */
  get idle(): boolean {
    return this.need < 0 && this.buffered === 0;
  }
  push(data: Buffer, out: Buffer[]): void {
    if (data.length > 0) {
      this.chunks.push(data);
      this.buffered += data.length;
    }
    for (;;) {
      if (this.need < 0) {
        if (this.buffered < 5) return;
        const prefix = this.take(5);
        if (prefix[0] !== 0) throw new Error('compressed gRPC messages are not supported');
        this.need = prefix.readUInt32BE(1);
      }
      if (this.buffered < this.need) return;
      out.push(this.take(this.need));
      this.need = -1;
    }
  }
  private take(n: number): Buffer {
    if (n === 0) return EMPTY;
    this.buffered -= n;
    const head = this.chunks[0];
    if (head.length >= n) {
      if (head.length === n) this.chunks.shift();
      else this.chunks[0] = head.subarray(n);
      return head.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    for (let at = 0; at < n; ) {
      const h = this.chunks[0];
      const k = Math.min(h.length, n - at);
      h.copy(out, at, 0, k);
      at += k;
      if (k === h.length) this.chunks.shift();
      else this.chunks[0] = h.subarray(k);
    }
    return out;
  }
}


export type EchoMethod = 'Unary' | 'ClientStream' | 'ServerStream' | 'BidiStream';

/** What one connection of the server saw; `connection.context` points here. */
export interface ServedConnection {
  readonly index: number;
  readonly connection: Http2Connection;
  readonly server: CoreGrpcServer;
  streamsClosed: number;
  resets: Array<{ id: number; code: number; byPeer: boolean }>;
  goaways: Array<{ lastStreamId: number; code: number }>;
  /** undefined while open; the close error (null when clean) afterwards. */
  closeError: Http2ConnectionError | null | undefined;
}

interface ServerCall {
  grpc: boolean;
  method: EchoMethod | null;
  deframer: MessageDeframer;
  messages: Buffer[];
  count: number;
  bytes: number;
  hash: Hash;
  delayMs: number;
  failCode: number;
  responseHead: string[];
  headSent: boolean;
  timer: NodeJS.Timeout | null;
  streamLeft: number; // ServerStream: messages still to produce
  streamSize: number;
  streamSeq: number;
  pumping: boolean; // onDataSent runs inside sendData: a nested pump would interleave messages
}

export interface CoreGrpcServer {
  readonly port: number;
  readonly id: string;
  /** Open connections; every one ever accepted is in `history` (in order). */
  readonly connections: Set<Http2Connection>;
  readonly history: ServedConnection[];
  readonly calls: { count: number };
  readonly cancelled: { count: number };
  /** Ordered record of lifecycle events, e.g. `c0 stream-close 1`, `c0 close clean`. */
  readonly events: string[];
  /** Graceful shutdown of every open connection; the listener keeps accepting. */
  shutdownConnections(): void;
  goAwayConnections(code: number): void;
  destroyConnections(): void;
  /** Stops listening and destroys every connection. */
  close(): Promise<void>;
}

const served = (connection: Http2Connection): ServedConnection => connection.context as ServedConnection;

function respondHead(connection: Http2Connection, stream: Stream, call: ServerCall): void {
  if (call.headSent) return;
  call.headSent = true;
  connection.sendHeaders(stream, call.responseHead, false);
}

function sendMessage(connection: Http2Connection, stream: Stream, call: ServerCall, message: Buffer): void {
  respondHead(connection, stream, call);
  for (const part of grpcFrame(message)) connection.sendData(stream, part, false);
}

function finish(connection: Http2Connection, stream: Stream, call: ServerCall, code: number, message?: string): void {
  const status = ['grpc-status', String(code)];
  if (message !== undefined) status.push('grpc-message', encodeURIComponent(message));
  if (call.headSent) {
    connection.sendTrailers(stream, [...status, META.servedBy, served(connection).server.id]);
  } else {
    // Trailers-Only: one HEADERS frame with END_STREAM.
    call.headSent = true;
    connection.sendHeaders(stream, [':status', '200', 'content-type', 'application/grpc', ...status], true);
  }
}

/** Produces ServerStream messages until the queue is full or all are out. */
function pumpServerStream(connection: Http2Connection, stream: Stream, call: ServerCall): void {
  if (call.pumping) return;
  call.pumping = true;
  while (call.streamLeft > 0 && stream.queuedBytes < SERVER_STREAM_QUEUE) {
    const message = Buffer.alloc(call.streamSize);
    message.writeUInt32BE(call.streamSeq++, 0);
    call.streamLeft--;
    sendMessage(connection, stream, call, message);
  }
  call.pumping = false;
  if (call.streamLeft === 0) {
    call.streamLeft = -1;
    finish(connection, stream, call, 0);
  }
}

function requestEnded(connection: Http2Connection, stream: Stream, call: ServerCall, trailers: readonly string[] | null): void {
  if (!call.grpc) {
    if (trailers === null) connection.sendData(stream, EMPTY, true);
    else connection.sendTrailers(stream, trailers);
    return;
  }
  if (!call.deframer.idle) return finish(connection, stream, call, 13, 'request ended inside a message');
  if (call.method === 'BidiStream') return finish(connection, stream, call, 0);
  const respond = (): void => {
    call.timer = null;
    if (call.failCode !== 0) return finish(connection, stream, call, call.failCode, `requested failure ${call.failCode}`);
    if (call.method === 'Unary') {
      if (call.count !== 1) return finish(connection, stream, call, 13, `unary call with ${call.count} messages`);
      sendMessage(connection, stream, call, call.messages[0]);
      return finish(connection, stream, call, 0);
    }
    if (call.method === 'ClientStream') {
      const summary = Buffer.alloc(8);
      summary.writeUInt32BE(call.count, 0);
      summary.writeUInt32BE(call.bytes, 4);
      sendMessage(connection, stream, call, Buffer.concat([summary, call.hash.digest()]));
      return finish(connection, stream, call, 0);
    }
    const request = call.messages[0];
    if (call.count !== 1 || request.length !== 8) return finish(connection, stream, call, 3, 'ServerStream wants 8 bytes');
    call.streamLeft = request.readUInt32BE(0);
    call.streamSize = Math.max(4, request.readUInt32BE(4));
    respondHead(connection, stream, call);
    pumpServerStream(connection, stream, call);
  };
  if (call.delayMs > 0) call.timer = setTimeout(respond, call.delayMs);
  else respond();
}

const serverHandler: Http2Handler = {
  onHeaders(connection, stream, headers, endStream, isTrailers) {
    if (isTrailers) return requestEnded(connection, stream, stream.context as ServerCall, headers);
    const info = served(connection);
    const path = headerValue(headers, ':path') ?? '';
    const grpc = (headerValue(headers, 'content-type') ?? '').startsWith('application/grpc');
    const name = path.startsWith('/test.Echo/') ? path.slice('/test.Echo/'.length) : '';
    const method = ['Unary', 'ClientStream', 'ServerStream', 'BidiStream'].includes(name) ? (name as EchoMethod) : null;
    const head = grpc
      ? [':status', '200', 'content-type', 'application/grpc', META.servedBy, info.server.id]
      : [':status', '200', 'content-type', 'application/octet-stream', 'x-request-method', headerValue(headers, ':method') ?? ''];
    for (let i = 0; i < headers.length; i += 2) if (headers[i].startsWith(META.echoPrefix)) head.push(headers[i], headers[i + 1]);
    const call: ServerCall = {
      grpc,
      method,
      deframer: new MessageDeframer(),
      messages: [],
      count: 0,
      bytes: 0,
      hash: createHash('sha256'),
      delayMs: Number(headerValue(headers, META.delayMs) ?? 0),
      failCode: Number(headerValue(headers, META.failCode) ?? 0),
      responseHead: head,
      headSent: false,
      timer: null,
      streamLeft: 0,
      streamSize: 0,
      streamSeq: 0,
      pumping: false,
    };
    stream.context = call;
    info.server.calls.count++;
    if (grpc && method === null) return finish(connection, stream, call, 12, `unknown path ${path}`);
    // HTTP echo and bidi answer at once so the response streams while the request is still arriving.
    if (!grpc || method === 'BidiStream') respondHead(connection, stream, call);
    if (endStream) requestEnded(connection, stream, call, null);
  },
  onData(connection, stream, data, endStream) {
    const call = stream.context as ServerCall;
    if (!call.grpc) {
      // Echoed by reference; consumed once framed out (onDataSent), so the client's upload follows our download.
      connection.sendData(stream, data, false);
    } else {
      const arrived: Buffer[] = [];
      try {
        call.deframer.push(data, arrived);
      } catch (error) {
        connection.consume(stream, data.length);
        return finish(connection, stream, call, 13, (error as Error).message);
      }
      connection.consume(stream, data.length);
      for (const message of arrived) {
        call.count++;
        call.bytes += message.length;
        if (call.method === 'BidiStream') sendMessage(connection, stream, call, message);
        else if (call.method === 'ClientStream') call.hash.update(message);
        else call.messages.push(message);
      }
    }
    if (endStream) requestEnded(connection, stream, call, null);
  },
  onStreamReset(connection, stream, code, byPeer) {
    const info = served(connection);
    const call = stream.context as ServerCall | null;
    // Bytes received and never consumed are given back to the connection window by the connection itself.
    if (call !== null && call.timer !== null) clearTimeout(call.timer);
    if (byPeer) info.server.cancelled.count++;
    info.resets.push({ id: stream.id, code, byPeer });
    info.server.events.push(`c${info.index} stream-reset ${stream.id} ${code}`);
  },
  onStreamClose(connection, stream) {
    const info = served(connection);
    info.streamsClosed++;
    info.server.events.push(`c${info.index} stream-close ${stream.id}`);
  },
  onDataSent(connection, stream, bytes) {
    const call = stream.context as ServerCall;
    if (!call.grpc) {
      connection.consume(stream, bytes);
    } else if (call.streamLeft > 0) {
      pumpServerStream(connection, stream, call);
    }
  },
  onGoaway(connection, lastStreamId, code) {
    served(connection).goaways.push({ lastStreamId, code });
  },
  onRemoteSettings() {},
  onConnectionClose(connection, error) {
    const info = served(connection);
    info.closeError = error;
    info.server.connections.delete(connection);
    info.server.events.push(`c${info.index} close ${error === null ? 'clean' : error.message}`);
  },
};

/** A test.Echo server (and an HTTP echo for non-gRPC requests) on our server role. 127.0.0.1, ephemeral port. */
export async function startCoreGrpcServer(options: { id?: string; connection?: SocketConnectionOptions } = {}): Promise<CoreGrpcServer> {
  const listener = net.createServer();
  const sockets = new Set<net.Socket>();
  const server: CoreGrpcServer = {
    port: 0,
    id: options.id ?? 'core',
    connections: new Set(),
    history: [],
    calls: { count: 0 },
    cancelled: { count: 0 },
    events: [],
    shutdownConnections: () => {
      for (const c of [...server.connections]) c.shutdown();
    },
    goAwayConnections: (code) => {
      for (const c of [...server.connections]) c.goAway(code);
    },
    destroyConnections: () => {
      for (const c of [...server.connections]) c.destroy();
    },
    close: async () => {
      const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
      server.destroyConnections();
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
  listener.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const connection = serveSocket(socket, serverHandler, options.connection);
    const info: ServedConnection = {
      index: server.history.length,
      connection,
      server,
      streamsClosed: 0,
      resets: [],
      goaways: [],
      closeError: undefined,
    };
    connection.context = info;
    server.history.push(info);
    server.connections.add(connection);
  });
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(0, '127.0.0.1', () => resolve());
  });
  (server as { port: number }).port = (listener.address() as net.AddressInfo).port;
  return server;
}
