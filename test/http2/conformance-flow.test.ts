// RFC 9113 §6.9 flow control over time, server role: windows stop and resume response DATA, SETTINGS deltas, consume() credit, backpressure.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ErrorCode } from '../../agent/http2/constants.ts';
import { type Peer, serverPeer } from '../support/connection-harness.ts';
import { waitForOutput } from '../support/memory-transport.ts';
import { F, type RawFrame, S, T, data, dataBytes, request, settings, windowUpdate, windowUpdates } from '../support/raw-frames.ts';

/** What the client saw on `stream`: response head, DATA bytes, trailers, and how the stream ended for the handler. */
function progress(peer: Peer, stream: number): { head: boolean; bytes: number; trailers: boolean; endings: string[] } {
  const blocks = peer.headerBlocks().filter((b) => b.streamId === stream);
  return {
    head: blocks.length > 0 && blocks[0].headers[1] === '200',
    bytes: dataBytes(peer.frames, stream),
    trailers: blocks.length === 2 && blocks[1].endStream && blocks[1].headers.includes('grpc-status'),
    endings: peer.handler.endings(stream),
  };
}

function largestFrame(frames: readonly RawFrame[], type: number): number {
  return Math.max(0, ...frames.filter((f) => f.type === type).map((f) => f.payload.length));
}

describe('§6.9 flow control of response DATA', () => {
  test('§6.9.1 a zero stream window stops DATA; WINDOW_UPDATEs release exactly their increment', async () => {
    const peer = serverPeer({ handler: { responseBody: Buffer.alloc(1000, 1) } }, [[S.INITIAL_WINDOW_SIZE, 0]]);
    peer.send(request(1));
    await peer.settle();
    assert.deepEqual(progress(peer, 1), { head: true, bytes: 0, trailers: false, endings: [] });
    peer.send(windowUpdate(1, 300));
    await peer.settle();
    assert.deepEqual(progress(peer, 1), { head: true, bytes: 300, trailers: false, endings: [] });
    peer.send(windowUpdate(1, 699));
    await peer.settle();
    assert.deepEqual(progress(peer, 1), { head: true, bytes: 999, trailers: false, endings: [] });
    peer.send(windowUpdate(1, 1));
    await peer.settle();
    assert.deepEqual(progress(peer, 1), { head: true, bytes: 1000, trailers: true, endings: ['close'] });
    assert.equal(peer.handler.dataSent.get(1), 1000);
  });

  test('§6.9.1 the connection window bounds DATA across streams; both resume on a connection WINDOW_UPDATE', async () => {
    const peer = serverPeer({ handler: { responseBody: Buffer.alloc(40_000, 2) } }, [[S.INITIAL_WINDOW_SIZE, 1 << 20]]);
    peer.send(request(1), request(3));
    await peer.settle();
    const sent = () => dataBytes(peer.frames, 1) + dataBytes(peer.frames, 3);
    assert.equal(sent(), 65_535);
    peer.send(windowUpdate(0, 10_000));
    await peer.settle();
    assert.equal(sent(), 75_535);
    peer.send(windowUpdate(0, 10_000));
    await peer.settle();
    assert.equal(sent(), 80_000);
    assert.deepEqual([progress(peer, 1).trailers, progress(peer, 3).trailers], [true, true]);
    assert.ok(largestFrame(peer.frames, T.DATA) <= 16_384, 'DATA frames within the client MAX_FRAME_SIZE');
  });

  test('§6.5.2 a larger client MAX_FRAME_SIZE allows larger DATA frames, never above it', async () => {
    const peer = serverPeer({ handler: { responseBody: Buffer.alloc(100_000, 3) } }, [
      [S.INITIAL_WINDOW_SIZE, 1 << 20],
      [S.MAX_FRAME_SIZE, 32_768],
    ]);
    peer.send(windowUpdate(0, 1 << 20), request(1));
    await peer.settle();
    assert.equal(progress(peer, 1).bytes, 100_000);
    assert.equal(largestFrame(peer.frames, T.DATA), 32_768);
  });

  test('§6.9.2 INITIAL_WINDOW_SIZE changes apply their delta to open streams; a negative window waits for WINDOW_UPDATE', async () => {
    const peer = serverPeer({ handler: { responseBody: Buffer.alloc(3000, 4) } }, [[S.INITIAL_WINDOW_SIZE, 1000]]);
    peer.send(request(1));
    await peer.settle();
    assert.equal(progress(peer, 1).bytes, 1000);
    const stream = peer.handler.streams.get(1);
    peer.send(settings([[S.INITIAL_WINDOW_SIZE, 500]]));
    await peer.settle();
    assert.equal(stream?.sendWindow, -500);
    peer.send(windowUpdate(1, 400));
    await peer.settle();
    assert.equal(progress(peer, 1).bytes, 1000, 'window still negative (-100): nothing sent');
    peer.send(windowUpdate(1, 300));
    await peer.settle();
    assert.equal(progress(peer, 1).bytes, 1200);
    peer.send(settings([[S.INITIAL_WINDOW_SIZE, 2300]]));
    await peer.settle();
    assert.deepEqual(progress(peer, 1), { head: true, bytes: 3000, trailers: true, endings: ['close'] });
    // A stream opened after the change starts with the new initial window.
    peer.send(settings([[S.INITIAL_WINDOW_SIZE, 10]]), request(3));
    await peer.settle();
    assert.equal(progress(peer, 3).bytes, 10);
  });

  test('§6.9.1 the server sends no DATA when the stream is blocked, even with connection window to spare', async () => {
    const peer = serverPeer({ handler: { responseBody: Buffer.alloc(500, 5) } }, [[S.INITIAL_WINDOW_SIZE, 100]]);
    peer.send(request(1), request(3));
    await peer.settle();
    assert.deepEqual([progress(peer, 1).bytes, progress(peer, 3).bytes], [100, 100]);
    peer.send(windowUpdate(0, 1_000_000), windowUpdate(3, 400));
    await peer.settle();
    assert.deepEqual([progress(peer, 1).bytes, progress(peer, 3).bytes], [100, 500]);
  });
});

