// The outcome of each request end to end, with real grpc-js peers: the exact status and message the client sees, the
// error code the relay reports, and the in-flight count the balancer sees during and after the call.

import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { META, echoService, makeEchoClient, startGrpcServer, unary } from '../../lab/grpc-peers.ts';
import { waitFor } from '../../lab/wait-for.ts';
import { UNSENT_HOLD_MS } from '../../agent/proxy/transparent-retry.ts';
import { SERVICE_AUTHORITY, SERVICE_KEY, startRelay } from '../support/relay-harness.ts';

const CLIENT_OPTIONS = { 'grpc.default_authority': SERVICE_AUTHORITY };

/** An address nothing listens on: a port the kernel handed out, then closed. */
async function refusedAddress(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `127.0.0.1:${port}`;
}

function failure(promise: Promise<unknown>): Promise<{ code: number; details: string }> {
  return promise.then(
    () => ({ code: grpc.status.OK, details: '' }),
    (error: grpc.ServiceError) => ({ code: error.code, details: error.details }),
  );
}

test('a service with no endpoint: UNAVAILABLE "no ready endpoint for <service>", ML_NO_ENDPOINT', async () => {
  const harness = await startRelay([]);
  const client = makeEchoClient(`127.0.0.1:${harness.port}`, CLIENT_OPTIONS);
  try {
    const result = await failure(unary(client, Buffer.from('x'), { timeoutMs: 5000 }));
    assert.deepEqual(result, { code: grpc.status.UNAVAILABLE, details: `no ready endpoint for ${SERVICE_KEY}` });
    assert.deepEqual(harness.outcomes, [{ status: grpc.status.UNAVAILABLE, code: 'ML_NO_ENDPOINT' }]);
  } finally {
    client.close();
    await harness.close();
  }
});

test('an endpoint that refuses connections: held for UNSENT_HOLD_MS, then UNAVAILABLE naming endpoint, service and reason, ML_CONNECT_FAILED', async () => {
  const refused = await refusedAddress();
  const harness = await startRelay([refused]);
  const client = makeEchoClient(`127.0.0.1:${harness.port}`, CLIENT_OPTIONS);
  try {
    const started = performance.now();
    const result = await failure(unary(client, Buffer.from('x'), { timeoutMs: 30_000 }));
    const heldMs = performance.now() - started;
    assert.ok(heldMs >= UNSENT_HOLD_MS - 50 && heldMs < UNSENT_HOLD_MS + 5_000, `held ${Math.round(heldMs)} ms`);
    assert.equal(result.code, grpc.status.UNAVAILABLE);
    assert.match(result.details, new RegExp(`^connect to ${refused} for ${SERVICE_KEY} failed: \\S`));
    assert.deepEqual(harness.outcomes, [{ status: grpc.status.UNAVAILABLE, code: 'ML_CONNECT_FAILED' }]);
    assert.equal(harness.loads.get(refused)?.inFlight, 0, 'each failed attempt was reported to the balancer');
  } finally {
    client.close();
    await harness.close();
  }
});

test('a refused connect is sent to the other endpoint: every call succeeds, and nothing stays in flight', async () => {
  const refused = await refusedAddress();
  const backend = await startGrpcServer();
  const good = `127.0.0.1:${backend.port}`;
  const harness = await startRelay([refused, good]);
  const client = makeEchoClient(`127.0.0.1:${harness.port}`, CLIENT_OPTIONS);
  try {
    // Round-robin over two: one of the first two calls picks the refused endpoint first.
    for (let i = 0; i < 4; i++) {
      assert.equal((await unary(client, Buffer.from(`m${i}`), { timeoutMs: 5000 })).message.toString(), `m${i}`);
    }
    assert.equal(backend.calls.count, 4);
    assert.deepEqual(harness.outcomes, Array(4).fill({ status: grpc.status.OK, code: null }));
    assert.deepEqual([harness.loads.get(refused)?.inFlight, harness.loads.get(good)?.inFlight], [0, 0]);
  } finally {
    client.close();
    await harness.close();
    await backend.close();
  }
});

test('a call in flight counts for its endpoint; a client cancel ends it as CANCELLED, ML_CLIENT_CANCELLED, and the count drops', async () => {
  const backend = await startGrpcServer();
  const address = `127.0.0.1:${backend.port}`;
  const harness = await startRelay([address]);
  const client = makeEchoClient(`127.0.0.1:${harness.port}`, CLIENT_OPTIONS);
  try {
    const metadata = new grpc.Metadata();
    metadata.set(META.delayMs, '8000');
    const identity = (b: Buffer) => b;
    const ended = new Promise<grpc.ServiceError | null>((resolve) => {
      const call = client.makeUnaryRequest(echoService.Unary.path, identity, identity, Buffer.from('slow'), metadata, { deadline: Date.now() + 10_000 }, (error) =>
        resolve(error),
      );
      waitFor(() => backend.calls.count === 1, { message: 'the call reached the backend' }).then(
        () => {
          assert.equal(harness.loads.get(address)?.inFlight, 1, 'the balancer sees the call in flight');
          call.cancel();
        },
        () => {},
      );
    });
    assert.equal((await ended)?.code, grpc.status.CANCELLED);
    await waitFor(() => harness.outcomes.length === 1, { message: 'the relay saw the cancel' });
    assert.deepEqual(harness.outcomes, [{ status: grpc.status.CANCELLED, code: 'ML_CLIENT_CANCELLED' }]);
    // At once, not when the 8 s handler would have answered: the relay resets the upstream stream itself.
    await waitFor(() => backend.cancelled.count === 1, { timeoutMs: 3000, message: 'the backend saw the cancel' });
    assert.equal(harness.loads.get(address)?.inFlight, 0);
  } finally {
    client.close();
    await harness.close();
    await backend.close();
  }
});
