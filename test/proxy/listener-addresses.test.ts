// One proxy listener on several addresses (the IPv4 and IPv6 node IPs): which ones, and one set of counts, drain and destroyAll for all.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type ListenerEvents, nodeIPsToListenOn, ProxyListener } from '../../agent/proxy/listener.ts';
import type { Relay } from '../../agent/proxy/relay.ts';
import { makeEchoClient, startGrpcServer, unary } from '../../lab/grpc-peers.ts';
import { SERVICE_AUTHORITY, startRelay } from '../support/relay-harness.ts';
import { waitFor } from '../../lab/wait-for.ts';

describe('nodeIPsToListenOn: the node IPs interception redirects to that --listen does not receive', () => {
  const dual = { v4: '10.79.0.1', v6: 'fd79::1' };
  const cases: [string, { v4: string | null; v6: string | null }, string[]][] = [
    // The e2e and a typical DaemonSet spelling: --listen on the IPv4 node IP.
    ['10.79.0.1', dual, ['fd79::1']],
    ['10.79.0.1', { v4: '10.79.0.1', v6: null }, []],
    // The manifest's default: the IPv4 wildcard does not receive IPv6.
    ['0.0.0.0', dual, ['fd79::1']],
    ['0.0.0.0', { v4: '10.79.0.1', v6: null }, []],
    // A dual-stack wildcard receives both families (the addon reads IPv4-mapped connections' destination too).
    ['::', dual, []],
    ['fd79::1', dual, ['10.79.0.1']],
    ['fd79::1', { v4: null, v6: 'fd79::1' }, []],
    // Loopback or a hostname receives none of them: interception would redirect to nobody.
    ['127.0.0.1', dual, ['10.79.0.1', 'fd79::1']],
    ['localhost', { v4: '10.79.0.1', v6: null }, ['10.79.0.1']],
    ['10.79.0.1', { v4: null, v6: null }, []],
  ];
  for (const [listenHost, nodeIPs, expected] of cases) {
    it(`--listen ${listenHost}, node IPs ${nodeIPs.v4 ?? '-'} ${nodeIPs.v6 ?? '-'} → [${expected.join(', ')}]`, () => {
      assert.deepEqual(nodeIPsToListenOn(listenHost, nodeIPs), expected);
    });
  }
});

function ipv6LoopbackUsable(): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen(0, '::1', () => probe.close(() => resolve(true)));
  });
}

/** What the listener told its events, in order. */
function recorder(): { events: ListenerEvents; seen: string[] } {
  const seen: string[] = [];
  const events: ListenerEvents = {
    onPassthroughError: (error) => seen.push(`passthrough-error ${error.message}`),
    onOriginalDestinationError: (error) => seen.push(`original-destination-error ${error.message}`),
    onConnectionOpened: () => seen.push('opened'),
    onConnectionClosed: () => seen.push('closed'),
  };
  return { events, seen };
}

/** Connects and resolves once the TCP handshake is done, or with the error code. */
function connect(host: string, port: number): Promise<{ socket: net.Socket } | { error: string }> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once('connect', () => resolve({ socket }));
    socket.once('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? String(error) }));
  });
}

