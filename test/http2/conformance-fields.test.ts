// RFC 9113 server-role conformance, table-driven: request header validation, HPACK errors, and flow-control errors.

import assert from 'node:assert/strict';
import { ErrorCode } from '../../agent/http2/constants.ts';
import { type ConformanceCase, type Peer, runSections } from '../support/connection-harness.ts';
import { REQUEST, S, continuation, data, headers, hpackLiterals, request, settings, windowUpdate, windowUpdates } from '../support/raw-frames.ts';

const E = ErrorCode;
const quiet = { handler: { respond: false } };
const PSEUDO = [':method', 'POST', ':scheme', 'http', ':path', '/echo.Echo/Say'];

function without(name: string): string[] {
  const list: string[] = [];
  for (let i = 0; i < REQUEST.length; i += 2) if (REQUEST[i] !== name) list.push(REQUEST[i], REQUEST[i + 1]);
  return list;
}

/** A request whose header list is malformed (RFC 9113 §8.1.1): stream error PROTOCOL_ERROR, the handler never sees it. */
const malformedRequests: Array<[string, string[]]> = [
  ['§8.2 an upper-case field name', [...REQUEST, 'X-Custom', 'a']],
  ['§8.2.1 a field name with a space', [...REQUEST, 'x custom', 'a']],
  ['§8.2.1 an empty field name', [...REQUEST, '', 'a']],
  ['§8.2.1 a field value with CR LF', [...REQUEST, 'x-custom', 'a\r\nb']],
  ['§8.2.1 a field value with NUL', [...REQUEST, 'x-custom', 'a\0b']],
  ['§8.3 an unknown pseudo-header', [...PSEUDO, ':foo', 'bar']],
  ['§8.3 a response pseudo-header in a request', [...PSEUDO, ':status', '200']],
  ['§8.3 a pseudo-header after a regular field', [':method', 'POST', ':scheme', 'http', 'content-type', 'x', ':path', '/']],
  ['§8.3.1 a duplicate :path', [...PSEUDO, ':path', '/b']],
  ['§8.3.1 a duplicate :method', [...PSEUDO, ':method', 'GET']],
  ['§8.3.1 a missing :method', without(':method')],
  ['§8.3.1 a missing :scheme', without(':scheme')],
  ['§8.3.1 a missing :path', without(':path')],
  ['§8.3.1 an empty :path', [':method', 'POST', ':scheme', 'http', ':path', '']],
  ['§8.2.2 connection', [...REQUEST, 'connection', 'keep-alive']],
  ['§8.2.2 transfer-encoding', [...REQUEST, 'transfer-encoding', 'chunked']],
  ['§8.2.2 upgrade', [...REQUEST, 'upgrade', 'h2c']],
  ['§8.2.2 keep-alive', [...REQUEST, 'keep-alive', '5']],
  ['§8.2.2 proxy-connection', [...REQUEST, 'proxy-connection', 'close']],
  ['§8.2.2 te other than "trailers"', [...without('te'), 'te', 'gzip']],
  ['§8.1.1 a content-length that is not a number', [...REQUEST, 'content-length', '12a']],
  ['§8.1.1 content-length 5 on a request without DATA', [...REQUEST, 'content-length', '5']],
];

function malformed([what, list]: [string, string[]]): ConformanceCase {
  return {
    name: `${what} is a stream error PROTOCOL_ERROR`,
    frames: [headers(1, list, { endStream: true })],
    expect: { streamError: { stream: 1, code: E.PROTOCOL_ERROR } },
  };
}

function onlyRequests(expected: number[]): (peer: Peer) => void {
  return (peer) => assert.deepEqual(peer.handler.requests(), expected);
}

