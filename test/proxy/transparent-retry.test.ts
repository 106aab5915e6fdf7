// Transparent retry bookkeeping on its own: which request bytes are held, what is sent upstream and when END_STREAM
// goes with it, window credit returned once per byte across attempts, and the attempt limits.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EMPTY_PICKER } from '../../agent/balancer/picker.ts';
import { Stream } from '../../agent/http2/stream.ts';
import type { StreamState } from '../../agent/http2/stream-state.ts';
import { type DownstreamHttp2, Exchange, type ExchangeUpstream } from '../../agent/proxy/exchange.ts';
import {
  creditRequestBytes,
  keepRequestData,
  MAX_ATTEMPTS,
  mayRetryRefused,
  mayRetryUnsent,
  UNSENT_HOLD_MS,
  RETRY_BODY_LIMIT,
  sendRequestBody,
} from '../../agent/proxy/transparent-retry.ts';

/** What a connection was asked to do, as `<call> <stream id> ...`: DATA as its text and whether END_STREAM goes with it. */
type Calls = string[];

function recordingDownstream(calls: Calls): DownstreamHttp2 {
  return {
    consume(stream: Stream, consumed: number) {
      calls.push(`consume ${stream.id} ${consumed}`);
    },
  } as unknown as DownstreamHttp2;
}

function recordingUpstream(calls: Calls): ExchangeUpstream {
  return {
    sendData(stream: Stream, data: Buffer, endStream: boolean) {
      calls.push(`data ${stream.id} "${data.toString()}" (${data.length})${endStream ? ' end' : ''}`);
      // As the real connection does: END_STREAM is queued once, behind the data.
      if (endStream) stream.endAfterQueue = true;
    },
  } as unknown as ExchangeUpstream;
}

function setup(upstreamState: StreamState = 'open') {
  const calls: Calls = [];
  const driver = { onUpstreamReady() {}, onUpstreamFailed() {}, onDeadline() {} };
  const route = { key: 'default/greeter:50051', picker: EMPTY_PICKER };
  const exchange = new Exchange(driver, recordingDownstream(calls), new Stream<Exchange>(1, true, 65_535, 65_535), route, [], 0);
  const stream = new Stream<Exchange>(3, false, 65_535, 65_535);
  stream.state = upstreamState;
  const attach = () => {
    exchange.upstream = recordingUpstream(calls);
    exchange.upstreamStream = stream;
  };
  return { calls, exchange, stream, attach };
}

const chunk = (text: string) => Buffer.from(text);

describe('limits', () => {
  it('holds bodies up to 64 KiB and allows three attempts in all', () => {
    assert.equal(RETRY_BODY_LIMIT, 65_536);
    assert.equal(MAX_ATTEMPTS, 3);
  });
});

describe('keepRequestData', () => {
  it('keeps chunks in order and counts their bytes; END_STREAM marks the request ended', () => {
    const { exchange } = setup();
    keepRequestData(exchange, chunk('ab'), false);
    assert.equal(exchange.requestEnded, false);
    keepRequestData(exchange, chunk('cde'), true);
    assert.deepEqual(exchange.body.map(String), ['ab', 'cde']);
    assert.equal(exchange.bodyBytes, 5);
    assert.equal(exchange.requestEnded, true);
    assert.equal(exchange.retryable, true);
  });

  it('keeps no empty chunk: an empty END_STREAM only ends the request', () => {
    const { exchange } = setup();
    keepRequestData(exchange, Buffer.alloc(0), false);
    assert.deepEqual(exchange.body, []);
    assert.equal(exchange.requestEnded, false);
    keepRequestData(exchange, Buffer.alloc(0), true);
    assert.deepEqual(exchange.body, []);
    assert.equal(exchange.bodyBytes, 0);
    assert.equal(exchange.requestEnded, true);
  });

  it('a single byte is kept', () => {
    const { exchange } = setup();
    keepRequestData(exchange, chunk('x'), false);
    assert.deepEqual(exchange.body.map(String), ['x']);
    assert.equal(exchange.bodyBytes, 1);
  });

  it('stays retryable at exactly the body limit and stops being retryable one byte past it', () => {
    const { exchange } = setup();
    keepRequestData(exchange, Buffer.alloc(RETRY_BODY_LIMIT - 1), false);
    assert.equal(exchange.retryable, true);
    keepRequestData(exchange, Buffer.alloc(1), false);
    assert.equal(exchange.bodyBytes, RETRY_BODY_LIMIT);
    assert.equal(exchange.retryable, true);
    keepRequestData(exchange, Buffer.alloc(1), false);
    assert.equal(exchange.bodyBytes, RETRY_BODY_LIMIT + 1);
    assert.equal(exchange.retryable, false);
  });

  it('never makes an exchange retryable again', () => {
    const { exchange } = setup();
    exchange.retryable = false;
    keepRequestData(exchange, chunk('small'), true);
    assert.equal(exchange.retryable, false);
  });
});

