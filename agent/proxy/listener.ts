// The proxy listener: accepts client connections, finds where each was going, and hands HTTP/2 to the relay and
// anything else to a byte-for-byte passthrough.

import net from 'node:net';
import type { Http2Connection } from '../http2/connection.ts';
import { serveSocket } from '../http2/socket-transport.ts';
import { sniffPreface } from './protocol-sniff.ts';
import type { DownstreamContext, Relay } from './relay.ts';
import type { Route, RouteTable } from './route.ts';
import { passThrough } from './tcp-passthrough.ts';

export interface OriginalDestination {
  ip: string;
  port: number;
}

export interface ListenerEvents {
  onPassthroughError(error: Error, destination: OriginalDestination | null): void;
  /** The kernel would not say where an accepted connection was going; the connection is closed. */
  onOriginalDestinationError(error: Error): void;
  /** Opened and closed are told only of connections whose source was allowed. */
  onConnectionOpened(): void;
  onConnectionClosed(): void;
  /** A connection from a source `sourceAllowed` refused was closed at once (`source` is '' when the socket was
   *  already gone and had no address). Called for every one: rate-limit what it logs. */
  onSourceRefused?(source: string): void;
}

export interface ListenerOptions {
  relay: Relay;
  routes: RouteTable;
  /** The pre-DNAT destination of an accepted socket, or null when it was not redirected (explicit mode). */
  originalDestination: (socket: net.Socket) => OriginalDestination | null;
  sniffTimeoutMs: number;
  connectTimeoutMs: number;
  events: ListenerEvents;
  /**
   * Whether to serve a connection from this source IP (as the socket reports it, e.g. `::ffff:10.0.0.7`); checked
   * first, before a byte is read. Main injects enrolledOrLoopback (cni/source-policy.ts): DESIGN §5 wants only
   * this node's opted-in pods served. When absent every source is served (tests of the relay).
   */
  sourceAllowed?: (ip: string) => boolean;
}

export type ListenerState = { state: 'idle' } | { state: 'listening'; address: string } | { state: 'draining'; since: number } | { state: 'closed' };

export class ProxyListener {
  state: ListenerState = { state: 'idle' };
  readonly connections = new Set<Http2Connection>();
  private readonly server: net.Server;
  private readonly options: ListenerOptions;
  private readonly sockets = new Set<net.Socket>();

  /** Accepted sockets still open, HTTP/2 or passed through. */
  get openConnections(): number {
    return this.sockets.size;
  }

  constructor(options: ListenerOptions) {
    this.options = options;
    this.server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.accept(socket));
  }

  /** Binds with SO_REUSEPORT so that a new agent can bind beside an old one during an upgrade. */
  listen(host: string, port: number): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host, port, reusePort: true }, () => {
        this.server.off('error', reject);
        const address = this.server.address() as net.AddressInfo;
        this.state = { state: 'listening', address: `${address.address}:${address.port}` };
        resolve(address);
      });
    });
  }

  /** Stops accepting; client connections get a graceful GOAWAY and close once their streams finish. */
  drain(now: number): Promise<void> {
    this.state = { state: 'draining', since: now };
    for (const connection of this.connections) connection.shutdown();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Abrupt end of every client connection, passed-through ones too (after the drain deadline). */
  destroyAll(): void {
    for (const connection of this.connections) connection.destroy();
    for (const socket of this.sockets) socket.destroy();
    this.state = { state: 'closed' };
  }

  private accept(socket: net.Socket): void {
    const allowed = this.options.sourceAllowed;
    if (allowed !== undefined) {
      const source = socket.remoteAddress;
      // No address: the peer is gone already (reset before the accept was handled); nothing to serve.
      if (source === undefined || !allowed(source)) {
        socket.on('error', () => {});
        // A reset rather than a FIN: the client learns at once, and a scan leaves no TIME_WAIT sockets behind here.
        socket.resetAndDestroy();
        if (!socket.destroyed) socket.destroy();
        this.options.events.onSourceRefused?.(source ?? '');
        return;
      }
    }
    this.sockets.add(socket);
    this.options.events.onConnectionOpened();
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.options.events.onConnectionClosed();
    });
    socket.on('error', () => {});
    let destination: OriginalDestination | null;
    try {
      destination = this.options.originalDestination(socket);
    } catch (error) {
      this.options.events.onOriginalDestinationError(error as Error);
      socket.destroy();
      return;
    }
    let received: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => decide('other'), this.options.sniffTimeoutMs);
    const onData = (chunk: Buffer): void => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      const result = sniffPreface(received);
      if (result !== 'need-more') decide(result);
    };
    const decide = (result: 'http2' | 'other'): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.pause();
      // A redirected connection to a destination we do not balance (a race with discovery) is relayed untouched.
      const route = destination === null ? null : this.options.routes.routeForAddress(destination.ip, destination.port);
      if (result === 'http2' && (destination === null || route !== null)) this.serveHttp2(socket, route, received);
      else this.passThrough(socket, destination, received);
    };
    const onEnd = (): void => decide('other');
    socket.on('data', onData);
    socket.on('end', onEnd);
  }

  private serveHttp2(socket: net.Socket, route: Route | null, firstBytes: Buffer): void {
    const context: DownstreamContext = { route };
    const connection = serveSocket(socket, this.options.relay.downstreamHandler, { creditConnectionOnReceive: true });
    connection.context = context;
    this.connections.add(connection);
    socket.once('close', () => this.connections.delete(connection));
    if (this.state.state === 'draining') connection.shutdown();
    connection.receive(firstBytes);
    socket.resume();
  }

  private passThrough(socket: net.Socket, destination: OriginalDestination | null, firstBytes: Buffer): void {
    if (destination === null) {
      // Explicit mode has no other destination to relay to.
      socket.destroy();
      return;
    }
    passThrough(socket, firstBytes, { host: destination.ip, port: destination.port }, this.options.connectTimeoutMs, (error) =>
      this.options.events.onPassthroughError(error, destination),
    );
  }
}
