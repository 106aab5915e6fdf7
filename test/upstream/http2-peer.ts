// A node:http2 server on loopback as the endpoint of upstream tests, and the handler that tells an UpstreamConnection what its HTTP/2 connection did.

import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import type { Http2Connection } from '../../agent/http2/connection.ts';
import type { Http2ConnectionError, Http2Handler } from '../../agent/http2/handler.ts';
import type { Stream } from '../../agent/http2/stream.ts';
import type { UpstreamConnection } from '../../agent/upstream/upstream-connection.ts';
import type { PoolWaiter } from '../../agent/upstream/upstream-pool.ts';

/** A request's header list as the relay sends one upstream. */
export const REQUEST: readonly string[] = [':method', 'POST', ':scheme', 'http', ':path', '/test.Echo/Unary', ':authority', 'peer.test'];

export interface Peer {
  port: number;
  /** Streams the peer received and has not answered, in arrival order. */
  readonly held: http2.ServerHttp2Stream[];
  readonly sessions: http2.ServerHttp2Session[];
  /** The peer's accepted sockets: destroying one is an endpoint lost without a word. */
  readonly sockets: net.Socket[];
  /** GOAWAY frames the peer received, one entry per frame. */
  readonly goaways: number[];
  /** Answers the oldest held stream: 200 and END_STREAM. */
  answerOldest(): void;
  /** Stops accepting new connections; sessions already open keep working. */
  stopListening(): Promise<void>;
  /** Listens again on the same port. */
  listenAgain(): Promise<void>;
  close(): Promise<void>;
}

export async function startPeer(settings: http2.Settings = {}, port = 0): Promise<Peer> {
  const held: http2.ServerHttp2Stream[] = [];
  const sessions: http2.ServerHttp2Session[] = [];
  const goaways: number[] = [];
  const sockets: net.Socket[] = [];
  // The HTTP/2 server never listens itself: a plain listener hands it each socket, so that listening can stop without
  // the HTTP/2 server sending GOAWAY on the sessions already open (its own close() does).
  const server = http2.createServer({ settings });
  server.on('session', (session) => {
    sessions.push(session);
    session.on('error', () => {});
    session.on('goaway', (code) => goaways.push(code));
  });
  server.on('stream', (stream) => {
    stream.on('error', () => {});
    held.push(stream);
  });
  let listener: net.Server;
  const listen = (on: number) =>
    new Promise<number>((resolve, reject) => {
      listener = net.createServer((socket) => {
        sockets.push(socket);
        server.emit('connection', socket);
      });
      listener.once('error', reject);
      listener.listen(on, '127.0.0.1', () => resolve((listener.address() as net.AddressInfo).port));
    });
  const bound = await listen(port);
  return {
    port: bound,
    held,
    sessions,
    sockets,
    goaways,
    answerOldest() {
      const stream = held.shift();
      if (stream === undefined) throw new Error('no stream held');
      stream.respond({ ':status': 200 }, { endStream: true });
    },
    async stopListening() {
      // close() stops listening at once; its callback would wait for the open connections, which stay.
      listener.close();
    },
    async listenAgain() {
      await listen(bound);
    },
    async close() {
      for (const session of sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
      if (listener.listening) await new Promise<void>((resolve) => listener.close(() => resolve()));
    },
  };
}

/** A loopback port on which nothing listens: connecting is refused at once. */
export async function refusingPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function owner(connection: Http2Connection): UpstreamConnection | null {
  return connection.context as UpstreamConnection | null;
}

/** Forwards what the relay's upstream handler forwards (the endpoint's SETTINGS, stream ends, GOAWAY, close), and nothing else. */
export const upstreamEvents: Http2Handler = {
  onHeaders() {},
  onData(connection: Http2Connection, stream: Stream, data: Buffer) {
    connection.consume(stream, data.length);
  },
  onStreamReset(connection: Http2Connection) {
    owner(connection)?.onStreamEnded();
  },
  onStreamClose(connection: Http2Connection) {
    owner(connection)?.onStreamEnded();
  },
  onDataSent() {},
  onGoaway(connection: Http2Connection) {
    owner(connection)?.onPeerGoaway();
  },
  onRemoteSettings(connection: Http2Connection) {
    owner(connection)?.onPeerSettings();
  },
  onConnectionClose(connection: Http2Connection, error: Http2ConnectionError | null) {
    owner(connection)?.onClosed(error === null ? null : error.message);
  },
};

/**
 * Pool waiters that record what happened to them and open their stream as soon as they get a connection, as the
 * relay's exchange does. `name` says which connection served one ("a on c0"); without it the log says "a served".
 */
export function recordingWaiters(name?: (connection: Http2Connection) => string) {
  const log: string[] = [];
  const make = (label: string): PoolWaiter<unknown> => ({
    onUpstreamReady(connection) {
      log.push(name === undefined ? `${label} served` : `${label} on ${name(connection)}`);
      assert.notEqual(connection.openStream(REQUEST, true), null);
    },
    onUpstreamFailed(reason) {
      log.push(`${label} failed: ${reason}`);
    },
  });
  return { log, make };
}
