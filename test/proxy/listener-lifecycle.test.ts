// The proxy listener's states and its accept path: listen refused while draining or closed (a bind that completes
// after the drain began closes its socket), sources without an address, original destinations that cannot be read,
// the sniff decided by an early end or a reset, and passthrough failures reported with their destination.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { describe, it } from 'node:test';
import { type ListenerEvents, type ListenerOptions, type OriginalDestination, ProxyListener } from '../../agent/proxy/listener.ts';
import type { Relay } from '../../agent/proxy/relay.ts';
import { waitFor } from '../../lab/wait-for.ts';

/** Fixed ports of this file (from 15600-15699, which no other test uses): the port must be known to probe
 *  it after a listen that was refused. */
const LATE_DRAIN_PORT = 15601;
const LATE_CLOSE_PORT = 15602;

/** What the listener told its events, in order. */
function recorder(withRefused = true): { events: ListenerEvents; seen: string[] } {
  const seen: string[] = [];
  const events: ListenerEvents = {
    onPassthroughError: (error, destination) =>
      seen.push(`passthrough-error ${(error as NodeJS.ErrnoException).code ?? error.message} ${destination === null ? 'null' : `${destination.ip}:${destination.port}`}`),
    onOriginalDestinationError: (error) => seen.push(`original-destination-error ${error.message}`),
    onConnectionOpened: () => seen.push('opened'),
    onConnectionClosed: () => seen.push('closed'),
  };
  if (withRefused) events.onSourceRefused = (source) => seen.push(`refused ${source}`);
  return { events, seen };
}

/** A listener that passes everything through (nothing here speaks HTTP/2). */
function listenerWith(overrides: Partial<ListenerOptions> & { events: ListenerEvents }): ProxyListener {
  return new ProxyListener({
    relay: {} as Relay,
    routes: { routeForAddress: () => null, routeForKey: () => null },
    originalDestination: () => null,
    sniffTimeoutMs: 1000,
    connectTimeoutMs: 1000,
    ...overrides,
  });
}

async function shut(listener: ProxyListener): Promise<void> {
  const drained = listener.drain(0);
  listener.destroyAll();
  await drained;
}

function listenOn(server: net.Server, options: net.ListenOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options, () => resolve((server.address() as net.AddressInfo).port));
  });
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Connects and says how it went: `connected` (then closed by us) or the error code. */
function probe(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? String(error)));
  });
}

/** A client that records what it receives and when it was closed. */
function client(port: number): { socket: net.Socket; received: () => string; closed: () => boolean; error: () => string | null } {
  const socket = net.connect({ host: '127.0.0.1', port });
  let received = '';
  let closed = false;
  let error: string | null = null;
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1');
  });
  socket.on('error', (e: NodeJS.ErrnoException) => {
    error = e.code ?? e.message;
  });
  socket.on('close', () => {
    closed = true;
  });
  return { socket, received: () => received, closed: () => closed, error: () => error };
}

describe('ProxyListener: states and listen', () => {
  it('starts idle', () => {
    const listener = listenerWith(recorder());
    assert.deepEqual(listener.state, { state: 'idle' });
  });

  it('stopAccepting says since when it drains', async () => {
    const listener = listenerWith(recorder());
    await listener.listen('127.0.0.1', 0);
    const closed = listener.stopAccepting(1234);
    assert.deepEqual(listener.state, { state: 'draining', since: 1234 });
    await closed;
    assert.deepEqual(listener.state, { state: 'draining', since: 1234 });
  });

  it('binds with SO_REUSEPORT: beside another socket that shares the port (an agent being upgraded)', async () => {
    const old = net.createServer();
    const port = await listenOn(old, { host: '127.0.0.1', port: 0, reusePort: true });
    const listener = listenerWith(recorder());
    try {
      const address = await listener.listen('127.0.0.1', port);
      assert.equal(address.port, port);
    } finally {
      await shut(listener);
      await closeServer(old);
    }
  });

  // A port held by a socket without SO_REUSEPORT: a listen that tried to bind would fail with EADDRINUSE, so the
  // state's error proves that nothing was bound.
  for (const [name, end] of [
    ['draining', (listener: ProxyListener) => void listener.stopAccepting(0)],
    ['closed', (listener: ProxyListener) => listener.destroyAll()],
  ] as const) {
    it(`refuses to listen once ${name}, without trying to bind`, async () => {
      const squatter = net.createServer();
      const port = await listenOn(squatter, { host: '127.0.0.1', port: 0 });
      const listener = listenerWith(recorder());
      try {
        await listener.listen('127.0.0.1', 0);
        end(listener);
        await assert.rejects(listener.listen('127.0.0.1', port), { message: `the proxy listener is ${name}` });
        assert.equal(listener.state.state, name);
      } finally {
        await shut(listener);
        await closeServer(squatter);
      }
    });
  }

  for (const [name, port, end] of [
    ['draining', LATE_DRAIN_PORT, (listener: ProxyListener) => void listener.stopAccepting(7)],
    ['closed', LATE_CLOSE_PORT, (listener: ProxyListener) => listener.destroyAll()],
  ] as const) {
    it(`a bind that completes once the listener is ${name} is closed, and the listen rejected`, async () => {
      const listener = listenerWith(recorder());
      try {
        // The bind completes on a later turn of the event loop; the drain (or destroyAll) begins before it.
        const listening = listener.listen('127.0.0.1', port);
        end(listener);
        await assert.rejects(listening, { message: `the proxy listener is ${name}` });
        assert.equal(listener.state.state, name);
        await waitFor(async () => (await probe(port)) === 'ECONNREFUSED', { message: `127.0.0.1:${port} no longer accepts` });
      } finally {
        await shut(listener);
      }
    });
  }
});

