// Proves the gRPC fixture itself: a grpc-js client against the grpc-js echo server directly, no meshlite between.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import {
  bidi,
  clientStream,
  type EchoServiceClient,
  type GrpcServerHandle,
  META,
  makeEchoClient,
  serverStream,
  startGrpcServer,
  unary,
} from '../../lab/grpc-peers.ts';
import { waitFor } from '../../lab/wait-for.ts';

describe('grpc-peers: echo service over grpc-js, no meshlite', () => {
  let peer: GrpcServerHandle;
  let client: EchoServiceClient;

  before(async () => {
    peer = await startGrpcServer({ id: 'backend-a' });
    client = makeEchoClient(`127.0.0.1:${peer.port}`);
  });
  after(async () => {
    client.close();
    await peer.close();
  });

  it('Unary echoes the request and reports who served it', async () => {
    const res = await unary(client, Buffer.from('hello'), { metadata: { 'x-echo-trace': 'abc', 'x-other': 'no' } });
    assert.equal(res.message.toString(), 'hello');
    assert.deepEqual(res.headers.get(META.servedBy), ['backend-a']);
    assert.deepEqual(res.headers.get('x-echo-trace'), ['abc']);
    assert.deepEqual(res.headers.get('x-other'), []);
    assert.deepEqual(res.trailers.get(META.servedBy), ['backend-a']);
  });

  it('Unary sees the deadline and fails on request', async () => {
    const res = await unary(client, Buffer.from('x'), { timeoutMs: 5_000 });
    const left = Number(res.headers.get(META.deadlineLeftMs)[0]);
    assert.ok(left > 3_000 && left <= 5_000, `deadline left ${left}`);
    await assert.rejects(unary(client, Buffer.from('x'), { metadata: { [META.failCode]: '14' } }), {
      code: grpc.status.UNAVAILABLE,
      details: 'requested failure 14',
    });
  });

  it('a delayed Unary past its deadline fails DEADLINE_EXCEEDED and the server sees the cancellation', async () => {
    const before = peer.cancelled.count;
    await assert.rejects(unary(client, Buffer.from('slow'), { timeoutMs: 50, metadata: { [META.delayMs]: '300' } }), {
      code: grpc.status.DEADLINE_EXCEEDED,
    });
    await waitFor(() => peer.cancelled.count === before + 1, { message: 'server-side cancellation' });
  });

  it('ClientStream counts, sizes and hashes the messages in order', async () => {
    const bufs = [Buffer.from('a'), Buffer.alloc(70_000, 7), Buffer.from('ccc')];
    const res = await clientStream(client, bufs);
    assert.equal(res.count, 3);
    assert.equal(res.bytes, 70_004);
    assert.equal(res.sha256, createHash('sha256').update(Buffer.concat(bufs)).digest('hex'));
    const empty = await clientStream(client, []);
    assert.equal(empty.count, 0);
  });

  it('ServerStream sends count messages of size bytes, numbered in order', async () => {
    const res = await serverStream(client, 500, 1_000);
    assert.equal(res.messages.length, 500);
    res.messages.forEach((m, i) => {
      assert.equal(m.length, 1_000);
      assert.equal(m.readUInt32BE(0), i);
    });
    const big = await serverStream(client, 40, 256 * 1024); // over the default windows: exercises backpressure
    assert.deepEqual(
      big.messages.map((m) => m.readUInt32BE(0)),
      Array.from({ length: 40 }, (_, i) => i),
    );
  });

  it('BidiStream echoes each message in order', async () => {
    const bufs = Array.from({ length: 200 }, (_, i) => Buffer.from(`m${i}`));
    const res = await bidi(client, bufs);
    assert.deepEqual(
      res.messages.map((m) => m.toString()),
      bufs.map((b) => b.toString()),
    );
    const delayed = await bidi(client, bufs.slice(0, 3), { metadata: { [META.delayMs]: '5' } });
    assert.deepEqual(
      delayed.messages.map((m) => m.toString()),
      ['m0', 'm1', 'm2'],
    );
  });

  it('streaming methods fail on request with the requested code and trailers', async () => {
    const md = { [META.failCode]: String(grpc.status.RESOURCE_EXHAUSTED) };
    const expected = { code: grpc.status.RESOURCE_EXHAUSTED, details: 'requested failure 8' };
    await assert.rejects(serverStream(client, 3, 8, { metadata: md }), expected);
    await assert.rejects(bidi(client, [Buffer.from('x')], { metadata: md }), expected);
    await assert.rejects(clientStream(client, [Buffer.from('x')], { metadata: md }), (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.RESOURCE_EXHAUSTED);
      assert.deepEqual(err.metadata.get(META.servedBy), ['backend-a']);
      return true;
    });
  });

  it('counts every call it starts', async () => {
    const before = peer.calls.count;
    await Promise.all([unary(client, Buffer.from('1')), serverStream(client, 1, 4), bidi(client, [])]);
    assert.equal(peer.calls.count, before + 3);
  });
});
