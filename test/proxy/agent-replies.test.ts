// Responses the agent makes itself, on its own: Trailers-Only before anything was relayed, trailers after, and a
// refused request's stream let go of.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EMPTY_PICKER } from '../../agent/balancer/picker.ts';
import { Stream } from '../../agent/http2/stream.ts';
import { refuseRequest, replyWithStatus } from '../../agent/proxy/agent-replies.ts';
import { type DownstreamHttp2, Exchange } from '../../agent/proxy/exchange.ts';
import { GrpcStatus } from '../../agent/vocabulary/errors.ts';

type Sent = Array<[call: string, streamId: number, headers: readonly string[], endStream?: boolean]>;

function recordingDownstream(sent: Sent): DownstreamHttp2 {
  return {
    sendHeaders(stream: Stream, headers: readonly string[], endStream: boolean) {
      sent.push(['headers', stream.id, headers, endStream]);
    },
    sendTrailers(stream: Stream, headers: readonly string[]) {
      sent.push(['trailers', stream.id, headers]);
    },
  } as unknown as DownstreamHttp2;
}

function setup() {
  const sent: Sent = [];
  const downstream = recordingDownstream(sent);
  const stream = new Stream<Exchange>(7, true, 65_535, 65_535);
  const driver = { onUpstreamReady() {}, onUpstreamFailed() {}, onDeadline() {} };
  const exchange = new Exchange(driver, downstream, stream, { key: 'default/greeter:50051', picker: EMPTY_PICKER }, [], 0);
  stream.context = exchange;
  return { sent, downstream, stream, exchange };
}

describe('replyWithStatus', () => {
  it('answers Trailers-Only (HTTP 200, END_STREAM) when nothing was sent to the client yet, and marks the response started', () => {
    const { sent, exchange } = setup();
    replyWithStatus(exchange, GrpcStatus.UNAVAILABLE, 'no ready endpoint for default/greeter:50051');
    assert.deepEqual(sent, [
      [
        'headers',
        7,
        [':status', '200', 'content-type', 'application/grpc', 'grpc-status', '14', 'grpc-message', 'no ready endpoint for default/greeter:50051'],
        true,
      ],
    ]);
    assert.equal(exchange.responseStarted, true);
  });

  it('ends a response already under way with trailers behind what was relayed', () => {
    const { sent, exchange } = setup();
    exchange.responseStarted = true;
    replyWithStatus(exchange, GrpcStatus.DEADLINE_EXCEEDED, 'deadline exceeded in meshlite');
    assert.deepEqual(sent, [['trailers', 7, ['grpc-status', '4', 'grpc-message', 'deadline exceeded in meshlite']]]);
    assert.equal(exchange.responseStarted, true);
  });

  it('sends trailers on a second reply, since the first started the response', () => {
    const { sent, exchange } = setup();
    replyWithStatus(exchange, GrpcStatus.INTERNAL, 'first');
    replyWithStatus(exchange, GrpcStatus.CANCELLED, 'second');
    assert.deepEqual(sent, [
      ['headers', 7, [':status', '200', 'content-type', 'application/grpc', 'grpc-status', '13', 'grpc-message', 'first'], true],
      ['trailers', 7, ['grpc-status', '1', 'grpc-message', 'second']],
    ]);
  });

  it('percent-encodes a message outside printable ASCII', () => {
    const { sent, exchange } = setup();
    replyWithStatus(exchange, GrpcStatus.UNAVAILABLE, 'café 100%');
    assert.deepEqual(sent[0][2], [':status', '200', 'content-type', 'application/grpc', 'grpc-status', '14', 'grpc-message', 'caf%C3%A9 100%25']);
  });
});

describe('refuseRequest', () => {
  it('lets go of the stream and answers Trailers-Only with END_STREAM', () => {
    const { sent, downstream, stream } = setup();
    refuseRequest(downstream, stream, GrpcStatus.UNAVAILABLE, 'unknown target nowhere:1');
    assert.equal(stream.context, null);
    assert.deepEqual(sent, [
      ['headers', 7, [':status', '200', 'content-type', 'application/grpc', 'grpc-status', '14', 'grpc-message', 'unknown target nowhere:1'], true],
    ]);
  });
});