describe('sendRequestBody', () => {
  it('does nothing without an upstream connection or stream, and keeps the body', () => {
    for (const which of ['connection', 'stream'] as const) {
      const { calls, exchange, attach } = setup();
      attach();
      if (which === 'connection') exchange.upstream = null;
      else exchange.upstreamStream = null;
      exchange.retryable = false;
      keepRequestData(exchange, chunk('held'), true);
      sendRequestBody(exchange);
      assert.deepEqual(calls, []);
      assert.deepEqual(exchange.body.map(String), ['held']);
      assert.equal(exchange.bodySent, 0);
    }
  });

  it('sends each chunk once, in order, and END_STREAM with the last chunk only once the request ended', () => {
    const { calls, exchange, attach } = setup();
    attach();
    keepRequestData(exchange, chunk('a'), false);
    keepRequestData(exchange, chunk('b'), false);
    sendRequestBody(exchange);
    assert.deepEqual(calls, ['data 3 "a" (1)', 'data 3 "b" (1)']);
    assert.equal(exchange.bodySent, 2);
    sendRequestBody(exchange);
    assert.deepEqual(calls, ['data 3 "a" (1)', 'data 3 "b" (1)'], 'nothing is sent twice');
    keepRequestData(exchange, chunk('c'), false);
    keepRequestData(exchange, chunk('d'), true);
    sendRequestBody(exchange);
    assert.deepEqual(calls, ['data 3 "a" (1)', 'data 3 "b" (1)', 'data 3 "c" (1)', 'data 3 "d" (1) end']);
    assert.equal(exchange.bodySent, 4);
  });

  it('while retryable, keeps what was sent so that another attempt can send it again from the start', () => {
    const { calls, exchange, attach } = setup();
    attach();
    keepRequestData(exchange, chunk('one'), false);
    keepRequestData(exchange, chunk('two'), true);
    sendRequestBody(exchange);
    assert.deepEqual(exchange.body.map(String), ['one', 'two']);
    assert.equal(exchange.bodySent, 2);
    exchange.bodySent = 0; // what the relay does when a retry's stream opens
    sendRequestBody(exchange);
    assert.deepEqual(calls, ['data 3 "one" (3)', 'data 3 "two" (3) end', 'data 3 "one" (3)', 'data 3 "two" (3) end']);
  });

  it('once no retry is possible, drops what was sent and starts counting again', () => {
    const { calls, exchange, attach } = setup();
    attach();
    const body = exchange.body;
    exchange.retryable = false;
    keepRequestData(exchange, chunk('one'), false);
    sendRequestBody(exchange);
    assert.deepEqual(exchange.body, []);
    assert.equal(exchange.body, body, 'the same array, emptied');
    assert.equal(exchange.bodySent, 0);
    keepRequestData(exchange, chunk('two'), true);
    sendRequestBody(exchange);
    assert.deepEqual(calls, ['data 3 "one" (3)', 'data 3 "two" (3) end']);
    assert.deepEqual(exchange.body, []);
    assert.equal(exchange.bodySent, 0);
  });

  it('ends an open stream with an empty DATA frame when the request ended with no chunk to carry END_STREAM', () => {
    const { calls, exchange, attach } = setup('open');
    attach();
    keepRequestData(exchange, Buffer.alloc(0), true);
    sendRequestBody(exchange);
    assert.deepEqual(calls, ['data 3 "" (0) end']);
  });

  it('ends the stream with an empty DATA frame after a body that was sent and dropped before the request ended', () => {
    const { calls, exchange, attach } = setup('open');
    attach();
    exchange.retryable = false;
    keepRequestData(exchange, chunk('msg'), false);
    sendRequestBody(exchange);
    keepRequestData(exchange, Buffer.alloc(0), true);
    sendRequestBody(exchange);
    assert.deepEqual(calls, ['data 3 "msg" (3)', 'data 3 "" (0) end']);
  });

  it('sends no empty DATA frame on a stream that is no longer open, nor while the request goes on', () => {
    for (const state of ['half-closed-local', 'half-closed-remote', 'closed', 'idle'] as const) {
      const { calls, exchange, attach } = setup(state);
      attach();
      keepRequestData(exchange, Buffer.alloc(0), true);
      sendRequestBody(exchange);
      assert.deepEqual(calls, [], state);
    }
    const { calls, exchange, attach } = setup('open');
    attach();
    sendRequestBody(exchange);
    assert.deepEqual(calls, []);
  });

  it('ends the stream when END_STREAM comes alone after a body that was sent and is still held for a retry', () => {
    const { calls, exchange, attach } = setup('open');
    attach();
    keepRequestData(exchange, chunk('msg'), false);
    sendRequestBody(exchange);
    keepRequestData(exchange, Buffer.alloc(0), true);
    sendRequestBody(exchange);
    assert.deepEqual(calls, ['data 3 "msg" (3)', 'data 3 "" (0) end']);
    assert.equal(exchange.retryable, true);
  });

  it('ends the stream once: no empty frame after data that carried END_STREAM, however often it is called', () => {
    const { calls, exchange, attach } = setup('open');
    attach();
    keepRequestData(exchange, chunk('msg'), true);
    sendRequestBody(exchange);
    sendRequestBody(exchange);
    keepRequestData(exchange, Buffer.alloc(0), true);
    sendRequestBody(exchange);
    assert.deepEqual(calls, ['data 3 "msg" (3) end']);
  });
});

