// The proxy listener: accepts client connections, finds where each was going, and hands HTTP/2 to the relay and
// anything else to a byte-for-byte passthrough.

import net from 'node:net';
import { formatHostPort } from '../vocabulary/host-port.ts';
import type { Http2Connection } from '../http2/connection.ts';
import { serveSocket } from '../http2/socket-transport.ts';
import { CLIENT_CONNECTION_WINDOW, CLIENT_RECEIVE_BUDGET, CLIENT_STREAM_WINDOW, type ClientLimits } from './client-limits.ts';
import { sniffPreface } from './protocol-sniff.ts';
import type { DownstreamContext } from './exchange.ts';
import type { Relay } from './relay.ts';
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
  /** A connection was refused at accept because `limits.maxConnections` were open. Called for every one. */
  onConnectionLimit?(open: number): void;
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
   * first, before a byte is read. Main injects enrolledOrLoopback (enrollment/source-policy.ts): the agent serves only
   * this node's opted-in pods. When absent every source is served (tests of the relay).
   */
  sourceAllowed?: (ip: string) => boolean;
  /** The connection cap, the handshake timeout and the buffer budget; absent: none (tests of the relay). */
  limits?: ClientLimits;
}

export type ListenerState =
  | { state: 'idle' }
  | { state: 'listening'; addresses: readonly string[] }
  | { state: 'draining'; since: number }
  | { state: 'closed' };

/**
 * The node IPs that interception redirects to (DNAT to NODE_IP:port, one per family) and that a listener on
 * `listenHost` does not already receive, in the order v4, v6: the agent must listen on these too, at the same port.
 *
 * Why a socket per node IP rather than one dual-stack `[::]` socket: both receive redirected connections of both
 * families, and the addon reads the original destination on either (measured with PREROUTING DNAT from a pod
 * namespace: an IPv4 connection accepted by `[::]` is `::ffff:<node IP>` locally and SO_ORIGINAL_DST still answers
 * the IPv4 ClusterIP:port; IPv6 answers through IP6T_SO_ORIGINAL_DST on both; the dual-stack e2e passes both ways).
 * But a wildcard socket also accepts on every other address of the node, where the `filter INPUT` guard — written
 * for `-d NODE_IP` — does not apply: on the e2e node a pod reached `[::]:15001` at its bridge gateway
 * (10.79.2.1 and fd79:2::1: connected), which node-IP sockets refuse (see docs/architecture.md, Interception). A `--listen` of
 * `::` or `0.0.0.0` chosen by the operator is honoured and covers what it covers (`::` both families, Node's
 * default being dual-stack; `0.0.0.0` IPv4 only). A hostname covers nothing: it is resolved at bind time.
 */
export function nodeIPsToListenOn(listenHost: string, nodeIPs: { v4: string | null; v6: string | null }): string[] {
  const missing: string[] = [];
  if (nodeIPs.v4 !== null && listenHost !== nodeIPs.v4 && listenHost !== '0.0.0.0' && listenHost !== '::') missing.push(nodeIPs.v4);
  // Both spellings are canonical (config and host-port canonicalize IPv6), so equal addresses compare equal.
  if (nodeIPs.v6 !== null && listenHost !== nodeIPs.v6 && listenHost !== '::') missing.push(nodeIPs.v6);
  return missing;
}

/**
 * One listener may serve several addresses (`listen` once per address, e.g. the IPv4 and the IPv6 node IP): the
 * connections of all of them share the relay, the routes, the counts, drain and destroyAll.
 */
export class ProxyListener {
  state: ListenerState = { state: 'idle' };
  readonly connections = new Set<Http2Connection>();
  private readonly servers: net.Server[] = [];
  private readonly options: ListenerOptions;
  private readonly sockets = new Set<net.Socket>();

  /** Accepted sockets still open, HTTP/2 or passed through. */
  get openConnections(): number {
    return this.sockets.size;
  }

  constructor(options: ListenerOptions) {
    this.options = options;
  }