describe('ProxyListener: refused and unreadable connections', () => {
  it('a refused source is reset even when no onSourceRefused is given', async () => {
    const { events, seen } = recorder(false);
    const listener = listenerWith({ events, sourceAllowed: () => false });
    try {
      const { port } = await listener.listen('127.0.0.1', 0);
      const c = client(port);
      await waitFor(() => c.closed(), { message: 'the refused client closed' });
      assert.equal(c.error(), 'ECONNRESET');
      assert.deepEqual(seen, []);
      assert.equal(listener.openConnections, 0);
    } finally {
      await shut(listener);
    }
  });

  it('a connection reset before it was accepted has no address: refused as "", the rule never asked', async () => {
    const asked: string[] = [];
    const { events, seen } = recorder();
    const listener = listenerWith({
      events,
      sourceAllowed: (ip) => {
        asked.push(String(ip));
        return true;
      },
    });
    try {
      const { port } = await listener.listen('127.0.0.1', 0);
      // This process waits for the child: the child's connection is queued by the kernel, then reset, and only then
      // accepted here, when getpeername has nothing left to say.
      execFileSync(process.execPath, [
        '-e',
        `const s = require('node:net').connect(${port}, '127.0.0.1', () => s.resetAndDestroy());`,
      ]);
      await waitFor(() => seen.length === 1, { message: 'the reset connection was handled' });
      assert.deepEqual(seen, ['refused ']);
      assert.deepEqual(asked, []);
      assert.equal(listener.openConnections, 0);
    } finally {
      await shut(listener);
    }
  });

  it('an original destination that cannot be read is reported and the connection closed', async () => {
    const { events, seen } = recorder();
    const listener = listenerWith({
      events,
      originalDestination: () => {
        throw new Error('getsockopt failed: EBADF');
      },
    });
    try {
      const { port } = await listener.listen('127.0.0.1', 0);
      const c = client(port);
      await waitFor(() => c.closed(), { message: 'the client was closed' });
      await waitFor(() => seen.length === 3, { message: 'the events' });
      assert.deepEqual(seen, ['opened', 'original-destination-error getsockopt failed: EBADF', 'closed']);
      assert.equal(c.received(), '');
      assert.equal(listener.openConnections, 0);
    } finally {
      await shut(listener);
    }
  });
});