describe('ProxyListener on two addresses', () => {
  let skip: string | false = false;
  const cleanups: (() => unknown)[] = [];
  before(async () => {
    if (!(await ipv6LoopbackUsable())) skip = 'IPv6 loopback ::1 is not configured on this machine';
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  /** A listener whose allowed connections are relayed to an echo server: passthrough, nothing speaks HTTP/2. */
  async function passthroughListener(): Promise<{ listener: ProxyListener; seen: string[] }> {
    const echo = net.createServer((socket) => socket.pipe(socket));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => echo.close());
    const { events, seen } = recorder();
    const listener = new ProxyListener({
      relay: {} as Relay,
      routes: { routeForAddress: () => null, routeForKey: () => null },
      originalDestination: () => ({ ip: '127.0.0.1', port: (echo.address() as net.AddressInfo).port }),
      sniffTimeoutMs: 50,
      connectTimeoutMs: 1000,
      events,
    });
    cleanups.push(async () => {
      const drained = listener.drain(0);
      listener.destroyAll();
      await drained;
    });
    return { listener, seen };
  }

  it('serves both, counts both, and drain stops both; destroyAll ends what is left of both', async (t) => {
    if (skip) return t.skip(skip);
    const { listener, seen } = await passthroughListener();
    const { port } = await listener.listen('127.0.0.1', 0);
    await listener.listen('::1', port);
    assert.deepEqual(listener.state, { state: 'listening', addresses: [`127.0.0.1:${port}`, `[::1]:${port}`] });

    const held = [];
    for (const host of ['127.0.0.1', '::1']) {
      const result = await connect(host, port);
      assert.ok('socket' in result, `connected to ${host}`);
      held.push(result.socket);
    }
    await waitFor(() => listener.openConnections === 2, { message: 'both connections accepted' });
    assert.deepEqual(seen, ['opened', 'opened']);

    let drained = false;
    const draining = listener.drain(1).then(() => {
      drained = true;
    });
    for (const host of ['127.0.0.1', '::1']) assert.deepEqual(await connect(host, port), { error: 'ECONNREFUSED' }, `${host} closed`);
    // Passed-through connections have no GOAWAY to heed: the drain waits for them on both addresses.
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(drained, false);
    assert.equal(listener.openConnections, 2);

    listener.destroyAll();
    await draining;
    await waitFor(() => listener.openConnections === 0, { message: 'both sockets closed' });
    assert.deepEqual(seen, ['opened', 'opened', 'closed', 'closed']);
    assert.deepEqual(listener.state, { state: 'closed' });
    for (const socket of held) socket.destroy();
    await assert.rejects(listener.listen('127.0.0.1', 0), /the proxy listener is closed/);
  });

  it('a second address that cannot be bound fails alone: the first keeps serving', async (t) => {
    if (skip) return t.skip(skip);
    const { listener } = await passthroughListener();
    const { port } = await listener.listen('127.0.0.1', 0);
    // Taken by a socket without SO_REUSEPORT: no sharing.
    const squatter = net.createServer();
    const taken = await new Promise<boolean>((resolve) => {
      squatter.once('error', () => resolve(false));
      squatter.listen({ host: '::1', port }, () => resolve(true));
    });
    if (!taken) return t.skip(`[::1]:${port} is in use by something else`);
    cleanups.push(() => squatter.close());
    await assert.rejects(listener.listen('::1', port), { code: 'EADDRINUSE' });
    assert.deepEqual(listener.state, { state: 'listening', addresses: [`127.0.0.1:${port}`] });
    const result = await connect('127.0.0.1', port);
    assert.ok('socket' in result);
    result.socket.destroy();
  });

  it('HTTP/2 clients of both addresses are relayed, and drain sends each a GOAWAY', async (t) => {
    if (skip) return t.skip(skip);
    const backend = await startGrpcServer();
    const harness = await startRelay([`127.0.0.1:${backend.port}`]);
    await harness.listener.listen('::1', harness.port);
    const clients = [`127.0.0.1:${harness.port}`, `[::1]:${harness.port}`].map((target) =>
      makeEchoClient(target, { 'grpc.default_authority': SERVICE_AUTHORITY }),
    );
    try {
      for (const client of clients) assert.equal((await unary(client, Buffer.from('x'))).message.toString(), 'x');
      assert.equal(harness.listener.connections.size, 2);
      const drained = harness.listener.drain(performance.now());
      // grpc-js closes an idle connection that got GOAWAY: both go, and the drain completes.
      await waitFor(() => harness.listener.openConnections === 0, { message: 'both client connections closed' });
      await drained;
    } finally {
      for (const client of clients) client.close();
      await harness.close();
      await backend.close();
    }
  });
});
