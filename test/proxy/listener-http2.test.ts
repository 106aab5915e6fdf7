// What the proxy listener does with HTTP/2 once sniffed: a preface split over several reads is still HTTP/2; a
// redirected connection is relayed on the route of the address it was going to, or passed through byte for byte when
// that address has no route; a connection accepted while draining gets its GOAWAY at once; connections are tracked
// until they close.

import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { EndpointLoad } from '../../agent/balancer/endpoint-load.ts';
import { RoundRobinPolicy } from '../../agent/balancer/round-robin.ts';
import { CONNECTION_PREFACE } from '../../agent/http2/constants.ts';
import { AuthorityParser } from '../../agent/proxy/authority.ts';
import { type OriginalDestination, ProxyListener } from '../../agent/proxy/listener.ts';
import { Relay } from '../../agent/proxy/relay.ts';
import type { Route, RouteTable } from '../../agent/proxy/route.ts';
import { realClock } from '../../agent/vocabulary/clock.ts';
import { makeEchoClient, startGrpcServer, unary } from '../../lab/grpc-peers.ts';
import { waitFor } from '../../lab/wait-for.ts';

const SETTINGS = 0x4;
const GOAWAY = 0x7;
/** An empty SETTINGS frame: what a client sends right after the preface. */
const EMPTY_SETTINGS = Buffer.from([0, 0, 0, SETTINGS, 0, 0, 0, 0, 0]);

/** A SETTINGS frame with the ACK flag: the answer to the proxy's SETTINGS. */
const SETTINGS_ACK = Buffer.from([0, 0, 0, SETTINGS, 1, 0, 0, 0, 0]);

/** The whole frames in `bytes`, in order. */
function frames(bytes: Buffer): { type: number; payload: Buffer }[] {
  const found: { type: number; payload: Buffer }[] = [];
  for (let at = 0; at + 9 <= bytes.length; ) {
    const length = bytes.readUIntBE(at, 3);
    if (at + 9 + length > bytes.length) break;
    found.push({ type: bytes[at + 3], payload: bytes.subarray(at + 9, at + 9 + length) });
    at += 9 + length;
  }
  return found;
}

function frameTypes(bytes: Buffer): number[] {
  return frames(bytes).map((frame) => frame.type);
}

interface Proxy {
  listener: ProxyListener;
  port: number;
  /** The server side of every accepted connection, in order. */
  accepted: net.Socket[];
  close(): Promise<void>;
}

/** A listener with a real relay; `routes` answers by address only (no authority names a service). */
async function startProxy(destination: OriginalDestination | null, routeForAddress: (ip: string, port: number) => Route | null): Promise<Proxy> {
  const routes: RouteTable = { routeForAddress, routeForKey: () => null };
  const relay = new Relay({
    routes,
    authority: new AuthorityParser('cluster.local'),
    clock: realClock,
    random: Math.random,
    connectTimeoutMs: 2000,
    maxConnectionsPerEndpoint: 4,
    streamHeadroom: 8,
    observer: { onExchangeFinished: () => {}, onRequestRejected: () => {}, onUpstreamConnectionState: () => {}, onTransparentRetry: () => {}, onResponseStarted: () => {} },
  });
  const accepted: net.Socket[] = [];
  const listener = new ProxyListener({
    relay,
    routes,
    originalDestination: (socket) => {
      accepted.push(socket);
      return destination;
    },
    sniffTimeoutMs: 5000,
    connectTimeoutMs: 2000,
    events: { onPassthroughError: () => {}, onOriginalDestinationError: () => {}, onConnectionOpened: () => {}, onConnectionClosed: () => {} },
  });
  const { port } = await listener.listen('127.0.0.1', 0);
  return {
    listener,
    port,
    accepted,
    close: async () => {
      const drained = listener.drain(0);
      listener.destroyAll();
      await drained;
      relay.close();
    },
  };
}

/** A raw client that keeps every byte it receives. */
function rawClient(port: number): { socket: net.Socket; received: () => Buffer; closed: () => boolean } {
  const socket = net.connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  let closed = false;
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => {});
  socket.on('close', () => {
    closed = true;
  });
  return { socket, received: () => Buffer.concat(chunks), closed: () => closed };
}

