// Binds an HTTP/2 connection to a net.Socket: bytes in, batched writes out, drain and close forwarded.

import type { Socket } from 'node:net';
import { type ConnectionOptions, Http2Connection, type Transport } from './connection.ts';
import type { Http2Handler } from './handler.ts';

export type SocketConnectionOptions = Omit<ConnectionOptions, 'role'>;

/**
 * The socket as the connection writes to it. Ending means closing: after our last frame (GOAWAY) nothing more is
 * read, so the socket is destroyed once the output is flushed rather than left half-open waiting for the peer's FIN
 * (sockets accepted with allowHalfOpen would otherwise stay open for as long as the peer likes).
 */
class SocketTransport implements Transport {
  private readonly socket: Socket;

  constructor(socket: Socket) {
    this.socket = socket;
  }

  get writableLength(): number {
    return this.socket.writableLength;
  }

  write(chunk: Buffer): void {
    this.socket.write(chunk);
  }

  cork(): void {
    this.socket.cork();
  }

  uncork(): void {
    this.socket.uncork();
  }

  end(): void {
    const socket = this.socket;
    socket.end(() => socket.destroy());
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function bind<C, S>(socket: Socket, handler: Http2Handler<C, S>, options: ConnectionOptions): Http2Connection<C, S> {
  socket.setNoDelay(true);
  const connection = new Http2Connection(new SocketTransport(socket), handler, options);
  socket.on('data', (chunk: Buffer) => connection.receive(chunk));
  socket.on('drain', () => connection.transportDrained());
  // The peer's FIN: HTTP/2 has no half-closed connection, and a client that closes its socket (grpc-go does, with no
  // GOAWAY) reads nothing more either. What is queued is flushed, then our FIN, then 'close' ends the connection and
  // its streams. Without this, sockets accepted with allowHalfOpen (the listener's, for byte-for-byte passthrough)
  // stayed open in CLOSE-WAIT, counted as connections a drain waits for.
  socket.on('end', () => socket.end());
  // 'error' is always followed by 'close'; listening keeps it from being thrown.
  socket.on('error', () => {});
  socket.on('close', () => connection.transportClosed());
  connection.start();
  return connection;
}

/** Server role on an accepted socket (a client pod's connection). */
export function serveSocket<C, S>(socket: Socket, handler: Http2Handler<C, S>, options: SocketConnectionOptions = {}): Http2Connection<C, S> {
  return bind(socket, handler, { ...options, role: 'server' });
}

/** Client role on a connected (or connecting) socket to an endpoint. */
export function connectSocket<C, S>(socket: Socket, handler: Http2Handler<C, S>, options: SocketConnectionOptions = {}): Http2Connection<C, S> {
  return bind(socket, handler, { ...options, role: 'client' });
}
