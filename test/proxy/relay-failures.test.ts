// The relay under failure: deadlines, a backend killed under load, bad grpc-timeout, endpoints that misbehave.

import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { spawnBackend } from '../../lab/grpc-backend-process.ts';
import { META, makeEchoClient, startGrpcServer, unary } from '../../lab/grpc-peers.ts';
import { SERVICE_AUTHORITY, startRelay } from '../support/relay-harness.ts';
import { waitFor } from '../../lab/wait-for.ts';

const CLIENT_OPTIONS = { 'grpc.default_authority': SERVICE_AUTHORITY };

function statusOf(promise: Promise<unknown>): Promise<number> {
  return promise.then(
    () => grpc.status.OK,
    (error: grpc.ServiceError) => error.code,
  );
}

test('grpc-timeout 100m against a 1 s handler: DEADLINE_EXCEEDED at about 100 ms, and the backend sees the cancel', async () => {
  const backend = await startGrpcServer();
  const harness = await startRelay([`127.0.0.1:${backend.port}`]);
  const client = makeEchoClient(`127.0.0.1:${harness.port}`, CLIENT_OPTIONS);
  try {
    // A raw grpc-timeout is sent by grpc-js from the deadline; a 100 ms deadline gives "100m" or close to it.
    const started = performance.now();
    const status = await statusOf(unary(client, Buffer.from('x'), { timeoutMs: 100, metadata: { [META.delayMs]: '1000' } }));
    const elapsed = performance.now() - started;
    assert.equal(status, grpc.status.DEADLINE_EXCEEDED);
    // When the call ends is the behaviour, so the figure stays: not before the deadline, and well before the handler's
    // 1 s answer would have. The upper bound is generous, as wall clock on a loaded machine must be; the exact moment
    // is checked on a fake clock in relay-deadlines.test.ts.
    assert.ok(elapsed >= 90 && elapsed < 5000, `elapsed ${elapsed} ms`);
    await waitFor(() => backend.cancelled.count === 1, { message: 'backend saw the cancel' });
  } finally {
    client.close();
    await harness.close();
    await backend.close();
  }
});

test('a client that enforces no deadline of its own gets DEADLINE_EXCEEDED at about 100 ms, and the backend sees the cancel', async () => {
  const backend = await startGrpcServer();
  const harness = await startRelay([`127.0.0.1:${backend.port}`]);
  try {
    // A raw HTTP/2 client whose own deadline is not enforced. The grpc-js backend enforces the deadline it is sent
    // too: that the agent ends the call with no help from the backend is tested in relay-deadlines.test.ts.
    const http2 = await import('node:http2');
    const session = http2.connect(`http://127.0.0.1:${harness.port}`);
    const started = performance.now();
    const request = session.request({
      ':method': 'POST',
      ':path': '/test.Echo/Unary',
      ':authority': SERVICE_AUTHORITY,
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-timeout': '100m',
      [META.delayMs]: '1000',
    });
    request.end(Buffer.from([0, 0, 0, 0, 1, 120]));
    const headers = await new Promise<Record<string, unknown>>((resolve) => request.on('response', resolve));
    const elapsed = performance.now() - started;
    assert.equal(headers['grpc-status'], String(grpc.status.DEADLINE_EXCEEDED));
    assert.equal(headers[':status'], 200);
    // The figure is the behaviour; the bound is generous for wall clock (see the test above).
    assert.ok(elapsed >= 90 && elapsed < 5000, `elapsed ${elapsed} ms`);
    await waitFor(() => backend.cancelled.count === 1, { message: 'backend saw the cancel' });
    session.close();
  } finally {
    await harness.close();
    await backend.close();
  }
});

