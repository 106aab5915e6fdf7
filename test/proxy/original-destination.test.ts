// The SO_ORIGINAL_DST addon: loopback without NAT, bad arguments, errno errors, and real DNAT in a network namespace.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants, copyFileSync, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import {
  isOriginalDestinationAvailable,
  originalDestinationAddon,
  originalDestinationOf,
  sameIp,
} from '../../agent/proxy/original-destination.ts';

const run = promisify(execFile);
const NODE = process.execPath; // the pinned runtime that runs this test
const MODULE_URL = new URL('../../agent/proxy/original-destination.ts', import.meta.url).href;
const NETNS_PREFIX = 'ml-od-';

interface Pair {
  client: net.Socket;
  accepted: net.Socket;
  close(): Promise<void>;
}

// A server on listenHost and one client connection to it; returns both ends once the server accepted.
async function acceptedPair(listenHost: string, connectHost: string): Promise<Pair> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, listenHost, resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  const acceptedP = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = net.connect(port, connectHost);
  const accepted = await acceptedP;
  return {
    client,
    accepted,
    close: async () => {
      client.destroy();
      accepted.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function fdOf(socket: net.Socket): number {
  // biome-ignore lint/suspicious/noExplicitAny: the accepted socket's libuv handle exposes the fd (Node 24).
  const fd = (socket as any)._handle?.fd;
  assert.equal(typeof fd, 'number');
  return fd;
}

// Without NAT the kernel has no entry (ENOENT → null) or, where conntrack tracks loopback, reports the
// socket's own address; originalDestinationOf turns both into null.
function assertNoMapping(pair: Pair, family: 4 | 6): void {
  const raw = originalDestinationAddon().getOriginalDestination(fdOf(pair.accepted));
  if (raw !== null) {
    assert.equal(raw.family, family);
    assert.equal(raw.port, pair.accepted.localPort);
  }
  assert.equal(originalDestinationOf(pair.accepted), null);
}

function ipv6LoopbackUsable(): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen(0, '::1', () => probe.close(() => resolve(true)));
  });
}

test('the addon is built and loads on the pinned runtime', () => {
  assert.equal(isOriginalDestinationAvailable(), true);
  assert.equal(typeof originalDestinationAddon().getOriginalDestination, 'function');
});

test('a plain IPv4 loopback connection has no original destination', async () => {
  const pair = await acceptedPair('127.0.0.1', '127.0.0.1');
  try {
    assertNoMapping(pair, 4);
  } finally {
    await pair.close();
  }
});

test('a plain IPv6 loopback connection [::1] has no original destination', async (t) => {
  if (!(await ipv6LoopbackUsable())) return t.skip('IPv6 loopback ::1 is not configured on this machine');
  const pair = await acceptedPair('::1', '::1');
  try {
    assertNoMapping(pair, 6);
  } finally {
    await pair.close();
  }
});

test('an IPv4 client of a dual-stack server (::ffff:127.0.0.1) has no original destination', async (t) => {
  if (!(await ipv6LoopbackUsable())) return t.skip('IPv6 is not configured on this machine');
  const pair = await acceptedPair('::', '127.0.0.1');
  try {
    assert.equal(pair.accepted.localAddress, '::ffff:127.0.0.1');
    assertNoMapping(pair, 4);
  } finally {
    await pair.close();
  }
});

test('a socket without a file descriptor has no original destination', () => {
  assert.equal(originalDestinationOf(new net.Socket()), null);
});

test('arguments that are not a non-negative integer are a TypeError', () => {
  const get = originalDestinationAddon().getOriginalDestination as (...args: unknown[]) => unknown;
  const cases: { args: unknown[]; code: string }[] = [
    { args: [], code: 'ERR_INVALID_ARG_TYPE' },
    { args: [undefined], code: 'ERR_INVALID_ARG_TYPE' },
    { args: [null], code: 'ERR_INVALID_ARG_TYPE' },
    { args: ['3'], code: 'ERR_INVALID_ARG_TYPE' },
    { args: [3n], code: 'ERR_INVALID_ARG_TYPE' },
    { args: [{ fd: 3 }], code: 'ERR_INVALID_ARG_TYPE' },
    { args: [-1], code: 'ERR_INVALID_ARG_VALUE' },
    { args: [1.5], code: 'ERR_INVALID_ARG_VALUE' },
    { args: [Number.NaN], code: 'ERR_INVALID_ARG_VALUE' },
    { args: [Number.POSITIVE_INFINITY], code: 'ERR_INVALID_ARG_VALUE' },
    { args: [2 ** 31], code: 'ERR_INVALID_ARG_VALUE' },
  ];
  for (const { args, code } of cases) {
    assert.throws(() => get(...args), { name: 'TypeError', code }, `arguments ${String(args[0])}`);
  }
});