describe('ProxyListener: HTTP/2 connections', () => {
  it('a preface that arrives in three reads is HTTP/2; the connection is tracked until it closes', async () => {
    const proxy = await startProxy(null, () => null);
    try {
      const client = rawClient(proxy.port);
      await waitFor(() => proxy.accepted.length === 1, { message: 'accepted' });
      const [server] = proxy.accepted;
      const parts = [CONNECTION_PREFACE.subarray(0, 16), CONNECTION_PREFACE.subarray(16, 20), CONNECTION_PREFACE.subarray(20)];
      let sent = 0;
      for (const part of parts) {
        client.socket.write(part);
        sent += part.length;
        // The next part leaves only once the listener read this one on its own.
        await waitFor(() => server.bytesRead === sent, { message: `${sent} bytes read` });
      }
      client.socket.write(EMPTY_SETTINGS);
      await waitFor(() => frameTypes(client.received()).includes(SETTINGS), { message: 'the proxy’s SETTINGS' });
      assert.equal(frameTypes(client.received())[0], SETTINGS);
      assert.equal(client.closed(), false);
      assert.equal(proxy.listener.connections.size, 1);
      // A reset: the proxy's socket closes at once (after a FIN alone it stays half-open: nothing acts on the 'end').
      client.socket.resetAndDestroy();
      await waitFor(() => proxy.listener.connections.size === 0, { message: 'the closed connection is forgotten' });
    } finally {
      await proxy.close();
    }
  });

  it('a redirected connection is relayed on the route of the address it was going to', async () => {
    const backend = await startGrpcServer();
    const route: Route = { key: 'default/greeter:50051', picker: new RoundRobinPolicy().createPicker([new EndpointLoad(`127.0.0.1:${backend.port}`)]) };
    const asked: string[] = [];
    const proxy = await startProxy({ ip: '10.96.0.10', port: 50051 }, (ip, port) => {
      asked.push(`${ip}:${port}`);
      return ip === '10.96.0.10' && port === 50051 ? route : null;
    });
    // The authority names no service the routes know: only the connection's route can serve the call.
    const client = makeEchoClient(`127.0.0.1:${proxy.port}`);
    try {
      const reply = await unary(client, Buffer.from('via the address'));
      assert.equal(reply.message.toString(), 'via the address');
      assert.deepEqual(asked, ['10.96.0.10:50051']);
      assert.equal(backend.calls.count, 1);
    } finally {
      client.close();
      await proxy.close();
      await backend.close();
    }
  });

  it('HTTP/2 to an address without a route (discovery has not caught up) is passed through untouched', async () => {
    const echo = net.createServer((socket) => socket.pipe(socket));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const proxy = await startProxy({ ip: '127.0.0.1', port: (echo.address() as net.AddressInfo).port }, () => null);
    try {
      const client = rawClient(proxy.port);
      const sent = Buffer.concat([CONNECTION_PREFACE, EMPTY_SETTINGS]);
      client.socket.write(sent);
      await waitFor(() => client.received().length >= sent.length, { message: 'the echo' });
      assert.deepEqual(client.received(), sent);
      assert.equal(proxy.listener.connections.size, 0);
      client.socket.destroy();
    } finally {
      await proxy.close();
      echo.close();
    }
  });

  it('a connection accepted before the drain but sniffed after it gets a GOAWAY at once', async () => {
    const proxy = await startProxy(null, () => null);
    try {
      const client = rawClient(proxy.port);
      await waitFor(() => proxy.listener.openConnections === 1, { message: 'accepted' });
      const drained = proxy.listener.drain(1);
      assert.equal(proxy.listener.connections.size, 0, 'still sniffing: the drain had no connection to shut down');
      client.socket.write(Buffer.concat([CONNECTION_PREFACE, EMPTY_SETTINGS, SETTINGS_ACK]));
      await waitFor(() => frameTypes(client.received()).includes(GOAWAY), { message: 'a GOAWAY' });
      // The graceful one: every stream may still come (last stream id 2^31-1), no error.
      const goaway = frames(client.received()).find((frame) => frame.type === GOAWAY)!;
      assert.deepEqual([goaway.payload.readUInt32BE(0), goaway.payload.readUInt32BE(4)], [0x7fffffff, 0]);
      client.socket.resetAndDestroy();
      await drained;
    } finally {
      await proxy.close();
    }
  });
});
