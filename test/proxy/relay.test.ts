// The relay with real @grpc/grpc-js clients and servers: per-request balancing, every streaming kind, errors.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import {
  type GrpcServerHandle,
  bidi,
  clientStream,
  echoService,
  makeEchoClient,
  serverStream,
  startGrpcServer,
  unary,
} from '../../lab/grpc-peers.ts';
import { type RelayHarness, SERVICE_AUTHORITY, startRelay } from '../support/relay-harness.ts';

let backends: GrpcServerHandle[] = [];
let harness: RelayHarness;

before(async () => {
  backends = await Promise.all([1, 2, 3].map((i) => startGrpcServer({ id: `b${i}` })));
  harness = await startRelay(backends.map((b) => `127.0.0.1:${b.port}`));
});

after(async () => {
  await harness.close();
  await Promise.all(backends.map((b) => b.close()));
});

function client(authority = SERVICE_AUTHORITY) {
  return makeEchoClient(`127.0.0.1:${harness.port}`, {
    'grpc.default_authority': authority,
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.max_send_message_length': 64 * 1024 * 1024,
  });
}

test('3000 unary RPCs on one channel spread exactly evenly with round-robin: 1000 each', async () => {
  const c = client();
  try {
    const before = backends.map((b) => b.calls.count);
    const payload = Buffer.from('hello');
    for (let batch = 0; batch < 30; batch++) {
      await Promise.all(Array.from({ length: 100 }, () => unary(c, payload)));
    }
    const served = backends.map((b, i) => b.calls.count - before[i]);
    assert.equal(served.reduce((a, b) => a + b, 0), 3000);
    // One pick per request (nothing fails, so nothing is retried or skipped), in turn over three: exact, whatever the
    // picker's random start.
    assert.deepEqual(served, [1000, 1000, 1000], `spread ${served.join('/')}`);
  } finally {
    c.close();
  }
});

test('client-, server- and bidi-streaming pass every message in order, beyond the windows', async () => {
  const c = client();
  try {
    const big = Buffer.alloc(3 * 1024 * 1024, 7);
    const messages = [Buffer.from('a'), big, Buffer.from('c'), Buffer.alloc(70_000, 1)];
    const summary = await clientStream(c, messages);
    assert.equal(summary.count, 4);
    assert.equal(summary.sha256, createHash('sha256').update(Buffer.concat(messages)).digest('hex'));
    const streamed = await serverStream(c, 20, 300_000);
    assert.equal(streamed.messages.length, 20);
    assert.deepEqual(
      streamed.messages.map((m: Buffer) => m.readUInt32BE(0)),
      Array.from({ length: 20 }, (_, i) => i),
    );
    const echoed = await bidi(c, messages);
    assert.deepEqual(echoed.messages.map((m: Buffer) => m.length), messages.map((m) => m.length));
  } finally {
    c.close();
  }
});

test('an unknown :authority gets UNAVAILABLE naming the target', async () => {
  const c = client('nosuch.default.svc.cluster.local:50051');
  try {
    await assert.rejects(unary(c, Buffer.from('x')), (error: grpc.ServiceError) => {
      assert.equal(error.code, grpc.status.UNAVAILABLE);
      assert.match(error.details, /nosuch\.default/);
      return true;
    });
  } finally {
    c.close();
  }
});

test('a client stream whose end comes alone, after its small body already went upstream, ends upstream too', async () => {
  // A server that says when the first message arrived, so the client ends its stream only once the relay has sent
  // the body on (and still holds it: 1 byte can still be retried). The call has a deadline, so a request the relay
  // never ends fails the test instead of hanging it.
  let firstMessage: () => void = () => {};
  const arrived = new Promise<void>((resolve) => {
    firstMessage = resolve;
  });
  const server = new grpc.Server();
  server.addService(echoService, {
    ClientStream: (call: grpc.ServerReadableStream<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      let count = 0;
      call.on('data', () => {
        count++;
        firstMessage();
      });
      call.on('end', () => callback(null, Buffer.from(`got ${count}`)));
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  const relay = await startRelay([`127.0.0.1:${port}`]);
  const c = makeEchoClient(`127.0.0.1:${relay.port}`, { 'grpc.default_authority': SERVICE_AUTHORITY });
  try {
    const reply = new Promise<Buffer>((resolve, reject) => {
      const call = c.makeClientStreamRequest(
        echoService.ClientStream.path,
        (b: Buffer) => b,
        (b: Buffer) => b,
        new grpc.Metadata(),
        { deadline: Date.now() + 10_000 },
        (error, value) => (error ? reject(error) : resolve(value as Buffer)),
      );
      call.write(Buffer.from('a'));
      arrived.then(() => call.end());
    });
    assert.equal((await reply).toString(), 'got 1');
    assert.deepEqual(relay.outcomes, [{ status: 0, code: null }]);
  } finally {
    c.close();
    await relay.close();
    server.forceShutdown();
  }
});