test('a closed file descriptor is an Error naming EBADF', () => {
  const { getOriginalDestination } = originalDestinationAddon();
  const fd = openSync(fileURLToPath(import.meta.url), 'r');
  closeSync(fd);
  // Nothing else runs between closeSync and the call on this thread; the highest fd number is never open.
  for (const closed of [fd, 2 ** 31 - 1]) {
    assert.throws(() => getOriginalDestination(closed), { name: 'Error', code: 'EBADF', message: /EBADF/ });
  }
});

test('a file that is not a socket is an Error naming ENOTSOCK', () => {
  const fd = openSync(fileURLToPath(import.meta.url), 'r');
  try {
    assert.throws(() => originalDestinationAddon().getOriginalDestination(fd), {
      name: 'Error',
      code: 'ENOTSOCK',
      message: /getsockname failed: ENOTSOCK/,
    });
  } finally {
    closeSync(fd);
  }
});

test('a Unix domain socket is an Error naming EAFNOSUPPORT', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ml-od-'));
  const server = net.createServer();
  try {
    const path = join(dir, 'sock');
    await new Promise<void>((resolve) => server.listen(path, resolve));
    const acceptedP = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    const client = net.connect(path);
    const accepted = await acceptedP;
    try {
      assert.throws(() => originalDestinationOf(accepted), { code: 'EAFNOSUPPORT' });
    } finally {
      client.destroy();
      accepted.destroy();
    }
  } finally {
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---- real DNAT, inside a network namespace of our own ----

function findTool(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {}
  }
  return null;
}

const IP = findTool('ip');
const IPTABLES = findTool('iptables');
const IP6TABLES = findTool('ip6tables');
const isRoot = process.getuid?.() === 0;
const netnsSkip = !isRoot
  ? 'needs root to create a network namespace'
  : IP === null
    ? 'needs the `ip` command (iproute2)'
    : false;
const v4Skip = netnsSkip || (IPTABLES === null ? 'needs `iptables` (Debian package iptables)' : false);
const v6Skip = netnsSkip || (IP6TABLES === null ? 'needs `ip6tables` (Debian package iptables)' : false);

// Namespaces are named ml-od-<pid>-<random>: a leftover is one whose creating process is gone, so a run
// never deletes the namespace of another run that is still going.
async function deleteLeftoverNamespaces(): Promise<void> {
  const { stdout } = await run(IP!, ['netns', 'list']);
  for (const line of stdout.split('\n')) {
    const name = line.split(' ')[0];
    const match = /^ml-od-(\d+)-[0-9a-f]+$/.exec(name);
    if (match === null || processAlive(Number(match[1]))) continue;
    await run(IP!, ['netns', 'delete', name]).catch(() => {});
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function withNamespace(body: (ns: string) => Promise<void>): Promise<void> {
  const ns = `${NETNS_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`;
  await run(IP!, ['netns', 'add', ns]);
  try {
    await run(IP!, ['-n', ns, 'link', 'set', 'lo', 'up']);
    await body(ns);
  } finally {
    await run(IP!, ['netns', 'delete', ns]);
  }
}

function inNamespace(ns: string, command: string, args: string[]) {
  return run(IP!, ['netns', 'exec', ns, command, ...args], { timeout: 30_000 });
}

// Runs in the namespace: listens on listenHost:realPort, connects to connectHost:dialPort, prints what the
// addon and originalDestinationOf see on the accepted socket.
const PROBE = `
import net from 'node:net';
const { originalDestinationAddon, originalDestinationOf } = await import(process.argv[1]);
const [listenHost, connectHost, dialPort, realPort] = process.argv.slice(2);
const server = net.createServer();
await new Promise((resolve) => server.listen(Number(realPort), listenHost, resolve));
const accepted = new Promise((resolve) => server.once('connection', resolve));
const client = net.connect(Number(dialPort), connectHost);
const socket = await accepted;
const raw = originalDestinationAddon().getOriginalDestination(socket._handle.fd);
console.log(JSON.stringify({ raw, of: originalDestinationOf(socket), local: socket.localAddress }));
client.destroy(); socket.destroy(); server.close();
`;

interface ProbeResult {
  raw: { address: string; port: number; family: number } | null;
  of: { ip: string; port: number } | null;
  local: string;
}

async function probe(ns: string, listenHost: string, connectHost: string, dialPort: number, realPort: number) {
  const { stdout } = await inNamespace(ns, NODE, [
    '--input-type=module',
    '-e',
    PROBE,
    MODULE_URL,
    listenHost,
    connectHost,
    String(dialPort),
    String(realPort),
  ]);
  return JSON.parse(stdout) as ProbeResult;
}

const DIALLED = 50051; // what the client asks for
const AGENT = 15001; // where NAT sends it

before(async () => {
  if (!netnsSkip) await deleteLeftoverNamespaces();
});

after(async () => {
  if (netnsSkip) return;
  const { stdout } = await run(IP!, ['netns', 'list']);
  assert.doesNotMatch(stdout, new RegExp(`^${NETNS_PREFIX}${process.pid}-`, 'm'), 'a namespace of this run is left');
});

test('IPv4 DNAT in a network namespace: the original destination is the address the client dialled', {
  skip: v4Skip,
}, async () => {
  await withNamespace(async (ns) => {
    await inNamespace(ns, IPTABLES!, [
      '-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', '127.0.0.1', '--dport', String(DIALLED),
      '-j', 'DNAT', '--to-destination', `127.0.0.1:${AGENT}`,
    ]);

    const natted = await probe(ns, '127.0.0.1', '127.0.0.1', DIALLED, AGENT);
    assert.deepEqual(natted.raw, { address: '127.0.0.1', port: DIALLED, family: 4 });
    assert.deepEqual(natted.of, { ip: '127.0.0.1', port: DIALLED });

    // A dual-stack listener sees the IPv4 client as ::ffff:127.0.0.1; conntrack still answers in IPv4.
    const mapped = await probe(ns, '::', '127.0.0.1', DIALLED, AGENT);
    assert.equal(mapped.local, '::ffff:127.0.0.1');
    assert.deepEqual(mapped.raw, { address: '127.0.0.1', port: DIALLED, family: 4 });
    assert.deepEqual(mapped.of, { ip: '127.0.0.1', port: DIALLED });

    // Conntrack is on in this namespace now, so a direct connection has an entry: its own address → null.
    const direct = await probe(ns, '127.0.0.1', '127.0.0.1', AGENT, AGENT);
    assert.deepEqual(direct.raw, { address: '127.0.0.1', port: AGENT, family: 4 });
    assert.equal(direct.of, null);
  });
});

test('IPv6 REDIRECT in a network namespace: the original destination is the address the client dialled', {
  skip: v6Skip,
}, async () => {
  await withNamespace(async (ns) => {
    await inNamespace(ns, IP6TABLES!, [
      '-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', '::1', '--dport', String(DIALLED),
      '-j', 'REDIRECT', '--to-ports', String(AGENT),
    ]);

    const natted = await probe(ns, '::1', '::1', DIALLED, AGENT);
    assert.deepEqual(natted.raw, { address: '::1', port: DIALLED, family: 6 });
    assert.deepEqual(natted.of, { ip: '::1', port: DIALLED });

    const direct = await probe(ns, '::1', '::1', AGENT, AGENT);
    assert.deepEqual(direct.raw, { address: '::1', port: AGENT, family: 6 });
    assert.equal(direct.of, null);
  });
});

// ---- the comparison with the local address, a descriptor not yet open or numbered 0, and a missing addon ----

test('sameIp: an IPv4-mapped IPv6 spelling equals the IPv4 address, case aside; nothing else is unmapped', () => {
  assert.equal(sameIp('10.0.0.1', '10.0.0.1'), true);
  assert.equal(sameIp('::ffff:10.0.0.1', '10.0.0.1'), true);
  assert.equal(sameIp('10.0.0.1', '::FFFF:10.0.0.1'), true);
  assert.equal(sameIp('FD79::1', 'fd79::1'), true);
  assert.equal(sameIp('10.0.0.1', '10.0.0.2'), false);
  // Equal from the eighth character on: only a mapped prefix may be cut off.
  assert.equal(sameIp('127.0.1.1', '127.0.0.1'), false);
  assert.equal(sameIp('::ffff:127.0.1.1', '127.0.0.1'), false);
  assert.equal(sameIp('10.0.0.1', undefined), false);
});

test('a socket whose descriptor is not open yet (fd -1, still connecting) has no original destination', async () => {
  const socket = net.connect({ host: 'localhost', port: 9 });
  socket.on('error', () => {});
  try {
    // biome-ignore lint/suspicious/noExplicitAny: the handle exists before the connect opened its descriptor.
    assert.equal((socket as any)._handle?.fd, -1);
    assert.equal(originalDestinationOf(socket), null);
  } finally {
    socket.destroy();
  }
});

// Runs with descriptor 0 closed, so the accepted socket is numbered 0: a Unix socket, which the addon refuses.
const FD_ZERO_PROBE = `
import fs from 'node:fs';
import net from 'node:net';
const { originalDestinationOf } = await import(process.argv[1]);
const path = process.argv[2];
const server = net.createServer();
await new Promise((resolve) => server.listen(path, resolve));
const accepted = new Promise((resolve) => server.once('connection', resolve));
const client = net.connect(path);
fs.closeSync(0);
const socket = await accepted;
let result;
try { result = { of: originalDestinationOf(socket) }; } catch (error) { result = { code: error.code }; }
console.log(JSON.stringify({ fd: socket._handle.fd, ...result }));
client.destroy(); socket.destroy(); server.close();
`;

test('descriptor 0 is a descriptor like any other: read, not taken for "none"', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ml-od-'));
  try {
    const { stdout } = await run(NODE, ['--input-type=module', '-e', FD_ZERO_PROBE, MODULE_URL, join(dir, 'sock')], { timeout: 30_000 });
    assert.deepEqual(JSON.parse(stdout), { fd: 0, code: 'EAFNOSUPPORT' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('without the compiled addon: the error says how to build it, once, and the first outcome is kept', async () => {
  // A copy of the module two levels below a root that has no build/: the addon path it resolves is missing.
  const root = mkdtempSync(join(tmpdir(), 'ml-od-'));
  try {
    const dir = join(root, 'agent', 'proxy');
    mkdirSync(dir, { recursive: true });
    const copy = join(dir, 'original-destination.ts');
    copyFileSync(fileURLToPath(MODULE_URL), copy);
    const missing = (await import(pathToFileURL(copy).href)) as typeof import('../../agent/proxy/original-destination.ts');
    const addonPath = join(root, 'build', 'Release', 'original_dst.node');
    const expected =
      'the SO_ORIGINAL_DST addon (build/Release/original_dst.node) is not built; ' +
      'run `npm rebuild` (or `npm run install`) in the repository root — it needs python3, make and a C compiler' +
      " (Cannot find module '../../build/Release/original_dst.node')";
    assert.equal(missing.ADDON_BUILD_HINT, expected.slice(0, expected.indexOf(' (Cannot')));
    let thrown: unknown;
    try {
      missing.originalDestinationAddon();
    } catch (error) {
      thrown = error;
    }
    assert.ok(thrown instanceof Error);
    assert.equal(thrown.message, expected);
    assert.equal((thrown.cause as NodeJS.ErrnoException).code, 'MODULE_NOT_FOUND');
    assert.throws(() => missing.originalDestinationOf(new net.Socket()), (error) => error === thrown);
    assert.equal(missing.isOriginalDestinationAvailable(), false);
    // Built afterwards: this process keeps what it found at first use (a restart picks the addon up).
    mkdirSync(dirname(addonPath), { recursive: true });
    copyFileSync(fileURLToPath(new URL('../../build/Release/original_dst.node', import.meta.url)), addonPath);
    assert.equal(missing.isOriginalDestinationAvailable(), false);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