describe('§6.9 receive windows follow consume()', () => {
  test('§6.9 stream WINDOW_UPDATEs are sent only for consumed bytes, batched to half the window', async () => {
    const peer = serverPeer({ settings: { initialWindowSize: 1000 }, handler: { respond: false, consume: false } });
    peer.send(request(1, false), data(1, Buffer.alloc(400)));
    await peer.settle();
    assert.deepEqual(windowUpdates(peer.frames, 1), []);
    const stream = peer.handler.streams.get(1);
    assert.ok(stream !== undefined);
    peer.connection.consume(stream, 400);
    await peer.settle();
    assert.deepEqual(windowUpdates(peer.frames, 1), [], 'below half of the window: batched');
    peer.send(data(1, Buffer.alloc(200)));
    peer.connection.consume(stream, 200);
    await peer.settle();
    assert.deepEqual(windowUpdates(peer.frames, 1), [600]);
    // The window is 1000 again: exactly that much is accepted, one more byte is not.
    peer.send(data(1, Buffer.alloc(1000)));
    await peer.settle();
    assert.deepEqual(peer.resets(), []);
    peer.send(data(1, Buffer.alloc(1)));
    await peer.settle();
    assert.deepEqual(peer.resets(), [{ stream: 1, code: ErrorCode.FLOW_CONTROL_ERROR }]);
  });

  test('§6.9 connection WINDOW_UPDATEs: the initial increase, then credit for consumed bytes', async () => {
    const peer = serverPeer({ connectionWindowSize: 131_070, handler: { respond: false } });
    await peer.settle();
    assert.deepEqual(windowUpdates(peer.frames, 0), [65_535]);
    peer.send(request(1, false), data(1, Buffer.alloc(16_384)), data(1, Buffer.alloc(16_384)));
    await peer.settle();
    assert.deepEqual(windowUpdates(peer.frames, 0), [65_535], 'below half of the connection window');
    peer.send(data(1, Buffer.alloc(16_384)), data(1, Buffer.alloc(16_384)));
    await peer.settle();
    assert.deepEqual(windowUpdates(peer.frames, 0), [65_535, 65_536]);
  });

  test('§6.9 without consume() no window is returned, and the client is held to it', async () => {
    const peer = serverPeer({ connectionWindowSize: 65_535, handler: { respond: false, consume: false } });
    peer.send(request(1, false), ...[1, 2, 3].map(() => data(1, Buffer.alloc(16_384))), data(1, Buffer.alloc(16_383)));
    await peer.settle();
    assert.deepEqual(windowUpdates(peer.frames, 0), []);
    assert.deepEqual(windowUpdates(peer.frames, 1), []);
    peer.send(data(1, Buffer.alloc(1)));
    await peer.settle();
    assert.equal(peer.goaways()[0]?.code, ErrorCode.FLOW_CONTROL_ERROR);
  });

  test('§6.1 padding is returned to the connection window without waiting for consume()', async () => {
    const peer = serverPeer({ connectionWindowSize: 65_535, handler: { respond: false, consume: false } });
    // 128 frames of 1 data byte and 255 padding bytes (+1 length byte): 32768 padding octets, past half the window.
    peer.send(request(1, false), ...Array.from({ length: 128 }, () => data(1, 'x', { padding: 255 })));
    await peer.settle();
    assert.deepEqual(windowUpdates(peer.frames, 0), [32_768]);
    assert.deepEqual(windowUpdates(peer.frames, 1), [], 'the stream window waits for consume()');
  });
});

describe('socket backpressure', () => {
  test('a socket that does not drain stops DATA framing; drain resumes it; output per flush stays bounded', async () => {
    const body = Buffer.alloc(3 << 20, 6);
    const peer = serverPeer({ handler: { responseBody: body } }, [[S.INITIAL_WINDOW_SIZE, 2 ** 31 - 1]]);
    peer.send(windowUpdate(0, 2 ** 31 - 1 - 65_535));
    peer.transport.hold(2 << 20);
    peer.send(request(1));
    await peer.settle();
    assert.equal(progress(peer, 1).bytes, 0, 'nothing framed while the socket holds 2 MiB');
    assert.ok(progress(peer, 1).head);
    peer.transport.release();
    await waitForOutput(() => {
      peer.parse();
      return progress(peer, 1).trailers;
    }, 'the whole body and trailers');
    assert.equal(progress(peer, 1).bytes, body.length);
    const largestWrite = Math.max(...peer.transport.chunks.map((c) => c.length));
    assert.ok(largestWrite <= (1 << 20) + 64 * 1024, `largest write ${largestWrite} bytes`);
    assert.ok(peer.frames.every((f) => f.type !== T.DATA || (f.flags & F.PADDED) === 0));
  });
});
