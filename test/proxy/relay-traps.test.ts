// Three traps a shared upstream connection sets: a stalled reader, a mass cancellation, and a reset after the data.

import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { META, makeEchoClient, startGrpcServer, unary } from '../../lab/grpc-peers.ts';
import { SERVICE_AUTHORITY, startRelay } from '../support/relay-harness.ts';
import { waitFor } from '../../lab/wait-for.ts';

const GRPC_HEADERS = {
  ':method': 'POST',
  ':authority': SERVICE_AUTHORITY,
  'content-type': 'application/grpc',
  te: 'trailers',
};

/** One gRPC message: the 5-byte prefix and the payload. */
function grpcMessage(payload: Buffer): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(payload.length, 1);
  return Buffer.concat([prefix, payload]);
}

test('a client that stops reading a large response does not stall other clients on the same upstream connection', async () => {
  const backend = await startGrpcServer();
  const harness = await startRelay([`127.0.0.1:${backend.port}`]);
  const stalled = http2.connect(`http://127.0.0.1:${harness.port}`);
  const other = makeEchoClient(`127.0.0.1:${harness.port}`, { 'grpc.default_authority': SERVICE_AUTHORITY });
  try {
    const request = Buffer.alloc(8);
    request.writeUInt32BE(300, 0);
    request.writeUInt32BE(100_000, 4);
    // 20 stalled responses: together more than the 16 MiB connection window of the shared upstream connection.
    const stalledStreams = 20;
    let stalledCount = 0;
    for (let i = 0; i < stalledStreams; i++) {
      const stream = stalled.request({ ...GRPC_HEADERS, ':path': '/test.Echo/ServerStream' });
      stream.on('error', () => {});
      stream.end(grpcMessage(request));
      let own = 0;
      stream.on('data', (chunk: Buffer) => {
        own += chunk.length;
        // Read a little, then stop reading for good: the client's window closes.
        if (own > 100_000 && !stream.isPaused()) {
          stream.pause();
          stalledCount++;
        }
      });
    }
    await waitFor(() => stalledCount === stalledStreams, { message: 'every stalled stream read its first bytes' });
    for (let i = 0; i < 5; i++) {
      await Promise.all(Array.from({ length: 20 }, () => unary(other, Buffer.from('through'), { timeoutMs: 5000 })));
    }
    // What the agent holds for the stalled client is bounded by the upstream stream window (1 MiB by default).
    let queued = 0;
    for (const connection of harness.listener.connections) {
      for (let id = 1; id < 2 * stalledStreams; id += 2) {
        const bytes = connection.getStream(id)?.queuedBytes ?? 0;
        assert.ok(bytes <= 1024 * 1024 + 64 * 1024, `agent buffers ${bytes} bytes for stalled stream ${id}`);
        queued += bytes;
      }
    }
    assert.ok(queued > 0, 'the stalled responses are held by the agent, not lost');
  } finally {
    other.close();
    stalled.destroy();
    await harness.close();
    await backend.close();
  }
});

/**
 * A gRPC unary backend with the rapid-reset protection grpc-go and nghttp2 apply (CVE-2023-44487): a connection on
 * which the peer resets more than `limit` streams within a second is closed with GOAWAY(ENHANCE_YOUR_CALM), failing
 * every other stream on it. Each request waits `x-delay-ms` before its answer.
 */
