// A gRPC endpoint on loopback that misbehaves at random, for relay fuzzing: answers, trailers-only, resets of every
// code, REFUSED_STREAM, GOAWAY (its own and raw ones naming odd streams), connections closed mid-response, streams
// never answered, request bodies never read; or no endpoint at all (refused, silent, HTTP/1.1).

import net from 'node:net';
import type { Http2Connection } from '../../agent/http2/connection.ts';
import type { Http2ConnectionError, Http2Handler } from '../../agent/http2/handler.ts';
import { serveSocket } from '../../agent/http2/socket-transport.ts';
import type { Stream } from '../../agent/http2/stream.ts';
import type { FuzzRandom } from './fuzz-random.ts';
import { goaway } from './raw-frames.ts';

export type EndpointKind = 'live' | 'refused' | 'silent' | 'http1';

export type RequestBehaviour =
  | 'answer'
  | 'answer-now'
  | 'trailers-only'
  | 'reset'
  | 'refuse'
  | 'reset-mid'
  | 'end-then-reset'
  | 'goaway-answer'
  | 'goaway-raw'
  | 'goaway-error'
  | 'close-mid'
  | 'close-now'
  | 'hang'
  | 'never-read'
  | 'pause-socket'
  | 'data-first';

const BEHAVIOURS: readonly RequestBehaviour[] = [
  'answer', 'answer', 'answer', 'answer', 'answer-now', 'trailers-only', 'trailers-only', 'reset', 'refuse', 'refuse',
  'reset-mid', 'end-then-reset', 'goaway-answer', 'goaway-raw', 'goaway-error', 'close-mid', 'close-now', 'hang',
  'never-read', 'pause-socket',
];

interface EndpointStream {
  behaviour: RequestBehaviour;
  answered: boolean;
}

interface EndpointConnection {
  socket: net.Socket;
  /** The endpoint itself ended the connection with an error (goaway-error): not the agent's doing. */
  ownError: boolean;
  /** It stopped reading (pause-socket) or sent a GOAWAY its core does not know of (goaway-raw): streams the agent
   *  let go of legitimately may stay open here. */
  unreliable: boolean;
}

export interface FuzzEndpointOptions {
  /** Also play a server that sends response DATA before its HEADERS (a malformed response). */
  dataFirst: boolean;
}

/** One endpoint: a listening socket and the HTTP/2 server role (agent/http2) with a random behaviour per request. */
export class FuzzEndpoint implements Http2Handler<EndpointConnection, EndpointStream> {
  readonly kind: EndpointKind;
  address = '';
  /** Requests it saw (request heads), by behaviour. */
  readonly seen = new Map<RequestBehaviour, number>();
  /** Connection errors this endpoint detected in what the agent sent (the agent broke HTTP/2 towards it). */
  readonly agentErrors: string[] = [];
  readonly connections = new Set<Http2Connection<EndpointConnection, EndpointStream>>();
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  private readonly rng: FuzzRandom;
  private readonly behaviours: readonly RequestBehaviour[];
  private readonly maxConcurrentStreams: number;
  private readonly initialWindowSize: number;

  constructor(rng: FuzzRandom, kind: EndpointKind, options: FuzzEndpointOptions) {
    this.rng = rng;
    this.kind = kind;
    // Some endpoints are mostly well-behaved, some mostly hostile.
    const mix = rng.int(3);
    this.behaviours = mix === 0 ? ['answer', 'answer', 'answer', 'trailers-only', rng.pick(BEHAVIOURS)] : [...BEHAVIOURS, ...(options.dataFirst ? ['data-first' as const] : [])];
    this.maxConcurrentStreams = rng.pick([1, 2, 100]);
    this.initialWindowSize = rng.pick([100, 65_535, 1 << 20]);
  }