test('an invalid grpc-timeout gets INTERNAL with a message, and the connection keeps serving', async () => {
  const backend = await startGrpcServer();
  const harness = await startRelay([`127.0.0.1:${backend.port}`]);
  try {
    const http2 = await import('node:http2');
    const session = http2.connect(`http://127.0.0.1:${harness.port}`);
    const ask = (timeout: string | null) =>
      new Promise<Record<string, unknown>>((resolve) => {
        const headers: Record<string, string> = {
          ':method': 'POST',
          ':path': '/test.Echo/Unary',
          ':authority': SERVICE_AUTHORITY,
          'content-type': 'application/grpc',
          te: 'trailers',
        };
        if (timeout !== null) headers['grpc-timeout'] = timeout;
        const request = session.request(headers);
        let result: Record<string, unknown> = {};
        request.on('response', (h) => {
          result = { ...h };
        });
        request.on('trailers', (t) => {
          result = { ...result, ...t };
        });
        request.on('data', () => {});
        request.on('end', () => resolve(result));
        request.end(Buffer.from([0, 0, 0, 0, 1, 120]));
      });
    for (const bad of ['1x', '123456789S', 'm', '-1m', '']) {
      const response = await ask(bad);
      assert.equal(response['grpc-status'], String(grpc.status.INTERNAL), `timeout "${bad}"`);
      assert.match(String(response['grpc-message']), /grpc-timeout/);
    }
    const ok = await ask(null);
    assert.equal(ok['grpc-status'], '0');
    session.close();
  } finally {
    await harness.close();
    await backend.close();
  }
});

test('a backend killed under load: only its in-flight RPCs fail, as UNAVAILABLE; later RPCs succeed', async () => {
  const killed = await spawnBackend('killed');
  const others = await Promise.all([1, 2].map((i) => startGrpcServer({ id: `b${i}` })));
  const harness = await startRelay([`127.0.0.1:${killed.port}`, ...others.map((b) => `127.0.0.1:${b.port}`)]);
  const client = makeEchoClient(`127.0.0.1:${harness.port}`, CLIENT_OPTIONS);
  try {
    // Slow calls are in flight on every backend when one is killed.
    const inFlight = Array.from({ length: 30 }, () => statusOf(unary(client, Buffer.from('x'), { metadata: { [META.delayMs]: '500' } })));
    await waitFor(() => others.every((b) => b.calls.count === 10), { message: 'calls reached every backend' });
    await killed.kill();
    const statuses = await Promise.all(inFlight);
    const failed = statuses.filter((s) => s !== grpc.status.OK);
    assert.deepEqual(failed, Array(10).fill(grpc.status.UNAVAILABLE), `statuses ${statuses.join(',')}`);
    // The dead endpoint stays listed (discovery has not caught up): its requests are retried elsewhere or fail fast.
    const later = await Promise.all(Array.from({ length: 60 }, () => statusOf(unary(client, Buffer.from('y')))));
    assert.deepEqual(later.filter((s) => s !== grpc.status.OK), []);
  } finally {
    client.close();
    await harness.close();
    await killed.kill();
    await Promise.all(others.map((b) => b.close()));
  }
});

test('an endpoint that answers HTTP/1.1, and one that never answers, give UNAVAILABLE; others keep serving', async () => {
  const http1 = net.createServer((socket) => socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n'));
  const silent = net.createServer(() => {});
  const sockets: net.Socket[] = [];
  for (const server of [http1, silent]) server.on('connection', (s) => sockets.push(s));
  await Promise.all([http1, silent].map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', r))));
  const port = (s: net.Server) => (s.address() as net.AddressInfo).port;
  for (const server of [http1, silent]) {
    const harness = await startRelay([`127.0.0.1:${port(server)}`]);
    const client = makeEchoClient(`127.0.0.1:${harness.port}`, CLIENT_OPTIONS);
    try {
      const status = await statusOf(unary(client, Buffer.from('x'), { timeoutMs: 5000 }));
      // The silent endpoint accepts TCP but never speaks HTTP/2: the call ends by the agent-side SETTINGS timeout or
      // the deadline; either way it is never answered with an HTTP error.
      assert.ok(status === grpc.status.UNAVAILABLE || status === grpc.status.DEADLINE_EXCEEDED, `status ${status}`);
    } finally {
      client.close();
      await harness.close();
    }
  }
  for (const s of sockets) s.destroy();
  await Promise.all([http1, silent].map((s) => new Promise((r) => s.close(r))));
});
