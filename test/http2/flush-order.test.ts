// The order of a turn's flushes: connections with stream frames to send (an answer, a request, a reset) write before
// connections with only acknowledgments, whatever order they asked in; among each kind, the order they asked in.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, Flag, FrameType } from '../../agent/http2/constants.ts';
import { FrameWriter } from '../../agent/http2/frame-writer.ts';
import { type Peer, serverPeer } from '../support/connection-harness.ts';
import { ping, request } from '../support/raw-frames.ts';

/** Server connections whose writes are logged, in the order they happen, by the name given here. */
async function loggedPeers(names: readonly string[]): Promise<{ peers: Peer[]; log: string[] }> {
  const log: string[] = [];
  const peers: Peer[] = [];
  for (const name of names) {
    const peer = serverPeer();
    await peer.settle();
    const transport = peer.transport;
    const write = transport.write.bind(transport);
    transport.write = (chunk: Buffer) => {
      log.push(name);
      write(chunk);
    };
    peers.push(peer);
  }
  return { peers, log };
}

describe('flush order', () => {
  it('writes an answer before an acknowledgment asked for earlier in the same turn', async () => {
    const { peers, log } = await loggedPeers(['upstream', 'client']);
    const [upstream, client] = peers;
    upstream.send(ping('bdpprobe'));
    client.send(request(1));
    await upstream.settle();
    await client.settle();
    assert.deepEqual(log, ['client', 'upstream']);
    assert.equal(client.headerBlocks()[0].headers[1], '200', 'the answer was written');
  });

  it('keeps the order connections asked in when all carry the same kind of output', async () => {
    const acks = await loggedPeers(['a', 'b', 'c']);
    for (const name of ['b', 'c', 'a']) acks.peers[['a', 'b', 'c'].indexOf(name)].send(ping(`probe-${name}`.padEnd(8, '.')));
    await acks.peers[0].settle();
    assert.deepEqual(acks.log, ['b', 'c', 'a']);

    const answers = await loggedPeers(['a', 'b', 'c']);
    for (const name of ['c', 'a', 'b']) answers.peers[['a', 'b', 'c'].indexOf(name)].send(request(1));
    await answers.peers[0].settle();
    assert.deepEqual(answers.log, ['c', 'a', 'b']);
  });
});

describe('what a frame writer carries', () => {
  it('says stream frames are pending after HEADERS, DATA or RST_STREAM, and not after connection-level frames only', () => {
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
