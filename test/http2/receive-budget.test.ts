// The receive budget: a connection that credits on receive does so only while it holds at most its budget (and the
// shared account is not exhausted), then only as bytes are consumed; what it holds is reported to the account; one
// stalled stream cannot starve the others, and stalled streams together cannot make it hold more than budget + window.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BufferAccount } from '../../agent/http2/connection-options.ts';
import { ErrorCode } from '../../agent/http2/constants.ts';
import { FrameWriter } from '../../agent/http2/frame-writer.ts';
import { ReceiveWindow } from '../../agent/http2/receive-window.ts';
import { advertisedDefaultSettings } from '../../agent/http2/settings.ts';
import { Stream } from '../../agent/http2/stream.ts';
import { serverPeer } from '../support/connection-harness.ts';
import { data, parseFrames, request, windowUpdates } from '../support/raw-frames.ts';

class RecordingAccount implements BufferAccount {
  held = 0;
  exhausted = false;
  add(bytes: number): void {
    this.held += bytes;
  }
}

/** A receive window whose every connection credit is written at once (target 2: half of it is one byte). */
function subject(budget: number, account: BufferAccount | null = null) {
  const writer = new FrameWriter();
  const settings = { ...advertisedDefaultSettings(), initialWindowSize: 1 << 20 };
  const window = new ReceiveWindow(writer, settings, 2, budget, account, () => {});
  const open = (id: number): Stream => {
    const stream = new Stream(id, true, 1 << 20, 1 << 20);
    stream.state = 'open';
    return stream;
  };
  const connectionUpdates = (): number[] => windowUpdates(parseFrames(Buffer.concat(writer.take())), 0);
  return { window, open, connectionUpdates };
}

describe('receive budget', () => {
  it('credits on receive up to the budget, then as bytes are consumed, whichever stream they were on', () => {
    const account = new RecordingAccount();
    const { window, open, connectionUpdates } = subject(1000, account);
    const a = open(1);
    const b = open(3);
    assert.ok(window.takeOnStream(a, 600, 600));
    assert.ok(window.takeOnStream(a, 600, 600));
    assert.ok(window.takeOnStream(b, 300, 300));
    assert.deepEqual(connectionUpdates(), [600], 'only the bytes within the budget were returned on receive');
    assert.equal(window.held, 1500);
    assert.equal(account.held, 1500);
    window.consume(b, 300, true);
    assert.deepEqual(connectionUpdates(), [300], "B's consumed bytes return window owed for A's");
    window.consume(a, 1200, true);
    assert.deepEqual(connectionUpdates(), [600], 'what stayed owed, and no more');
    assert.equal(window.held, 0);
    assert.equal(account.held, 0);
  });

  it('credits nothing on receive while the shared account is exhausted, and padding always', () => {
    const account = new RecordingAccount();
    account.exhausted = true;
    const { window, open, connectionUpdates } = subject(1000, account);
    const a = open(1);
    assert.ok(window.takeOnStream(a, 110, 100));
    assert.deepEqual(connectionUpdates(), [10], 'the padding only');
    window.releaseStream(a);
    assert.deepEqual(connectionUpdates(), [100], 'an ended stream gives back what it held');
    assert.equal(account.held, 0);
  });

  it('with budget 0 (no credit on receive) returns bytes only as they are consumed', () => {
    const { window, open, connectionUpdates } = subject(0);
    const a = open(1);
    assert.ok(window.takeOnStream(a, 500, 500));
    assert.deepEqual(connectionUpdates(), []);
    window.consume(a, 200, true);
    assert.deepEqual(connectionUpdates(), [200]);
  });

  it('one stalled stream does not starve the others; stalled streams past budget + window do', async () => {
    // Stream windows of 16 KiB, a 32 KiB budget and the protocol's 65535-byte connection window.
    const peer = serverPeer(
      { creditConnectionOnReceive: true, receiveBudget: 32 * 1024, connectionWindowSize: 65_535, settings: { initialWindowSize: 16 * 1024 }, handler: { consume: false, respond: false } },
      [],
    );
    const fill = Buffer.alloc(16 * 1024);
    // Stream 1 stalls at its full window.
    peer.send(request(1, false), data(1, fill));
    // Stream 3 moves 200 KiB, three times the connection window, as its reader consumes.
    peer.send(request(3, false));
    await peer.settle();
    const three = peer.handler.streams.get(3);
    assert.ok(three);
    for (let sent = 0; sent < 200 * 1024; sent += 8 * 1024) {
      peer.send(data(3, Buffer.alloc(8 * 1024)));
      peer.connection.consume(three, 8 * 1024);
    }
    await peer.settle();
    assert.deepEqual(peer.goaways(), [], 'the busy stream never ran out of connection window');
    // Stalled streams: 5, 7, 9, 11 fill their windows (with stream 1: 80 KiB held, 48 KiB past the budget, owed).
    for (const id of [5, 7, 9, 11]) peer.send(request(id, false), data(id, fill));
    await peer.settle();
    assert.deepEqual(peer.goaways(), []);
    // The connection window left is budget + window - held = 17 KiB - 1: a stream that sends 18 KiB breaks it.
    peer.send(request(13, false), data(13, Buffer.alloc(9 * 1024)), data(13, Buffer.alloc(9 * 1024)));
    await peer.settle();
    assert.deepEqual(
      peer.goaways().map((g) => g.code),
      [ErrorCode.FLOW_CONTROL_ERROR],
      'stalled bytes past the budget keep their connection window',
    );
  });
});
