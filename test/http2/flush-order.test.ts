// The order of a turn's flushes: connections with stream frames to send (an answer, a request, a reset) write before
// connections with only acknowledgments, whatever order they asked in; among each kind, the order they asked in.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, Flag, FrameType } from '../../agent/http2/constants.ts';
import { FrameWriter } from '../../agent/http2/frame-writer.ts';
import { type Peer, serverPeer } from '../support/connection-harness.ts';
import { ping, request } from '../support/raw-frames.ts';

/** Server connections by name, whose writes are logged by that name in the order they happen. */
async function loggedPeers(names: readonly string[]): Promise<{ peers: Map<string, Peer>; log: string[] }> {
  const log: string[] = [];
  const peers = new Map<string, Peer>();
  for (const name of names) {
    const peer = serverPeer();
    await peer.settle();
    const transport = peer.transport;
    const write = transport.write.bind(transport);
    transport.write = (chunk: Buffer) => {
      log.push(name);
      write(chunk);
    };
    peers.set(name, peer);
  }
  return { peers, log };
}

/** Lets every connection's pending output flush (one turn flushes them all). */
async function settleAll(peers: Map<string, Peer>): Promise<void> {
  for (const peer of peers.values()) await peer.settle();
}

describe('flush order', () => {
  it('writes an answer before an acknowledgment asked for earlier in the same turn', async () => {
    const { peers, log } = await loggedPeers(['upstream', 'client']);
    peers.get('upstream')?.send(ping('bdpprobe'));
    peers.get('client')?.send(request(1));
    await settleAll(peers);
    assert.deepEqual(log, ['client', 'upstream']);
    assert.equal(peers.get('client')?.headerBlocks()[0].headers[1], '200', 'the answer was written');
  });

  it('keeps the order connections asked in when all carry the same kind of output', async () => {
    const acks = await loggedPeers(['a', 'b', 'c']);
    for (const name of ['b', 'c', 'a']) acks.peers.get(name)?.send(ping(`probe-${name}`.padEnd(8, '.')));
    await settleAll(acks.peers);
    assert.deepEqual(acks.log, ['b', 'c', 'a']);

    const answers = await loggedPeers(['a', 'b', 'c']);
    for (const name of ['c', 'a', 'b']) answers.peers.get(name)?.send(request(1));
    await settleAll(answers.peers);
    assert.deepEqual(answers.log, ['c', 'a', 'b']);
  });
});

describe('what a frame writer carries', () => {
  it('says stream frames are pending after HEADERS, DATA or RST_STREAM, not after connection-level frames only', () => {
    const writer = new FrameWriter();
    writer.writePing(Flag.ACK, Buffer.alloc(8));
    writer.writeSettings(Flag.ACK, []);
    writer.writeWindowUpdate(0, 1000);
    writer.writeWindowUpdate(1, 1000);
    assert.equal(writer.carriesStreamFrames, false);
    writer.writeRstStream(1, ErrorCode.CANCEL);
    assert.equal(writer.carriesStreamFrames, true);
    writer.take();
    assert.equal(writer.carriesStreamFrames, false, 'take() starts over');
    writer.writeData(0, 1, Buffer.from('x'));
    assert.equal(writer.carriesStreamFrames, true);
    writer.take();
    writer.writeFrame(FrameType.HEADERS, Flag.END_HEADERS, 1, Buffer.from([0x88]));
    assert.equal(writer.carriesStreamFrames, true);
  });
});
