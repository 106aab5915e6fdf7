// The proxy listener's source check: refused sources are reset before a byte is read and reported; allowed ones served, in a real namespace too.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { enrolledOrLoopback } from '../../agent/enrollment/source-policy.ts';
import { type ListenerEvents, type ListenerOptions, ProxyListener } from '../../agent/proxy/listener.ts';
import type { Relay } from '../../agent/proxy/relay.ts';
import { waitFor } from '../../lab/wait-for.ts';

const run = promisify(execFile);

/** What the listener told its events, in order. */
function recorder(): { events: ListenerEvents; seen: string[] } {
  const seen: string[] = [];
  return {
    seen,
    events: {
      onPassthroughError: (error) => seen.push(`passthrough-error ${error.message}`),
      onOriginalDestinationError: (error) => seen.push(`original-destination-error ${error.message}`),
      onConnectionOpened: () => seen.push('opened'),
      onConnectionClosed: () => seen.push('closed'),
      onSourceRefused: (source) => seen.push(`refused ${source}`),
    },
  };
}

/** A listener that relays every allowed connection byte for byte to `echoPort` (no HTTP/2 is sent in these tests). */
function echoingListener(echoPort: number, events: ListenerEvents, sourceAllowed?: (ip: string) => boolean): ProxyListener {
  const options: ListenerOptions = {
    // Never reached: nothing here speaks HTTP/2.
    relay: {} as Relay,
    routes: { routeForAddress: () => null, routeForKey: () => null },
    originalDestination: () => ({ ip: '127.0.0.1', port: echoPort }),
    sniffTimeoutMs: 1000,
    connectTimeoutMs: 1000,
    events,
    sourceAllowed,
  };
  return new ProxyListener(options);
}

async function echoServer(): Promise<net.Server> {
  const server = net.createServer((socket) => socket.pipe(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/** Sends `ping` and says what came of it: `echoed`, `reset` or `closed` (ended without an answer). */
function attempt(port: number, host: string, localAddress?: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host, localAddress });
    let received = '';
    socket.on('connect', () => socket.write('ping'));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString();
      if (received === 'ping') {
        socket.destroy();
        resolve('echoed');
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNRESET' ? 'reset' : `error ${error.code}`));
    socket.on('close', () => resolve('closed'));
  });
}

describe('ProxyListener: the source check', () => {
  const servers: net.Server[] = [];
  const listeners: ProxyListener[] = [];

  after(async () => {
    for (const listener of listeners) {
      const drained = listener.drain(0);
      listener.destroyAll();
      await drained;
    }
    for (const server of servers) server.close();
  });

  async function start(sourceAllowed: ((ip: string) => boolean) | undefined, host = '127.0.0.1'): Promise<{ port: number; seen: string[]; listener: ProxyListener }> {
    const echo = await echoServer();
    servers.push(echo);
    const { events, seen } = recorder();
    const listener = echoingListener((echo.address() as net.AddressInfo).port, events, sourceAllowed);
    listeners.push(listener);
    const address = await listener.listen(host, 0);
    return { port: address.port, seen, listener };
  }

  it('resets a connection whose source is refused, before reading it, and reports the source', async () => {
    const asked: string[] = [];
    const { port, seen, listener } = await start((ip) => {
      asked.push(ip);
      return false;
    });
    assert.equal(await attempt(port, '127.0.0.1'), 'reset');
    assert.deepEqual(asked, ['127.0.0.1']);
    assert.deepEqual(seen, ['refused 127.0.0.1'], 'neither opened nor closed: it never was a connection of the proxy');
    assert.equal(listener.openConnections, 0);
  });

  it('serves a connection whose source is allowed, as before', async () => {
    const { port, seen } = await start(() => true);
    assert.equal(await attempt(port, '127.0.0.1'), 'echoed');
    await waitFor(() => seen.length === 2, { message: 'the connection closed' });
    assert.deepEqual(seen, ['opened', 'closed']);
  });

  it('serves every source when no check is injected', async () => {
    const { port } = await start(undefined);
    assert.equal(await attempt(port, '127.0.0.1'), 'echoed');
  });

  it('with main’s rule on a dual-stack listener: loopback in its IPv4-mapped spelling is allowed', async () => {
    const asked: string[] = [];
    const rule = enrolledOrLoopback({ podAt: () => undefined });
    const { port } = await start((ip) => {
      asked.push(ip);
      return rule(ip);
    }, '::');
    assert.equal(await attempt(port, '127.0.0.1'), 'echoed');
    assert.equal(await attempt(port, '::1'), 'echoed');
    assert.deepEqual(asked, ['::ffff:127.0.0.1', '::1']);
  });
});

