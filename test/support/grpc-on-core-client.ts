// A minimal HTTP/2 and gRPC client built directly on our HTTP/2 client role, for interop tests against real servers.

import * as net from 'node:net';
import type { Http2Connection } from '../../agent/http2/connection.ts';
import type { Http2ConnectionError, Http2Handler } from '../../agent/http2/handler.ts';
import { type SocketConnectionOptions, connectSocket } from '../../agent/http2/socket-transport.ts';
import type { Stream } from '../../agent/http2/stream.ts';
import { type EchoMethod, MessageDeframer, grpcFrame, headerValue } from './grpc-on-core.ts';

const EMPTY = Buffer.alloc(0);

/** One request on our client role: the response as it arrives, and `done` once the stream closed or was reset. */
export class CoreRequest {
  readonly stream: Stream;
  readonly connection: Http2Connection;
  headers: readonly string[] | null = null;
  trailers: readonly string[] | null = null;
  readonly chunks: Buffer[] = [];
  /** Complete gRPC messages received (gRPC requests only). */
  readonly messages: Buffer[] = [];
  /** null when the stream closed normally. */
  resetCode: number | null = null;
  resetByPeer = false;
  finished = false;
  readonly done: Promise<CoreRequest>;
  readonly deframer: MessageDeframer | null;
  private resolveDone!: (r: CoreRequest) => void;
  private readIndex = 0;
  private wake: (() => void) | null = null;

  constructor(connection: Http2Connection, stream: Stream, grpc: boolean) {
    this.connection = connection;
    this.stream = stream;
    this.deframer = grpc ? new MessageDeframer() : null;
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve;
    });
  }
  get status(): number {
    return Number(headerValue(this.headers, ':status') ?? 0);
  }
  /** grpc-status from the trailers, or from the headers of a Trailers-Only response; null if absent. */
  get grpcStatus(): number | null {
    const value = headerValue(this.trailers, 'grpc-status') ?? headerValue(this.headers, 'grpc-status');
    return value === undefined ? null : Number(value);
  }
  get body(): Buffer {
    return Buffer.concat(this.chunks);
  }
  send(data: Buffer, end = false): void {
    this.connection.sendData(this.stream, data, end);
  }
  sendMessage(message: Buffer, end = false): void {
    for (const part of grpcFrame(message)) this.connection.sendData(this.stream, part, false);
    if (end) this.connection.sendData(this.stream, EMPTY, true);
  }
  end(): void {
    this.connection.sendData(this.stream, EMPTY, true);
  }
  /** The next gRPC message; rejects when the stream ends without one. */
  async nextMessage(): Promise<Buffer> {
    while (this.readIndex >= this.messages.length) {
      if (this.finished) throw new Error(`stream ${this.stream.id} ended (reset ${this.resetCode}) without another message`);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
    return this.messages[this.readIndex++];
  }
  received(data: Buffer): void {
    if (this.deframer === null) this.chunks.push(data);
    else this.deframer.push(data, this.messages);
    this.notify();
  }
  complete(resetCode: number | null, byPeer: boolean): void {
    if (this.finished) return;
    this.finished = true;
    this.resetCode = resetCode;
    this.resetByPeer = byPeer;
    this.notify();
    this.resolveDone(this);
  }
  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}

const request = (stream: Stream): CoreRequest => stream.context as CoreRequest;
const client = (connection: Http2Connection): CoreClient => connection.context as CoreClient;

const clientHandler: Http2Handler = {
  onHeaders(_connection, stream, headers, _endStream, isTrailers) {
    if (isTrailers) request(stream).trailers = headers;
    else request(stream).headers = headers;
  },
  onData(connection, stream, data) {
    connection.consume(stream, data.length);
    request(stream).received(data);
  },
  onStreamReset(_connection, stream, code, byPeer) {
    request(stream).complete(code, byPeer);
  },
  onStreamClose(_connection, stream) {
    request(stream).complete(null, false);
  },
  onDataSent() {},
  onGoaway(connection, lastStreamId, code) {
    client(connection).goaways.push({ lastStreamId, code });
  },
  onRemoteSettings(connection) {
    client(connection).settingsReceived();
  },
  onConnectionClose(connection, error) {
    client(connection).connectionClosed(error);
  },
};

