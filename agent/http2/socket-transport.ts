// Binds an HTTP/2 connection to a net.Socket: bytes in, batched writes out, drain and close forwarded.

import type { Socket } from 'node:net';
import { type ConnectionOptions, Http2Connection, type Transport } from './connection.ts';
import type { Http2Handler } from './handler.ts';
import { backgroundClock, type Clock } from '../vocabulary/clock.ts';

export type SocketConnectionOptions = Omit<ConnectionOptions, 'role'>;

/**
 * How long a closing connection keeps reading (and dropping) what the peer still sends after our last frame. Closing a
 * socket with unread input makes the kernel answer with a reset, which can destroy our GOAWAY before the peer reads
 * it (a client flooding us saw EPIPE, never the GOAWAY(ENHANCE_YOUR_CALM) that says why): lingering until the peer
 * closes too, or this long, lets the GOAWAY arrive.
 */
export const LINGER_MS = 1000;

/**
 * The socket as the connection writes to it. Ending means closing: after our last frame (GOAWAY) nothing more is
 * processed; the output is flushed, our FIN sent, and the socket closed once the peer closes its side or LINGER_MS
 * later, whichever is first (sockets accepted with allowHalfOpen would otherwise stay open for as long as the peer
 * likes).
 */
class SocketTransport implements Transport {
  private readonly socket: Socket;
  private readonly clock: Clock;

  constructor(socket: Socket, clock: Clock) {
    this.socket = socket;
    this.clock = clock;
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
    const { socket, clock } = this;
    if (socket.destroyed) return;
    socket.end();
    const timer = clock.setTimeout(() => socket.destroy(), LINGER_MS);
    socket.once('close', () => clock.clearTimeout(timer));
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function bind<C, S>(socket: Socket, handler: Http2Handler<C, S>, options: ConnectionOptions): Http2Connection<C, S> {
  socket.setNoDelay(true);
  // Real time for the linger, whatever clock the connection is given: it bounds a real socket's life (tests drive
  // connections on real sockets with fake clocks), and it never keeps the process alive.
  const connection = new Http2Connection(new SocketTransport(socket, backgroundClock), handler, options);
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