async function startResetGuardedBackend(limit: number): Promise<{ port: number; calls: { count: number }; closedForResets: { count: number }; close(): Promise<void> }> {
  const calls = { count: 0 };
  const closedForResets = { count: 0 };
  const server = http2.createServer();
  server.on('session', (session) => {
    let windowStart = performance.now();
    let resets = 0;
    session.on('stream', (stream) => {
      stream.on('aborted', () => {
        const now = performance.now();
        if (now - windowStart > 1000) {
          windowStart = now;
          resets = 0;
        }
        if (++resets > limit && !session.closed) {
          closedForResets.count++;
          session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
          session.destroy();
        }
      });
    });
  });
  server.on('stream', (stream, headers) => {
    calls.count++;
    stream.on('error', () => {});
    stream.resume();
    const delay = Number(headers[META.delayMs] ?? 0);
    stream.on('end', () => {
      setTimeout(() => {
        if (stream.destroyed || stream.closed) return;
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(grpcMessage(Buffer.from('ok')));
      }, delay);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    calls,
    closedForResets,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

test("a client dropping 1000 streams in flight does not set off the backend's rapid-reset protection for other RPCs", async () => {
  const backend = await startResetGuardedBackend(200);
  const harness = await startRelay([`127.0.0.1:${backend.port}`]);
  const dropping = http2.connect(`http://127.0.0.1:${harness.port}`);
  const other = makeEchoClient(`127.0.0.1:${harness.port}`, { 'grpc.default_authority': SERVICE_AUTHORITY });
  try {
    await unary(other, Buffer.from('warm'));
    const body = grpcMessage(Buffer.from('slow'));
    for (let i = 0; i < 1000; i++) {
      const stream = dropping.request({ ...GRPC_HEADERS, ':path': '/test.Echo/Unary', [META.delayMs]: '2000' });
      stream.on('error', () => {});
      stream.end(body);
    }
    await waitFor(() => backend.calls.count >= 1001, { timeoutMs: 20_000, message: '1000 calls reached the backend' });
    // Other clients' RPCs are in flight on the same upstream connection when the mass cancellation happens.
    const inFlight = Array.from({ length: 100 }, () => unary(other, Buffer.from('keep'), { metadata: { [META.delayMs]: '300' } }));
    await waitFor(() => backend.calls.count >= 1101, { message: 'the other RPCs reached the backend' });
    dropping.destroy();
    const results = await Promise.allSettled(inFlight);
    const failed = results.filter((r) => r.status === 'rejected');
    assert.equal(failed.length, 0, `failed: ${failed.map((f) => String((f as PromiseRejectedResult).reason)).slice(0, 3)}`);
    assert.equal(backend.closedForResets.count, 0);
    const after = await Promise.allSettled(Array.from({ length: 100 }, () => unary(other, Buffer.from('after'))));
    assert.equal(after.filter((r) => r.status === 'rejected').length, 0);
  } finally {
    other.close();
    dropping.destroy();
    await harness.close();
    await backend.close();
  }
});

test('an upstream that resets with NO_ERROR right after its last DATA: the client gets every byte, then the reset', async () => {
  const body = grpcMessage(Buffer.alloc(3 * 1024 * 1024, 9));
  const backend = http2.createServer();
  backend.on('stream', (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    // Closing the stream while the request is still open: Node sends the DATA, then RST_STREAM(NO_ERROR).
    stream.on('wantTrailers', () => stream.close(http2.constants.NGHTTP2_NO_ERROR));
    stream.end(body);
  });
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  const backendPort = (backend.address() as AddressInfo).port;
  const harness = await startRelay([`127.0.0.1:${backendPort}`]);
  const fetchOnce = async (port: number) => {
    const client = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const stream = client.request({ ...GRPC_HEADERS, ':path': '/test.Echo/Unary' });
      // The request stays open: the backend answers before it has read it all.
      stream.write(grpcMessage(Buffer.from('start')));
      let received = 0;
      stream.on('data', (chunk: Buffer) => {
        received += chunk.length;
      });
      await new Promise<void>((resolve) => stream.on('close', resolve));
      return { received, rstCode: stream.rstCode };
    } finally {
      client.destroy();
    }
  };
  try {
    const direct = await fetchOnce(backendPort);
    assert.deepEqual(direct, { received: body.length, rstCode: http2.constants.NGHTTP2_NO_ERROR });
    const relayed = await fetchOnce(harness.port);
    assert.deepEqual(relayed, direct);
  } finally {
    await harness.close();
    await new Promise((resolve) => backend.close(resolve));
  }
});