describe('ProxyListener: the sniff', () => {
  /** A destination that answers what it got once the client ended (and then ends too). */
  async function teller(): Promise<{ server: net.Server; destination: OriginalDestination; accepted: () => number }> {
    let accepted = 0;
    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
      accepted++;
      let got = '';
      socket.on('data', (chunk: Buffer) => {
        got += chunk.toString('latin1');
      });
      socket.on('end', () => socket.end(`got [${got}]`));
      socket.on('error', () => {});
    });
    const port = await listenOn(server, { host: '127.0.0.1', port: 0 });
    return { server, destination: { ip: '127.0.0.1', port }, accepted: () => accepted };
  }

  it('a client that ends before its first byte is passed through at once, not after the sniff timeout', async () => {
    const { server, destination } = await teller();
    const { events, seen } = recorder();
    // The sniff would wait a minute: only the end can decide within the test's deadline.
    const listener = listenerWith({ events, originalDestination: () => destination, sniffTimeoutMs: 60_000 });
    try {
      const { port } = await listener.listen('127.0.0.1', 0);
      const c = client(port);
      c.socket.once('connect', () => c.socket.end());
      await waitFor(() => c.received() === 'got []', { timeoutMs: 5000, message: 'the destination answered the empty connection' });
      await waitFor(() => seen.length === 2, { message: 'the connection closed' });
      assert.deepEqual(seen, ['opened', 'closed']);
    } finally {
      await shut(listener);
      await closeServer(server);
    }
  });

  it('a client that ends after part of a preface is passed through at once, with those bytes', async () => {
    const { server, destination } = await teller();
    const { events } = recorder();
    const listener = listenerWith({ events, originalDestination: () => destination, sniffTimeoutMs: 60_000 });
    try {
      const { port } = await listener.listen('127.0.0.1', 0);
      const c = client(port);
      c.socket.once('connect', () => c.socket.end('PRI * HTTP'));
      await waitFor(() => c.received() === 'got [PRI * HTTP]', { timeoutMs: 5000, message: 'the destination answered' });
    } finally {
      await shut(listener);
      await closeServer(server);
    }
  });

  it('a client reset while sniffing is closed quietly: counted, nothing thrown', async () => {
    const { events, seen } = recorder();
    let accepted: net.Socket | undefined;
    // Explicit mode (no destination): whatever the sniff timer decides later about the dead socket goes nowhere.
    const listener = listenerWith({
      events,
      originalDestination: (socket) => {
        accepted = socket;
        return null;
      },
      sniffTimeoutMs: 200,
    });
    try {
      const { port } = await listener.listen('127.0.0.1', 0);
      const c = client(port);
      c.socket.once('connect', () => c.socket.write('PRI'));
      await waitFor(() => accepted !== undefined && accepted.bytesRead === 3, { message: 'the first bytes were read' });
      c.socket.resetAndDestroy();
      await waitFor(() => seen.length === 2, { message: 'the connection closed' });
      assert.deepEqual(seen, ['opened', 'closed']);
      assert.equal(listener.openConnections, 0);
    } finally {
      await shut(listener);
    }
  });

  // A bounded test: with the bug, the dialled destination waits for a client that is gone, and closing hangs.
  it('a client reset while sniffing is never passed through: the sniff timer does not dial its destination', { timeout: 20_000 }, async () => {
    const { server, destination, accepted } = await teller();
    const { events, seen } = recorder();
    let socket: net.Socket | undefined;
    const listener = listenerWith({
      events,
      originalDestination: (s) => {
        socket = s;
        return destination;
      },
      sniffTimeoutMs: 100,
    });
    try {
      const { port } = await listener.listen('127.0.0.1', 0);
      const c = client(port);
      c.socket.once('connect', () => c.socket.write('PRI'));
      // A reset once the first bytes are in (sooner, the client may still send a plain FIN, which is passed through).
      await waitFor(() => socket !== undefined && socket.bytesRead === 3, { message: 'the first bytes were read' });
      c.socket.resetAndDestroy();
      await waitFor(() => seen.includes('closed'), { message: 'the connection closed' });
      // The sniff timer would have fired 100 ms after the accept: give it ten times that, then look.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      assert.equal(accepted(), 0, 'the destination was dialled for a client that was gone');
      assert.deepEqual(seen, ['opened', 'closed']);
    } finally {
      await shut(listener);
      await closeServer(server);
    }
  });

  it('a passthrough whose destination refuses is reported with that destination, and the client closed', async () => {
    // A port that was just free: nothing listens there.
    const free = net.createServer();
    const deadPort = await listenOn(free, { host: '127.0.0.1', port: 0 });
    await closeServer(free);
    const { events, seen } = recorder();
    const listener = listenerWith({ events, originalDestination: () => ({ ip: '127.0.0.1', port: deadPort }) });
    try {
      const { port } = await listener.listen('127.0.0.1', 0);
      const c = client(port);
      c.socket.once('connect', () => c.socket.write('GET / HTTP/1.1\r\n\r\n'));
      await waitFor(() => c.closed(), { message: 'the client was closed' });
      await waitFor(() => seen.length === 3, { message: 'the events' });
      assert.deepEqual(seen, ['opened', `passthrough-error ECONNREFUSED 127.0.0.1:${deadPort}`, 'closed']);
    } finally {
      await shut(listener);
    }
  });
});