// ---- real non-loopback sources, inside a network namespace of our own ----

const isRoot = process.getuid?.() === 0;
const netnsSkip = isRoot ? false : 'needs root to create a network namespace';
const LISTENER_URL = new URL('../../agent/proxy/listener.ts', import.meta.url).href;
const POLICY_URL = new URL('../../agent/enrollment/source-policy.ts', import.meta.url).href;

// Runs in the namespace: the listener on NODE_IP with main's rule, where only ENROLLED is an enrolled pod; each
// source connects, sends "ping" and reports whether it came back (relayed to an echo server) or was reset.
const PROBE = `
import net from 'node:net';
const { ProxyListener } = await import(process.argv[1]);
const { enrolledOrLoopback } = await import(process.argv[2]);
const [nodeIp, enrolledIp, ...sources] = process.argv.slice(3);
const listen = (server, host) => new Promise((resolve) => server.listen(0, host, resolve));
const echo = net.createServer((socket) => socket.pipe(socket));
await listen(echo, nodeIp);
const refused = [];
const listener = new ProxyListener({
  relay: {},
  routes: { routeForAddress: () => null, routeForKey: () => null },
  originalDestination: () => ({ ip: nodeIp, port: echo.address().port }),
  sniffTimeoutMs: 1000,
  connectTimeoutMs: 1000,
  events: { onPassthroughError() {}, onOriginalDestinationError() {}, onConnectionOpened() {}, onConnectionClosed() {}, onSourceRefused: (ip) => refused.push(ip) },
  sourceAllowed: enrolledOrLoopback({ podAt: (ip) => (ip === enrolledIp ? { namespace: 'app', name: 'a' } : undefined) }),
});
const { port } = await listener.listen(nodeIp, 0);
const attempt = (localAddress) => new Promise((resolve) => {
  const socket = net.connect({ port, host: nodeIp, localAddress });
  socket.on('connect', () => socket.write('ping'));
  socket.on('data', (chunk) => { if (chunk.toString() === 'ping') { socket.destroy(); resolve('echoed'); } });
  socket.on('error', (error) => resolve(error.code === 'ECONNRESET' ? 'reset' : 'error ' + error.code));
  socket.on('close', () => resolve('closed'));
});
const results = {};
for (const source of sources) results[source] = await attempt(source);
console.log(JSON.stringify({ results, refused }));
listener.destroyAll();
process.exit(0);
`;

describe('ProxyListener: the source check with real addresses', () => {
  it('resets a pod address that is not enrolled; serves an enrolled one and loopback', { skip: netnsSkip }, async () => {
    const ns = `ml-enr-${process.pid}-${randomBytes(3).toString('hex')}`;
    await run('ip', ['netns', 'add', ns]);
    try {
      await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      // The node's IP and two "pods", all local to the namespace: only the source address differs between attempts.
      for (const ip of ['10.255.0.1', '10.255.0.2', '10.255.0.3']) await run('ip', ['-n', ns, 'addr', 'add', `${ip}/32`, 'dev', 'lo']);
      const { stdout } = await run(
        'ip',
        ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', PROBE, LISTENER_URL, POLICY_URL, '10.255.0.3', '10.255.0.2', '10.255.0.1', '10.255.0.2', '127.0.0.1'],
        { timeout: 30_000 },
      );
      assert.deepEqual(JSON.parse(stdout), {
        results: { '10.255.0.1': 'reset', '10.255.0.2': 'echoed', '127.0.0.1': 'echoed' },
        refused: ['10.255.0.1'],
      });
    } finally {
      await run('ip', ['netns', 'delete', ns]);
    }
  });
});
