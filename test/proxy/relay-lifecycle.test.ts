// The relay's upstream side: extra connections near MAX_CONCURRENT_STREAMS, deadlines forwarded, cancels and deaths
// mid-stream, and nothing left open on either side afterwards.

import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { spawnBackend } from '../../lab/grpc-backend-process.ts';
import { META, makeEchoClient, serverStream, startGrpcServer, unary } from '../../lab/grpc-peers.ts';
import { SERVICE_AUTHORITY, startRelay } from '../support/relay-harness.ts';
import { waitFor } from '../../lab/wait-for.ts';

const CLIENT_OPTIONS = { 'grpc.default_authority': SERVICE_AUTHORITY };

test('a backend limited to 10 concurrent streams gets more connections instead of refusals', async () => {
  const backend = await startGrpcServer({ serverOptions: { 'grpc.max_concurrent_streams': 10 } });
  const harness = await startRelay([`127.0.0.1:${backend.port}`]);
  const client = makeEchoClient(`127.0.0.1:${harness.port}`, CLIENT_OPTIONS);
  try {
    await unary(client, Buffer.from('warm'));
    const results = await Promise.allSettled(
      Array.from({ length: 30 }, () => unary(client, Buffer.from('x'), { metadata: { [META.delayMs]: '200' } })),
    );
    assert.equal(results.filter((r) => r.status === 'rejected').length, 0);
    const pool = harness.relay.pools.get(`127.0.0.1:${backend.port}`);
    assert.ok(pool !== undefined, 'the endpoint has a pool');
    assert.ok(pool.connections.length >= 2, `${pool.connections.length} upstream connection(s)`);
  } finally {
    client.close();
    await harness.close();
    await backend.close();
  }
});

test('the backend sees the deadline the client set, less the time already spent', async () => {
  const backend = await startGrpcServer();
  const harness = await startRelay([`127.0.0.1:${backend.port}`]);
  const client = makeEchoClient(`127.0.0.1:${harness.port}`, CLIENT_OPTIONS);
  try {
    const response = await unary(client, Buffer.from('x'), { timeoutMs: 3000 });
    const left = Number(response.headers.get(META.deadlineLeftMs)[0]);
    assert.ok(left > 2000 && left <= 3000, `backend saw ${left} ms left`);
  } finally {
    client.close();
    await harness.close();
    await backend.close();
  }
});

test('a client that resets mid-body: the backend sees the cancel, other streams go on, nothing stays open', async () => {
  const backend = await startGrpcServer();
  const harness = await startRelay([`127.0.0.1:${backend.port}`]);
  const session = http2.connect(`http://127.0.0.1:${harness.port}`);
  const client = makeEchoClient(`127.0.0.1:${harness.port}`, CLIENT_OPTIONS);
  try {
    const stream = session.request({
      ':method': 'POST',
      ':path': '/test.Echo/ClientStream',
      ':authority': SERVICE_AUTHORITY,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    stream.on('error', () => {});
    // Half a message: the prefix announces 100 bytes, 10 arrive, then the client cancels.
    const partial = Buffer.alloc(15);
    partial.writeUInt32BE(100, 1);
    stream.write(partial);
    await waitFor(() => backend.calls.count === 1, { message: 'the call reached the backend' });
    stream.close(http2.constants.NGHTTP2_CANCEL);
    await waitFor(() => backend.cancelled.count === 1, { message: 'backend saw the cancel' });
    assert.equal((await unary(client, Buffer.from('other'))).message.toString(), 'other');
    const downstream = [...harness.listener.connections];
    await waitFor(() => downstream.every((c) => c.activeStreamCount === 0), { message: 'client streams closed' });
  } finally {
    client.close();
    session.destroy();
    await harness.close();
    await backend.close();
  }
});

test('an upstream that dies mid-response: the client gets UNAVAILABLE after the messages it already had', async () => {
  const backend = await spawnBackend('dies');
  const harness = await startRelay([`127.0.0.1:${backend.port}`]);
  const client = makeEchoClient(`127.0.0.1:${harness.port}`, CLIENT_OPTIONS);
  try {
    // A long server stream, slowed by a small message size and many messages; kill the backend while it runs.
    const call = serverStream(client, 200_000, 1000);
    await waitFor(() => harness.relay.poolCount === 1, { message: 'upstream in use' });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await backend.kill();
    await assert.rejects(call, (error: grpc.ServiceError) => {
      assert.equal(error.code, grpc.status.UNAVAILABLE);
      return true;
    });
  } finally {
    client.close();
    await harness.close();
    await backend.kill();
  }
});

test('after clients and backends go, no connection or stream is left open on either side', async () => {
  const backend = await startGrpcServer();
  const harness = await startRelay([`127.0.0.1:${backend.port}`]);
  const client = makeEchoClient(`127.0.0.1:${harness.port}`, CLIENT_OPTIONS);
  await Promise.all(Array.from({ length: 50 }, () => unary(client, Buffer.from('x'))));
  client.close();
  // grpc-js keeps an idle connection in its subchannel pool; the agent's graceful drain closes it.
  const drained = harness.listener.drain(performance.now());
  await waitFor(() => harness.listener.openConnections === 0, { message: 'client connections closed' });
  await drained;
  harness.relay.close();
  const pool = harness.relay.pools.get(`127.0.0.1:${backend.port}`);
  assert.ok(pool !== undefined, 'the endpoint has a pool');
  await waitFor(() => pool.connections.length === 0 && pool.state === 'closed', { message: 'upstream connections closed' });
  await backend.close();
});