  async start(): Promise<void> {
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    this.address = `127.0.0.1:${port}`;
    if (this.kind === 'refused') await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Closes the listener and every accepted socket. */
  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    const server = this.server;
    if (server?.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    if (this.kind === 'silent') return;
    if (this.kind === 'http1') {
      socket.once('data', () => socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n'));
      return;
    }
    const connection = serveSocket(socket, this, {
      settings: { maxConcurrentStreams: this.maxConcurrentStreams, initialWindowSize: this.initialWindowSize },
      creditConnectionOnReceive: this.rng.chance(0.5),
    });
    connection.context = { socket, ownError: false, unreliable: false };
    this.connections.add(connection);
  }

  onHeaders(connection: Http2Connection<EndpointConnection, EndpointStream>, stream: Stream<EndpointStream>, _headers: readonly string[], endStream: boolean, isTrailers: boolean): void {
    if (!isTrailers) {
      const behaviour = this.rng.pick(this.behaviours);
      this.seen.set(behaviour, (this.seen.get(behaviour) ?? 0) + 1);
      stream.context = { behaviour, answered: false };
      this.early(connection, stream, behaviour);
    }
    if (endStream) this.requestEnded(connection, stream);
  }

  onData(connection: Http2Connection<EndpointConnection, EndpointStream>, stream: Stream<EndpointStream>, data: Buffer, endStream: boolean): void {
    const state = stream.context;
    if (state?.behaviour !== 'never-read') connection.consume(stream, data.length);
    if (endStream) this.requestEnded(connection, stream);
  }

  onStreamReset(): void {}
  onStreamClose(): void {}
  onDataSent(): void {}
  onGoaway(): void {}
  onRemoteSettings(): void {}
  onConnectionClose(connection: Http2Connection<EndpointConnection, EndpointStream>, error: Http2ConnectionError | null): void {
    if (error !== null && !error.byPeer && connection.context?.ownError !== true) this.agentErrors.push(`${error.code}: ${error.message}`);
  }

  /** What a behaviour does as soon as the request head arrives. */
  private early(connection: Http2Connection<EndpointConnection, EndpointStream>, stream: Stream<EndpointStream>, behaviour: RequestBehaviour): void {
    const socket = connection.context?.socket;
    const rng = this.rng;
    switch (behaviour) {
      case 'answer-now':
        return this.answer(connection, stream);
      case 'trailers-only':
        this.markAnswered(stream);
        return connection.sendHeaders(stream, [':status', '200', 'content-type', 'application/grpc', 'grpc-status', rng.pick(['0', '5', '14']), 'grpc-message', 'endpoint'], true);
      case 'reset':
        return connection.resetStream(stream, rng.pick([0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 0x99]));
      case 'refuse':
        return connection.resetStream(stream, 7);
      case 'reset-mid':
        connection.sendHeaders(stream, [':status', '200', 'content-type', 'application/grpc'], false);
        connection.sendData(stream, rng.bytes(rng.int(3000)), false);
        connection.flush();
        return void setImmediate(() => connection.resetStream(stream, rng.pick([0, 2, 8, 11])));
      case 'goaway-answer':
        connection.goAway(0);
        return;
      case 'goaway-raw':
        // A buggy server: a GOAWAY its own core did not make, naming any stream (below, at or above this one).
        if (connection.context !== null) connection.context.unreliable = true;
        connection.flush();
        socket?.write(goaway(rng.pick([0, stream.id - 2, stream.id, stream.id + 2, 2 ** 31 - 1, 2]) >>> 0, rng.pick([0, 0, 2])));
        return;
      case 'goaway-error':
        if (connection.context !== null) connection.context.ownError = true;
        return connection.goAway(rng.pick([1, 2, 11]));
      case 'close-mid':
        connection.sendHeaders(stream, [':status', '200', 'content-type', 'application/grpc'], false);
        connection.sendData(stream, rng.bytes(rng.int(5000)), false);
        connection.flush();
        return void setImmediate(() => socket?.destroy());
      case 'close-now':
        return void socket?.destroy();
      case 'pause-socket':
        if (connection.context !== null) connection.context.unreliable = true;
        return void socket?.pause();
      case 'data-first':
        connection.sendData(stream, rng.bytes(10), false);
        return;
      default:
        return;
    }
  }

  /** The request's END_STREAM arrived: behaviours that answer a complete request do it now. */
  private requestEnded(connection: Http2Connection<EndpointConnection, EndpointStream>, stream: Stream<EndpointStream>): void {
    const state = stream.context;
    if (state === null || state.answered) return;
    switch (state.behaviour) {
      case 'answer':
      case 'goaway-answer':
      case 'goaway-raw':
      case 'never-read':
      case 'data-first':
        return this.answer(connection, stream);
      case 'end-then-reset':
        this.answer(connection, stream);
        return connection.resetAfterQueued(stream, 0);
      default:
        return;
    }
  }

  private answer(connection: Http2Connection<EndpointConnection, EndpointStream>, stream: Stream<EndpointStream>): void {
    this.markAnswered(stream);
    const rng = this.rng;
    connection.sendHeaders(stream, [':status', '200', 'content-type', 'application/grpc'], false);
    for (let n = rng.int(3); n > 0; n--) connection.sendData(stream, rng.bytes(rng.pick([0, 5, 2000, 40_000])), false);
    connection.sendTrailers(stream, ['grpc-status', rng.pick(['0', '0', '0', '5', '13']), 'grpc-message', 'endpoint']);
  }

  private markAnswered(stream: Stream<EndpointStream>): void {
    if (stream.context !== null) stream.context.answered = true;
  }
}
