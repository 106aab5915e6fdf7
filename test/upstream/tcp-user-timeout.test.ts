// TCP_USER_TIMEOUT through the native addon: set and read back on a real socket, bad arguments and errno errors from
// the addon itself, the best-effort wrapper on sockets without a descriptor, and an upstream connection's socket.

import assert from 'node:assert/strict';
import { closeSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { setTcpUserTimeout, tcpUserTimeoutOf } from '../../agent/upstream/tcp-user-timeout.ts';
import { TCP_USER_TIMEOUT_MS, UpstreamConnection } from '../../agent/upstream/upstream-connection.ts';
import { waitFor } from '../../lab/wait-for.ts';
import { FakeTimers } from '../support/fake-timers.ts';
import { startPeer, upstreamEvents } from './http2-peer.ts';

interface Addon {
  setTcpUserTimeout(fd: number, ms: number): void;
  getTcpUserTimeout(fd: number): number;
}

const addon = createRequire(import.meta.url)('../../build/Release/original_dst.node') as Addon;

async function connectedPair(): Promise<{ client: net.Socket; close(): Promise<void> }> {
  const server = net.createServer((socket) => socket.on('error', () => {}));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise((resolve) => client.once('connect', resolve));
  return {
    client,
    async close() {
      client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

test('set on a connected socket, the kernel holds it; 0 is the kernel default', async () => {
  const pair = await connectedPair();
  try {
    assert.equal(tcpUserTimeoutOf(pair.client), 0);
    assert.equal(setTcpUserTimeout(pair.client, 20_000), true);
    assert.equal(tcpUserTimeoutOf(pair.client), 20_000);
    assert.equal(setTcpUserTimeout(pair.client, 0), true);
    assert.equal(tcpUserTimeoutOf(pair.client), 0);
  } finally {
    await pair.close();
  }
});

test('the addon: arguments that are not non-negative integers are a TypeError', () => {
  const set = addon.setTcpUserTimeout as (...args: unknown[]) => unknown;
  const get = addon.getTcpUserTimeout as (...args: unknown[]) => unknown;
  const cases: { call: () => unknown; code: string }[] = [
    { call: () => set(), code: 'ERR_INVALID_ARG_TYPE' },
    { call: () => set(3), code: 'ERR_INVALID_ARG_TYPE' },
    { call: () => set('3', 1000), code: 'ERR_INVALID_ARG_TYPE' },
    { call: () => set(3, '1000'), code: 'ERR_INVALID_ARG_TYPE' },
    { call: () => set(-1, 1000), code: 'ERR_INVALID_ARG_VALUE' },
    { call: () => set(3, -1), code: 'ERR_INVALID_ARG_VALUE' },
    { call: () => set(3, 1.5), code: 'ERR_INVALID_ARG_VALUE' },
    { call: () => set(3, 2 ** 31), code: 'ERR_INVALID_ARG_VALUE' },
    { call: () => get(), code: 'ERR_INVALID_ARG_TYPE' },
    { call: () => get(Number.NaN), code: 'ERR_INVALID_ARG_VALUE' },
  ];
  for (const [i, { call, code }] of cases.entries()) assert.throws(call, { name: 'TypeError', code }, `case ${i}`);
});

test('the addon: a file that is not a socket is ENOTSOCK, a closed descriptor EBADF', () => {
  const fd = openSync(fileURLToPath(import.meta.url), 'r');
  try {
    assert.throws(() => addon.setTcpUserTimeout(fd, 1000), { code: 'ENOTSOCK', message: /^setsockopt\(TCP_USER_TIMEOUT\) failed: ENOTSOCK/ });
    assert.throws(() => addon.getTcpUserTimeout(fd), { code: 'ENOTSOCK' });
  } finally {
    closeSync(fd);
  }
  assert.throws(() => addon.setTcpUserTimeout(fd, 1000), { code: 'EBADF' });
});

test('the wrapper is best effort: a socket without a descriptor is false / null, never a throw', () => {
  const socket = new net.Socket();
  assert.equal(setTcpUserTimeout(socket, 1000), false);
  assert.equal(tcpUserTimeoutOf(socket), null);
});

test(`an upstream connection's socket gets ${TCP_USER_TIMEOUT_MS} ms once connected`, async () => {
  const peer = await startPeer();
  const connection = new UpstreamConnection({ onUpstreamStateChange() {}, onUpstreamStreamEnded() {} }, upstreamEvents, {
    host: '127.0.0.1',
    port: peer.port,
    connectTimeoutMs: 5000,
    clock: new FakeTimers(),
  });
  try {
    await waitFor(() => connection.state.state === 'ready', { message: 'ready' });
    assert.equal(TCP_USER_TIMEOUT_MS, 20_000);
    // The socket is the connection's own (private): reached around the type only here.
    const ours = (connection as unknown as { socket: net.Socket }).socket;
    assert.equal(tcpUserTimeoutOf(ours), TCP_USER_TIMEOUT_MS);
  } finally {
    connection.http2.destroy();
    await peer.close();
  }
});
