// RFC 9113 server-role conformance, table-driven: connection preface, SETTINGS, PING, CONTINUATION and padding.

import assert from 'node:assert/strict';
import { ErrorCode } from '../../agent/http2/constants.ts';
import { type ConformanceCase, all, answered, quiet, requestsWere, runSections } from '../support/connection-harness.ts';
import {
  F,
  PREFACE,
  REQUEST,
  S,
  T,
  continuation,
  data,
  frame,
  headers,
  hpackLiterals,
  pings,
  request,
  settings,
  settingsAck,
  settingsAcks,
} from '../support/raw-frames.ts';

const E = ErrorCode;
const BLOCK = hpackLiterals(REQUEST);
const sections: Array<[string, ConformanceCase[]]> = [
  [
    '§3.4 connection preface',
    [
      {
        name: '§3.4 an invalid preface is a connection error PROTOCOL_ERROR',
        rawStart: true,
        frames: [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), settings()],
        expect: { connectionError: E.PROTOCOL_ERROR },
      },
      {
        name: '§3.4 a preface with a wrong byte near its end is a connection error PROTOCOL_ERROR',
        rawStart: true,
        frames: [Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\r'), settings()],
        expect: { connectionError: E.PROTOCOL_ERROR },
      },
      {
        name: '§3.4 a first frame other than SETTINGS (PING) is a connection error PROTOCOL_ERROR',
        rawStart: true,
        frames: [PREFACE, frame(T.PING, 0, 0, Buffer.alloc(8))],
        expect: { connectionError: E.PROTOCOL_ERROR },
      },
      {
        name: '§3.4 a SETTINGS ACK as the first frame is a connection error PROTOCOL_ERROR',
        rawStart: true,
        frames: [PREFACE, settingsAck()],
        expect: { connectionError: E.PROTOCOL_ERROR },
      },
      {
        name: '§3.4 a valid preface in any split is accepted and its SETTINGS acknowledged',
        rawStart: true,
        frames: [PREFACE, settings([[S.MAX_FRAME_SIZE, 20_000]]), settingsAck(), request(1)],
        expect: { ok: all(requestsWere([1]), (peer) => assert.equal(settingsAcks(peer.frames), 1)) },
      },
    ],
  ],
  [
    '§6.5 SETTINGS',
    [
      {
        name: '§6.5 SETTINGS is acknowledged and applied',
        frames: [settings([[S.MAX_CONCURRENT_STREAMS, 10]])],
        expect: {
          ok: (peer) => {
            assert.equal(settingsAcks(peer.frames), 2);
            assert.equal(peer.connection.remoteSettings.maxConcurrentStreams, 10);
            assert.equal(peer.handler.events.filter((e) => e.kind === 'settings').length, 2);
          },
        },
      },
      {
        name: '§6.5 SETTINGS ACK with a payload is a connection error FRAME_SIZE_ERROR',
        frames: [frame(T.SETTINGS, F.ACK, 0, Buffer.alloc(6))],
        expect: { connectionError: E.FRAME_SIZE_ERROR },
      },
      {
        name: '§6.5 SETTINGS length not a multiple of 6 is a connection error FRAME_SIZE_ERROR',
        frames: [frame(T.SETTINGS, 0, 0, Buffer.alloc(5))],
        expect: { connectionError: E.FRAME_SIZE_ERROR },
      },
      {
        name: '§6.5 SETTINGS on a stream is a connection error PROTOCOL_ERROR',
        frames: [frame(T.SETTINGS, 0, 1)],
        expect: { connectionError: E.PROTOCOL_ERROR },
      },
      {
        name: '§6.5.2 ENABLE_PUSH=2 is a connection error PROTOCOL_ERROR',
        frames: [settings([[S.ENABLE_PUSH, 2]])],
        expect: { connectionError: E.PROTOCOL_ERROR },
      },
      {
        name: '§6.5.2 INITIAL_WINDOW_SIZE above 2^31-1 is a connection error FLOW_CONTROL_ERROR',
        frames: [settings([[S.INITIAL_WINDOW_SIZE, 2 ** 31]])],
        expect: { connectionError: E.FLOW_CONTROL_ERROR },
      },
      {
        name: '§6.5.2 MAX_FRAME_SIZE below 16384 is a connection error PROTOCOL_ERROR',
        frames: [settings([[S.MAX_FRAME_SIZE, 16_383]])],
        expect: { connectionError: E.PROTOCOL_ERROR },
      },
      {
        name: '§6.5.2 MAX_FRAME_SIZE above 2^24-1 is a connection error PROTOCOL_ERROR',
        frames: [settings([[S.MAX_FRAME_SIZE, 2 ** 24]])],
        expect: { connectionError: E.PROTOCOL_ERROR },
      },
      {
        name: '§6.5.2 MAX_FRAME_SIZE of exactly 2^24-1 is accepted',
        frames: [settings([[S.MAX_FRAME_SIZE, 2 ** 24 - 1]])],
        expect: { ok: (peer) => assert.equal(peer.connection.remoteSettings.maxFrameSize, 2 ** 24 - 1) },
      },
      {
        name: '§6.5.2 an unknown setting is ignored and the frame acknowledged',
        frames: [settings([[0xff, 7], [0x10, 2 ** 32 - 1]])],
        expect: { ok: (peer) => assert.equal(settingsAcks(peer.frames), 2) },
      },
      {
        name: '§6.5.3 values are processed in order: the last one wins',
        frames: [settings([[S.INITIAL_WINDOW_SIZE, 100], [S.INITIAL_WINDOW_SIZE, 200]])],
        expect: { ok: (peer) => assert.equal(peer.connection.remoteSettings.initialWindowSize, 200) },
      },
      {
        name: '§6.5.2 HEADER_TABLE_SIZE=0: response blocks decode with an empty table (size update sent)',
        frames: [settings([[S.HEADER_TABLE_SIZE, 0]]), request(1), request(3)],
        expect: {
          ok: (peer) => {
            answered(1)(peer);
            answered(3)(peer);
            assert.equal(peer.decoder.table.maxSize, 0);
          },
        },
      },
    ],
  ],
  [
    '§6.7 PING',
    [
      {
        name: '§6.7 PING is answered with an ACK echoing the payload',
        frames: [frame(T.PING, 0, 0, Buffer.from('abcdefgh'))],
        expect: { ok: (peer) => assert.ok(pings(peer.frames, true).includes('abcdefgh')) },
      },
      {
        name: '§6.7 PING of 7 bytes is a connection error FRAME_SIZE_ERROR',
        frames: [frame(T.PING, 0, 0, Buffer.alloc(7))],
        expect: { connectionError: E.FRAME_SIZE_ERROR },
      },
      {
        name: '§6.7 PING of 9 bytes is a connection error FRAME_SIZE_ERROR',
        frames: [frame(T.PING, 0, 0, Buffer.alloc(9))],
        expect: { connectionError: E.FRAME_SIZE_ERROR },
      },
      {
        name: '§6.7 PING on a stream is a connection error PROTOCOL_ERROR',
        frames: [frame(T.PING, 0, 1, Buffer.alloc(8))],
        expect: { connectionError: E.PROTOCOL_ERROR },
      },
      {
        name: '§6.7 a PING ACK is not answered',
        frames: [frame(T.PING, F.ACK, 0, Buffer.from('zzzzzzzz'))],
        expect: {
          ok: (peer) => assert.equal(peer.frames.filter((f) => f.type === T.PING && f.payload.toString() === 'zzzzzzzz').length, 0),
        },
      },
    ],
  ],
  [
    '§6.10 CONTINUATION',
    [
      {
        name: '§6.10 HEADERS without END_HEADERS then CONTINUATION frames complete a request',
        frames: [
          headers(1, BLOCK.subarray(0, 7), { endStream: true, endHeaders: false }),
          continuation(1, BLOCK.subarray(7, 20), false),
          continuation(1, BLOCK.subarray(20), true),
        ],
        expect: {
          ok: (peer) => {
            const first = peer.handler.events[1];
            assert.ok(first.kind === 'headers' && first.stream === 1);
            assert.deepEqual(first.headers, [...REQUEST]);
            answered(1)(peer);
            assert.deepEqual(peer.handler.endings(1), ['close']);
          },
        },
      },
      {
        name: '§6.10 another frame type inside a header block is a connection error PROTOCOL_ERROR',
        frames: [headers(1, BLOCK.subarray(0, 7), { endHeaders: false }), frame(T.PING, 0, 0, Buffer.alloc(8)), continuation(1, BLOCK.subarray(7))],
        expect: { connectionError: E.PROTOCOL_ERROR },
      },
      {
        name: '§6.10 CONTINUATION on another stream is a connection error PROTOCOL_ERROR',
        frames: [headers(1, BLOCK.subarray(0, 7), { endHeaders: false }), continuation(3, BLOCK.subarray(7))],
        expect: { connectionError: E.PROTOCOL_ERROR },
      },
      {
        name: '§6.10 CONTINUATION without a HEADERS frame is a connection error PROTOCOL_ERROR',
        frames: [continuation(1, BLOCK)],
        expect: { connectionError: E.PROTOCOL_ERROR },
      },
      {
        name: '§6.10 CONTINUATION after END_HEADERS is a connection error PROTOCOL_ERROR',
        options: quiet,
        frames: [request(1, false), continuation(1, Buffer.alloc(0))],
        expect: { connectionError: E.PROTOCOL_ERROR },
      },
      {
        name: '§4.1/§6.10 an unknown frame type inside a header block is a connection error PROTOCOL_ERROR',
        frames: [headers(1, BLOCK.subarray(0, 7), { endHeaders: false }), frame(0xfa, 0, 1, Buffer.from('x')), continuation(1, BLOCK.subarray(7))],
        expect: { connectionError: E.PROTOCOL_ERROR },
      },
    ],
  ],
  [
    '§6.1/§6.2 padding',
    [
      {
        name: '§6.1 padded DATA is accepted and delivered without its padding',
        frames: [request(1, false), data(1, 'abc', { padding: 10 }), data(1, '', { endStream: true, padding: 0 })],
        expect: {
          ok: (peer) => {
            const got = peer.handler.events.flatMap((e) => (e.kind === 'data' ? [e.data.toString()] : []));
            assert.deepEqual(got, ['abc', '']);
            answered(1)(peer);
          },
        },
      },
      {
        name: '§6.2 padded HEADERS (with and without priority fields) are accepted',
        frames: [headers(1, REQUEST, { endStream: true, padding: 20 }), headers(3, REQUEST, { endStream: true, padding: 3, dependency: 1 })],
        expect: { ok: all(requestsWere([1, 3]), answered(1), answered(3)) },
      },
      {
        name: '§6.1 DATA padding as long as the payload is a connection error PROTOCOL_ERROR',
        options: quiet,
        frames: [request(1, false), frame(T.DATA, F.PADDED, 1, Buffer.from([4, 0, 0, 0]))],
        expect: { connectionError: E.PROTOCOL_ERROR },
      },
      {
        name: '§6.2 HEADERS padding as long as the payload is a connection error PROTOCOL_ERROR',
        frames: [frame(T.HEADERS, F.PADDED | F.END_HEADERS, 1, Buffer.from([3, 0, 0]))],
        expect: { connectionError: E.PROTOCOL_ERROR },
      },
    ],
  ],
];

runSections(sections);