const sections: Array<[string, ConformanceCase[]]> = [
  ['§8.1–§8.3 malformed requests', malformedRequests.map(malformed)],
  [
    '§8.1 trailers and content-length',
    [
      {
        name: '§8.1 a pseudo-header in trailers is a stream error PROTOCOL_ERROR',
        frames: [request(1, false), data(1, 'abc'), headers(1, [':path', '/x'], { endStream: true })],
        expect: { streamError: { stream: 1, code: E.PROTOCOL_ERROR } },
      },
      {
        name: '§8.1 trailers without END_STREAM are a stream error PROTOCOL_ERROR',
        frames: [request(1, false), data(1, 'abc'), headers(1, ['x-trailer', '1'], { endStream: false })],
        expect: { streamError: { stream: 1, code: E.PROTOCOL_ERROR } },
      },
      {
        name: '§8.1.1 fewer DATA bytes than content-length is a stream error PROTOCOL_ERROR',
        frames: [request(1, false, ['content-length', '10']), data(1, 'hello', { endStream: true })],
        expect: { streamError: { stream: 1, code: E.PROTOCOL_ERROR } },
      },
      {
        name: '§8.1.1 more DATA bytes than content-length is a stream error PROTOCOL_ERROR',
        options: quiet,
        frames: [request(1, false, ['content-length', '3']), data(1, 'hello')],
        expect: { streamError: { stream: 1, code: E.PROTOCOL_ERROR } },
      },
      {
        name: '§8.1.1 trailers ending a body shorter than content-length are a stream error PROTOCOL_ERROR',
        frames: [request(1, false, ['content-length', '10']), data(1, 'hello'), headers(1, ['x-t', '1'], { endStream: true })],
        expect: { streamError: { stream: 1, code: E.PROTOCOL_ERROR } },
      },
      {
        name: '§8.1.1 DATA matching content-length is accepted',
        frames: [request(1, false, ['content-length', '5']), data(1, 'he'), data(1, 'llo', { endStream: true })],
        expect: { ok: onlyRequests([1]) },
      },
      {
        name: '§8.2.2 te: trailers is accepted, and trailers reach the handler',
        frames: [request(1, false), data(1, 'x'), headers(1, ['x-trailer', 'v'], { endStream: true })],
        expect: {
          ok: (peer) => {
            const trailers = peer.handler.events.find((e) => e.kind === 'headers' && e.isTrailers);
            assert.deepEqual(trailers, { kind: 'headers', stream: 1, headers: ['x-trailer', 'v'], endStream: true, isTrailers: true });
            assert.deepEqual(peer.handler.endings(1), ['close']);
          },
        },
      },
      {
        name: '§8.5 CONNECT with only :method and :authority is accepted',
        options: quiet,
        frames: [headers(1, [':method', 'CONNECT', ':authority', 'host:443'], { endStream: false })],
        expect: { ok: onlyRequests([1]) },
      },
    ],
  ],
  [
    '§4.3 HPACK and header list size',
    [
      ...[
        ['index 0', [0x80]],
        ['an index past both tables', [0xbf]],
        ['a truncated integer', [0x0f]],
        ['an integer overflow', [0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]],
        ['a string longer than the block', [0x00, 0x05, 0x61]],
        ['a table size update above our setting', [0x3f, 0xe1, 0x3f]],
      ].map(
        ([what, bytes]): ConformanceCase => ({
          name: `§4.3 a header block with ${what} is a connection error COMPRESSION_ERROR`,
          frames: [headers(1, Buffer.from(bytes as number[]), { endStream: true })],
          expect: { connectionError: E.COMPRESSION_ERROR },
        }),
      ),
      {
        name: '§10.5 a header block spread over hundreds of CONTINUATION frames is refused (ENHANCE_YOUR_CALM or PROTOCOL_ERROR)',
        frames: [
          headers(1, hpackLiterals(REQUEST).subarray(0, 5), { endHeaders: false }),
          ...Array.from({ length: 300 }, () => continuation(1, Buffer.alloc(0), false)),
        ],
        expect: { connectionError: [E.ENHANCE_YOUR_CALM, E.PROTOCOL_ERROR] },
      },
      {
        name: '§10.5.1 a header list above MAX_HEADER_LIST_SIZE is answered with :status 431',
        options: { settings: { maxHeaderListSize: 256 } },
        frames: [request(1, true, ['x-big', 'a'.repeat(400)])],
        expect: {
          ok: (peer) => {
            const block = peer.headerBlocks().find((b) => b.streamId === 1);
            assert.deepEqual(block?.headers, [':status', '431']);
            assert.equal(block?.endStream, true);
            assert.ok(peer.resets().every((r) => r.code === E.NO_ERROR), 'at most RST_STREAM(NO_ERROR) after the 431');
            onlyRequests([])(peer);
          },
        },
      },
    ],
  ],
  [
    '§6.9 flow-control errors',
    [
      {
        name: '§6.9.1 DATA beyond the connection window is a connection error FLOW_CONTROL_ERROR',
        options: { connectionWindowSize: 65_535, handler: { respond: false, consume: false } },
        frames: [request(1, false), ...[1, 2, 3, 4].map(() => data(1, Buffer.alloc(16_384)))],
        expect: { connectionError: E.FLOW_CONTROL_ERROR },
      },
      {
        name: '§6.9.1 DATA of exactly the connection window is accepted',
        options: { connectionWindowSize: 65_535, handler: { respond: false, consume: false } },
        frames: [request(1, false), ...[1, 2, 3].map(() => data(1, Buffer.alloc(16_384))), data(1, Buffer.alloc(16_383))],
        expect: { ok: onlyRequests([1]) },
      },
      {
        name: '§6.9.1 DATA beyond a stream window is a stream error FLOW_CONTROL_ERROR',
        options: { settings: { initialWindowSize: 100 }, handler: { respond: false, consume: false } },
        frames: [request(1, false), data(1, Buffer.alloc(60)), data(1, Buffer.alloc(41))],
        expect: { streamError: { stream: 1, code: E.FLOW_CONTROL_ERROR } },
      },
      {
        name: '§6.9.1 padding counts against the stream window',
        options: { settings: { initialWindowSize: 100 }, ...quiet },
        frames: [request(1, false), data(1, Buffer.alloc(90), { padding: 20 })],
        expect: { streamError: { stream: 1, code: E.FLOW_CONTROL_ERROR } },
      },
      {
        name: '§6.9.1 DATA of exactly the stream window is accepted',
        options: { settings: { initialWindowSize: 100 }, ...quiet },
        frames: [request(1, false), data(1, Buffer.alloc(100))],
        expect: { ok: onlyRequests([1]) },
      },
      {
        name: '§6.9 WINDOW_UPDATE of 0 on the connection is a connection error PROTOCOL_ERROR',
        frames: [windowUpdate(0, 0)],
        expect: { connectionError: E.PROTOCOL_ERROR },
      },
      {
        name: '§6.9 WINDOW_UPDATE of 0 on a stream is a stream error PROTOCOL_ERROR',
        options: quiet,
        frames: [request(1, false), windowUpdate(1, 0)],
        expect: { streamError: { stream: 1, code: E.PROTOCOL_ERROR } },
      },
      {
        name: '§6.9.1 the connection window past 2^31-1 is a connection error FLOW_CONTROL_ERROR',
        frames: [windowUpdate(0, 2 ** 31 - 65_535), windowUpdate(0, 1)],
        expect: { connectionError: E.FLOW_CONTROL_ERROR },
      },
      {
        name: '§6.9.1 the connection window up to exactly 2^31-1 is accepted',
        frames: [windowUpdate(0, 2 ** 31 - 1 - 65_535)],
        expect: { ok: onlyRequests([]) },
      },
      {
        name: '§6.9.1 a stream window past 2^31-1 is a stream error FLOW_CONTROL_ERROR',
        options: quiet,
        frames: [request(1, false), windowUpdate(1, 2 ** 31 - 1)],
        expect: { streamError: { stream: 1, code: E.FLOW_CONTROL_ERROR } },
      },
      {
        name: '§6.9.2 INITIAL_WINDOW_SIZE pushing an open stream window past 2^31-1 is a connection error FLOW_CONTROL_ERROR',
        options: quiet,
        frames: [request(1, false), windowUpdate(1, 2 ** 31 - 1 - 65_535), settings([[S.INITIAL_WINDOW_SIZE, 65_536]])],
        expect: { connectionError: E.FLOW_CONTROL_ERROR },
      },
      {
        name: '§6.9.1 WINDOW_UPDATE on a closed stream is ignored',
        frames: [request(1), windowUpdate(1, 100)],
        expect: { ok: (peer) => assert.deepEqual(peer.resets(), []) },
      },
      {
        name: '§6.9 the server announces its connection window beyond 65535 with a WINDOW_UPDATE',
        options: { connectionWindowSize: 1 << 20 },
        frames: [],
        expect: { ok: (peer) => assert.deepEqual(windowUpdates(peer.frames, 0), [(1 << 20) - 65_535]) },
      },
    ],
  ],
];

// A stream refused for a malformed request never reaches the handler.
runSections(sections, (c, peer) => {
  if (malformedRequests.some(([what]) => c.name.startsWith(what))) onlyRequests([])(peer);
});