  /**
   * Adds an address to serve. Binds with SO_REUSEPORT so that a new agent can bind beside an old one during an
   * upgrade. A failed bind leaves the addresses already listening as they were.
   */
  listen(host: string, port: number): Promise<net.AddressInfo> {
    const { state } = this.state;
    if (state === 'draining' || state === 'closed') return Promise.reject(new Error(`the proxy listener is ${state}`));
    const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.accept(socket));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port, reusePort: true }, () => {
        server.off('error', reject);
        // A drain that began while this bind was under way: the address must not keep accepting after it.
        if (this.state.state === 'draining' || this.state.state === 'closed') {
          server.close();
          reject(new Error(`the proxy listener is ${this.state.state}`));
          return;
        }
        this.servers.push(server);
        const address = server.address() as net.AddressInfo;
        const addresses = this.state.state === 'listening' ? this.state.addresses : [];
        this.state = { state: 'listening', addresses: [...addresses, formatHostPort(address.address, address.port)] };
        resolve(address);
      });
    });
  }

  /** Stops accepting on every address and finishes every client connection (see stopAccepting). */
  drain(now: number): Promise<void> {
    const closed = this.stopAccepting(now);
    this.finishConnections();
    return closed;
  }

  /** Stops accepting on every address; resolves once the listening sockets and every accepted one closed. */
  stopAccepting(now: number): Promise<void> {
    this.state = { state: 'draining', since: now };
    const closed = this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
    return Promise.all(closed).then(() => undefined);
  }

  /** A graceful GOAWAY to every client connection (one accepted while draining gets it at once); each closes once its
   *  streams finish. */
  finishConnections(): void {
    for (const connection of this.connections) connection.shutdown();
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
    const limits = this.options.limits;
    if (limits !== undefined && this.sockets.size >= limits.maxConnections) {
      socket.on('error', () => {});
      socket.resetAndDestroy();
      if (!socket.destroyed) socket.destroy();
      this.options.events.onConnectionLimit?.(this.sockets.size);
      return;
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
    if (limits?.budget.exhausted) {
      // Overloaded: the connection waits, unread, until the buffered bytes fall; its sniff time starts then.
      socket.pause();
      limits.budget.whenWithin(() => {
        if (socket.destroyed) return;
        socket.resume();
        this.sniff(socket, destination);
      });
      return;
    }
    this.sniff(socket, destination);
  }

  /** Reads the first bytes: HTTP/2 to the relay, anything else (or silence) byte for byte to the destination. */
  private sniff(socket: net.Socket, destination: OriginalDestination | null): void {
    let received: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => decide('other'), this.options.sniffTimeoutMs);
    const onData = (chunk: Buffer): void => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      const result = sniffPreface(received);
      if (result !== 'need-more') decide(result);
    };
    const stopSniffing = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', stopSniffing);
    };
    const decide = (result: 'http2' | 'other'): void => {
      stopSniffing();
      socket.pause();
      // A redirected connection to a destination we do not balance (a race with discovery) is relayed untouched.
      const route = destination === null ? null : this.options.routes.routeForAddress(destination.ip, destination.port);
      if (result === 'http2' && (destination === null || route !== null)) this.serveHttp2(socket, route, received);
      else this.passThrough(socket, destination, received);
    };
    const onEnd = (): void => decide('other');
    socket.on('data', onData);
    socket.on('end', onEnd);
    // A client gone before the sniff decided (a reset) is not relayed anywhere: the timer must not dial for it.
    socket.once('close', stopSniffing);
  }

  private serveHttp2(socket: net.Socket, route: Route | null, firstBytes: Buffer): void {
    const context: DownstreamContext = { route };
    const limits = this.options.limits;
    const connection = serveSocket(socket, this.options.relay.downstreamHandler, {
      creditConnectionOnReceive: true,
      settings: { initialWindowSize: CLIENT_STREAM_WINDOW },
      connectionWindowSize: CLIENT_CONNECTION_WINDOW,
      receiveBudget: CLIENT_RECEIVE_BUDGET,
      ...(limits === undefined
        ? {}
        : { bufferAccount: limits.budget, prefaceTimeoutMs: limits.handshakeTimeoutMs, settingsTimeoutMs: limits.handshakeTimeoutMs }),
    });
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