describe('creditRequestBytes', () => {
  it('returns each accepted byte to the client window once', () => {
    const { calls, exchange } = setup();
    creditRequestBytes(exchange, 100);
    assert.deepEqual(calls, ['consume 1 100']);
    assert.equal(exchange.requestBytesSent, 100);
    assert.equal(exchange.requestBytesCredited, 100);
    creditRequestBytes(exchange, 28);
    assert.deepEqual(calls, ['consume 1 100', 'consume 1 28']);
    assert.equal(exchange.requestBytesSent, 128);
    assert.equal(exchange.requestBytesCredited, 128);
  });

  it('credits nothing for bytes a retry sends again, and only what goes beyond the first attempt', () => {
    const { calls, exchange } = setup();
    creditRequestBytes(exchange, 100);
    exchange.requestBytesSent = 0; // a retry's stream opens
    creditRequestBytes(exchange, 60);
    assert.equal(exchange.requestBytesSent, 60);
    assert.equal(exchange.requestBytesCredited, 100);
    creditRequestBytes(exchange, 40);
    assert.equal(exchange.requestBytesSent, 100);
    assert.equal(exchange.requestBytesCredited, 100);
    assert.deepEqual(calls, ['consume 1 100'], 'no credit of 0 or less');
    creditRequestBytes(exchange, 1);
    assert.deepEqual(calls, ['consume 1 100', 'consume 1 1']);
    assert.equal(exchange.requestBytesSent, 101);
    assert.equal(exchange.requestBytesCredited, 101);
  });

  it('credits the part of a report that crosses what was credited before', () => {
    const { calls, exchange } = setup();
    creditRequestBytes(exchange, 50);
    exchange.requestBytesSent = 0;
    creditRequestBytes(exchange, 70);
    assert.deepEqual(calls, ['consume 1 50', 'consume 1 20']);
    assert.equal(exchange.requestBytesCredited, 70);
  });
});

describe('mayRetryUnsent', () => {
  it('holds the request for 5 s from its arrival, whatever the attempts made and whether or not the body is held', () => {
    const { exchange } = setup();
    const verdicts = [];
    for (const retryable of [true, false]) {
      exchange.retryable = retryable;
      exchange.attempts = 40;
      for (const now of [0, 4_999, 5_000, 60_000]) verdicts.push(`${retryable} ${now} ${mayRetryUnsent(exchange, now)}`);
    }
    assert.equal(UNSENT_HOLD_MS, 5_000);
    assert.deepEqual(verdicts, ['true 0 true', 'true 4999 true', 'true 5000 false', 'true 60000 false', 'false 0 true', 'false 4999 true', 'false 5000 false', 'false 60000 false']);
  });
});

describe('mayRetryRefused', () => {
  it('allows another attempt only while the body is held and fewer than three were made', () => {
    const { exchange } = setup();
    const verdicts = [];
    for (const retryable of [true, false]) {
      exchange.retryable = retryable;
      for (const attempts of [1, 2, 3, 4]) {
        exchange.attempts = attempts;
        verdicts.push(`${retryable} ${attempts} ${mayRetryRefused(exchange)}`);
      }
    }
    assert.deepEqual(verdicts, ['true 1 true', 'true 2 true', 'true 3 false', 'true 4 false', 'false 1 false', 'false 2 false', 'false 3 false', 'false 4 false']);
  });
});
