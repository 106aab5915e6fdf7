// RFC 9113 server-role conformance, table-driven: stream identifiers and states, PRIORITY, and frames a server refuses or ignores.

import assert from 'node:assert/strict';
import { ErrorCode } from '../../agent/http2/constants.ts';
import { type ConformanceCase, all, answered, quiet, requestsWere, runSections } from '../support/connection-harness.ts';
import { F, REQUEST, T, data, frame, headers, hpackLiterals, priority, request, rstStream, windowUpdate } from '../support/raw-frames.ts';

const E = ErrorCode;
const BLOCK = hpackLiterals(REQUEST);

function uint32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value);
  return b;
}

const sections: Array<[string, ConformanceCase[]]> = [
  [
    '§5.1 stream identifiers and states',
    [
      {
        name: '§5.1.1 an even stream id from a client is a connection error PROTOCOL_ERROR',
        frames: [request(2)],
        expect: { connectionError: E.PROTOCOL_ERROR },
      },
      {
        name: '§5.1.1 a lower stream id than one already used is a connection error (PROTOCOL_ERROR or STREAM_CLOSED)',
        options: quiet,
        frames: [request(5, false), request(3, false)],
        expect: { connectionError: [E.PROTOCOL_ERROR, E.STREAM_CLOSED] },
      },
      {
        name: '§5.1 HEADERS reusing a closed stream id is a connection error STREAM_CLOSED (PROTOCOL_ERROR accepted)',
        frames: [request(1), request(1)],
        expect: { connectionError: [E.STREAM_CLOSED, E.PROTOCOL_ERROR] },
      },
      {
        name: '§5.1 DATA on an idle stream is a connection error PROTOCOL_ERROR',
        frames: [data(1, 'x')],
        expect: { connectionError: E.PROTOCOL_ERROR },
      },
      {
        name: '§6.1 DATA on stream 0 is a connection error PROTOCOL_ERROR',
        frames: [data(0, 'x')],
        expect: { connectionError: E.PROTOCOL_ERROR },
      },
      {
        name: '§6.2 HEADERS on stream 0 is a connection error PROTOCOL_ERROR',
        frames: [request(0)],
        expect: { connectionError: E.PROTOCOL_ERROR },
      },
      {
        name: '§5.1 DATA after END_STREAM (half-closed remote) is a stream error STREAM_CLOSED',
        options: quiet,
        frames: [request(1), data(1, 'x')],
        expect: { streamError: { stream: 1, code: E.STREAM_CLOSED } },
      },
      {
        name: '§5.1 HEADERS after END_STREAM (half-closed remote) is a stream error STREAM_CLOSED',
        options: quiet,
        frames: [request(1), headers(1, ['x-late', '1'], { endStream: true })],
        expect: { streamError: { stream: 1, code: E.STREAM_CLOSED } },
      },
      {
        name: '§5.1 DATA on a stream closed both ways: STREAM_CLOSED (connection error, or a stream error: state may be forgotten)',
        frames: [request(1), data(1, 'x')],
        expect: [{ connectionError: E.STREAM_CLOSED }, { streamError: { stream: 1, code: E.STREAM_CLOSED } }],
      },
      {
        name: '§6.4 RST_STREAM on an idle stream is a connection error PROTOCOL_ERROR',
        frames: [rstStream(1, E.CANCEL)],
        expect: { connectionError: E.PROTOCOL_ERROR },
      },
      {
        name: '§6.4 RST_STREAM on stream 0 is a connection error PROTOCOL_ERROR',
        frames: [rstStream(0, E.CANCEL)],
        expect: { connectionError: E.PROTOCOL_ERROR },
      },
      {
        name: '§6.4 RST_STREAM with a length other than 4 is a connection error FRAME_SIZE_ERROR',
        options: quiet,
        frames: [request(1, false), frame(T.RST_STREAM, 0, 1, Buffer.alloc(3))],
        expect: { connectionError: E.FRAME_SIZE_ERROR },
      },
      {
        name: '§6.9 WINDOW_UPDATE on an idle stream is a connection error PROTOCOL_ERROR',
        frames: [windowUpdate(1, 100)],
        expect: { connectionError: E.PROTOCOL_ERROR },
      },
      {
        name: '§6.9 WINDOW_UPDATE with a length other than 4 is a connection error FRAME_SIZE_ERROR',
        frames: [frame(T.WINDOW_UPDATE, 0, 0, Buffer.alloc(3))],
        expect: { connectionError: E.FRAME_SIZE_ERROR },
      },
      {
        name: '§6.4 the client resetting a stream reaches the handler, and gets no RST_STREAM back',
        options: quiet,
        frames: [request(1, false), rstStream(1, E.CANCEL), priority(1, 0)],
        expect: {
          ok: (peer) => {
            assert.deepEqual(peer.handler.endings(1), [`reset:${E.CANCEL}`]);
            assert.deepEqual(peer.resets(), []);
          },
        },
      },
      {
        name: '§5.1 DATA after the client reset the stream is a stream error STREAM_CLOSED',
        options: quiet,
        frames: [request(1, false), rstStream(1, E.CANCEL), data(1, 'x')],
        expect: { streamError: { stream: 1, code: E.STREAM_CLOSED } },
      },
      {
        name: '§5.1 frames on a stream we reset (sent before the client saw it) are ignored',
        options: { settings: { maxConcurrentStreams: 1 }, ...quiet },
        frames: [
          request(1, false),
          request(3, false),
          data(3, 'late'),
          windowUpdate(3, 10),
          headers(3, ['grpc-status', '0'], { endStream: true }),
          rstStream(3, E.CANCEL),
        ],
        expect: {
          ok: (peer) => {
            assert.deepEqual(peer.resets(), [{ stream: 3, code: E.REFUSED_STREAM }]);
            requestsWere([1])(peer);
            assert.deepEqual(peer.handler.endings(3), []);
          },
        },
      },
      {
        name: '§5.1.2 streams beyond MAX_CONCURRENT_STREAMS get RST_STREAM REFUSED_STREAM; a freed slot is reusable',
        options: { settings: { maxConcurrentStreams: 2 }, ...quiet },
        frames: [request(1, false), request(3, false), request(5, false), rstStream(1, E.CANCEL), request(7, false)],
        expect: {
          ok: (peer) => {
            assert.deepEqual(peer.resets(), [{ stream: 5, code: E.REFUSED_STREAM }]);
            requestsWere([1, 3, 7])(peer);
            assert.equal(peer.connection.activeStreamCount, 2);
          },
        },
      },
      {
        name: '§4.1 the reserved bit of the stream identifier is ignored',
        frames: [headers(0x80000001, REQUEST, { endStream: true })],
        expect: { ok: all(requestsWere([1]), answered(1)) },
      },
    ],
  ],
  [
    '§6.3 PRIORITY, and frames the server must refuse or ignore',
    [
      {
        name: '§6.3 PRIORITY on an open and on an idle stream is accepted and ignored',
        options: quiet,
        frames: [request(1, false), priority(1, 0), priority(9, 1), request(3, false)],
        expect: { ok: requestsWere([1, 3]) },
      },
      {
        name: '§6.3 PRIORITY with a length other than 5 is a stream error FRAME_SIZE_ERROR',
        options: quiet,
        frames: [request(1, false), frame(T.PRIORITY, 0, 1, Buffer.alloc(4))],
        expect: { streamError: { stream: 1, code: E.FRAME_SIZE_ERROR } },
      },
      {
        name: '§6.3/§6.4 PRIORITY of a wrong length on an idle stream: no RST_STREAM for an idle stream, a connection error FRAME_SIZE_ERROR (§5.4.1)',
        frames: [frame(T.PRIORITY, 0, 3, Buffer.alloc(4))],
        expect: { connectionError: E.FRAME_SIZE_ERROR },
      },
      {
        name: '§5.3.1/§6.4 PRIORITY making an idle stream depend on itself is a connection error PROTOCOL_ERROR (§5.4.1)',
        frames: [priority(3, 3)],
        expect: { connectionError: E.PROTOCOL_ERROR },
      },
      {
        name: '§5.3.1 PRIORITY making a stream depend on itself is a stream error PROTOCOL_ERROR',
        options: quiet,
        frames: [request(1, false), priority(1, 1)],
        expect: { streamError: { stream: 1, code: E.PROTOCOL_ERROR } },
      },
      {
        name: '§5.3.1 HEADERS making a stream depend on itself is a stream error PROTOCOL_ERROR',
        frames: [headers(1, REQUEST, { endStream: true, dependency: 1 })],
        expect: { streamError: { stream: 1, code: E.PROTOCOL_ERROR } },
      },
      {
        name: '§6.3 PRIORITY on stream 0 is a connection error PROTOCOL_ERROR',
        frames: [priority(0, 1)],
        expect: { connectionError: E.PROTOCOL_ERROR },
      },
      {
        name: '§8.4 PUSH_PROMISE from a client is a connection error PROTOCOL_ERROR',
        options: quiet,
        frames: [request(1, false), frame(T.PUSH_PROMISE, F.END_HEADERS, 1, Buffer.concat([uint32(2), BLOCK]))],
        expect: { connectionError: E.PROTOCOL_ERROR },
      },
      {
        name: '§4.1 frames of an unknown type are ignored',
        frames: [frame(0xfa, 0xff, 0, Buffer.from('whatever')), frame(0x20, 0, 1, Buffer.alloc(100)), request(1)],
        expect: { ok: all(requestsWere([1]), answered(1)) },
      },
      {
        name: '§4.2 a frame above SETTINGS_MAX_FRAME_SIZE is FRAME_SIZE_ERROR (connection error)',
        options: quiet,
        frames: [request(1, false), data(1, Buffer.alloc(16_385))],
        expect: { connectionError: E.FRAME_SIZE_ERROR },
      },
      {
        name: '§4.2 a HEADERS frame above SETTINGS_MAX_FRAME_SIZE is a connection error FRAME_SIZE_ERROR',
        frames: [request(1, true, ['x-big', 'a'.repeat(16_400)])],
        expect: { connectionError: E.FRAME_SIZE_ERROR },
      },
      {
        name: '§4.2 a frame of exactly SETTINGS_MAX_FRAME_SIZE is accepted',
        frames: [request(1, false), data(1, Buffer.alloc(16_384), { endStream: true })],
        expect: { ok: (peer) => answered(1)(peer) },
      },
      {
        name: '§6.8 GOAWAY shorter than 8 bytes is a connection error FRAME_SIZE_ERROR',
        frames: [frame(T.GOAWAY, 0, 0, Buffer.alloc(7))],
        expect: { connectionError: E.FRAME_SIZE_ERROR },
      },
      {
        name: '§6.8 GOAWAY on a stream is a connection error PROTOCOL_ERROR',
        frames: [frame(T.GOAWAY, 0, 1, Buffer.alloc(8))],
        expect: { connectionError: E.PROTOCOL_ERROR },
      },
    ],
  ],
];

runSections(sections);