/** A client connection on our client role, with helpers for plain HTTP requests and gRPC calls. */
export class CoreClient {
  readonly connection: Http2Connection;
  readonly socket: net.Socket;
  readonly authority: string;
  readonly goaways: Array<{ lastStreamId: number; code: number }> = [];
  /** undefined while open; the close error (null when clean) afterwards. */
  closeError: Http2ConnectionError | null | undefined = undefined;
  readonly ready: Promise<void>;
  readonly closed: Promise<Http2ConnectionError | null>;
  private markReady!: () => void;
  private markClosed!: (error: Http2ConnectionError | null) => void;

  private constructor(port: number, options: SocketConnectionOptions) {
    this.authority = `127.0.0.1:${port}`;
    this.ready = new Promise((resolve) => {
      this.markReady = resolve;
    });
    this.closed = new Promise((resolve) => {
      this.markClosed = resolve;
    });
    this.socket = net.connect(port, '127.0.0.1');
    this.connection = connectSocket(this.socket, clientHandler, options);
    this.connection.context = this;
  }

  /** Connects and waits for the server's SETTINGS (so its limits are known). */
  static async connect(port: number, options: SocketConnectionOptions = {}): Promise<CoreClient> {
    const c = new CoreClient(port, options);
    await Promise.race([c.ready, c.closed.then((e) => Promise.reject(new Error(`connection closed: ${e?.message}`)))]);
    return c;
  }
  settingsReceived(): void {
    this.markReady();
  }
  connectionClosed(error: Http2ConnectionError | null): void {
    this.closeError = error;
    this.markClosed(error);
  }

  /** Opens a stream; throws when the connection may not open one (check canOpenStream() first when that matters). */
  request(headers: readonly string[], body: Buffer | null, end: boolean, grpc = false): CoreRequest {
    const stream = this.connection.openStream(headers, body === null && end);
    if (stream === null) throw new Error('openStream refused: canOpenStream() is false');
    const r = new CoreRequest(this.connection, stream, grpc);
    stream.context = r;
    if (body !== null) r.send(body, end);
    return r;
  }
  /** Plain HTTP request with the usual pseudo-headers. */
  http(method: string, path: string, body: Buffer | null, extra: readonly string[] = [], end = true): CoreRequest {
    const head = [':method', method, ':scheme', 'http', ':path', path, ':authority', this.authority, ...extra];
    return this.request(head, body, end);
  }
  /** Starts a test.Echo call; send messages with sendMessage() and end() it. */
  grpc(method: EchoMethod, metadata: Record<string, string> = {}, timeoutMs?: number): CoreRequest {
    const head = [':method', 'POST', ':scheme', 'http', ':path', `/test.Echo/${method}`, ':authority', this.authority];
    head.push('content-type', 'application/grpc', 'te', 'trailers');
    if (timeoutMs !== undefined) head.push('grpc-timeout', `${timeoutMs}m`);
    for (const [k, v] of Object.entries(metadata)) head.push(k, v);
    return this.request(head, null, false, true);
  }
  /** Sends `messages` then ends the request; resolves when the call is over. */
  async call(method: EchoMethod, messages: Buffer[], metadata: Record<string, string> = {}): Promise<CoreRequest> {
    const r = this.grpc(method, metadata);
    for (let i = 0; i < messages.length; i++) r.sendMessage(messages[i], i === messages.length - 1);
    if (messages.length === 0) r.end();
    return r.done;
  }
  close(): void {
    this.connection.destroy();
    this.socket.destroy();
  }
}
