// Cancelling an exchange's upstream side on its own: a queued wait withdrawn, RST_STREAM(CANCEL) within the reset
// budget, past it an orphaned stream whose reset waits for the budget, and the exchange letting go of its upstream stream.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EMPTY_PICKER } from '../../agent/balancer/picker.ts';
import { ErrorCode } from '../../agent/http2/constants.ts';
import { Stream } from '../../agent/http2/stream.ts';
import { type DownstreamHttp2, Exchange, type ExchangePhase, type ExchangeUpstream } from '../../agent/proxy/exchange.ts';
import { cancelUpstream, detachUpstream } from '../../agent/proxy/upstream-cancel.ts';
import { ResetBudget } from '../../agent/upstream/reset-budget.ts';
import type { UpstreamConnection } from '../../agent/upstream/upstream-connection.ts';
import type { UpstreamPool } from '../../agent/upstream/upstream-pool.ts';
import type { Clock } from '../../agent/vocabulary/clock.ts';
import { FakeTimers } from '../support/fake-timers.ts';

function newExchange(phase: ExchangePhase): Exchange {
  const driver = { onUpstreamReady() {}, onUpstreamFailed() {}, onDeadline() {} };
  const route = { key: 'default/greeter:50051', picker: EMPTY_PICKER };
  const exchange = new Exchange(driver, {} as DownstreamHttp2, new Stream<Exchange>(1, true, 65_535, 65_535), route, [], 0);
  exchange.phase = phase;
  return exchange;
}

/** What the pool and connection were asked to do. */
type Calls = string[];

function recordingPool(calls: Calls): UpstreamPool<Exchange> {
  return {
    address: '10.1.2.3:50051',
    cancelWait(waiter: Exchange) {
      calls.push(`cancelWait ${waiter.phase}`);
    },
  } as unknown as UpstreamPool<Exchange>;
}

/** A connection whose owner has `budget` (or no owner when null); the owner is what a deferred reset goes out on. */
function recordingConnection(calls: Calls, budget: ResetBudget | null): ExchangeUpstream {
  const http2 = {
    context: null as unknown,
    activeStreamCount: 1,
    resetStream(stream: Stream, code: number) {
      calls.push(`reset ${stream.id} ${code}`);
      stream.state = 'closed';
    },
  };
  if (budget !== null) {
    http2.context = {
      resetBudget: budget,
      state: { state: 'ready' },
      http2,
      onStreamEnded() {
        calls.push('streamEnded');
      },
      drain() {
        calls.push('drain');
      },
      close() {
        calls.push('close');
      },
    } as unknown as UpstreamConnection<Exchange>;
  }
  return http2 as unknown as ExchangeUpstream;
}

/** A clock that stays at 0 and sets no timer: deferred resets wait for a take-free budget that never refills. */
const stillClock = (): Clock => ({ now: () => 0, setTimeout: () => null, clearTimeout: () => {} });

/** A relaying exchange with its upstream stream (id 5) on a connection with `budget`. */
function relaying(calls: Calls, budget: ResetBudget | null) {
  const exchange = newExchange('relaying');
  exchange.pool = recordingPool(calls);
  const stream = new Stream<Exchange>(5, false, 65_535, 65_535);
  stream.context = exchange;
  exchange.upstream = recordingConnection(calls, budget);
  exchange.upstreamStream = stream;
  return { exchange, stream };
}

describe('cancelUpstream', () => {
  it('withdraws a waiting exchange from its pool queue and touches nothing else', () => {
    const calls: Calls = [];
    const { exchange, stream } = relaying(calls, new ResetBudget(1, 1, stillClock()));
    const connection = exchange.upstream;
    exchange.phase = 'waiting';
    cancelUpstream(exchange, 0);
    assert.deepEqual(calls, ['cancelWait waiting']);
    assert.equal(exchange.upstream, connection);
    assert.equal(exchange.upstreamStream, stream);
    assert.equal(stream.context, exchange);
  });

  it('does nothing for a waiting exchange that has no pool yet', () => {
    const exchange = newExchange('waiting');
    cancelUpstream(exchange, 0);
    assert.equal(exchange.pool, null);
    assert.equal(exchange.upstream, null);
  });

  it('does nothing when the exchange has no upstream connection or no upstream stream', () => {
    const calls: Calls = [];
    const noConnection = relaying(calls, new ResetBudget(1, 1, stillClock()));
    noConnection.exchange.upstream = null;
    cancelUpstream(noConnection.exchange, 0);
    assert.equal(noConnection.exchange.upstreamStream, noConnection.stream);
    assert.equal(noConnection.stream.context, noConnection.exchange);

    const noStream = relaying(calls, new ResetBudget(1, 1, stillClock()));
    const connection = noStream.exchange.upstream;
    noStream.exchange.upstreamStream = null;
    cancelUpstream(noStream.exchange, 0);
    assert.equal(noStream.exchange.upstream, connection);
    assert.deepEqual(calls, []);
  });

  it('resets the stream with CANCEL within the reset budget, then lets go of it', () => {
    const calls: Calls = [];
    const { exchange, stream } = relaying(calls, new ResetBudget(1, 1, stillClock()));
    cancelUpstream(exchange, 0);
    assert.deepEqual(calls, [`reset 5 ${ErrorCode.CANCEL}`]);
    assert.equal(stream.context, null);
    assert.equal(exchange.upstream, null);
    assert.equal(exchange.upstreamStream, null);
  });

  it('resets the stream when the connection has no owner to keep a budget', () => {
    const calls: Calls = [];
    const { exchange, stream } = relaying(calls, null);
    cancelUpstream(exchange, 0);
    assert.deepEqual(calls, ['reset 5 8']);
    assert.equal(stream.context, null);
    assert.equal(exchange.upstream, null);
    assert.equal(exchange.upstreamStream, null);
  });

  it('past the reset budget, lets go of the stream at once (its response is discarded) and queues its reset', () => {
    const calls: Calls = [];
    const budget = new ResetBudget(1, 1, stillClock());
    const first = relaying(calls, budget);
    const second = relaying(calls, budget);
    cancelUpstream(first.exchange, 0);
    cancelUpstream(second.exchange, 0);
    assert.deepEqual(calls, ['reset 5 8']);
    assert.equal(budget.queued, 1);
    assert.equal(budget.state, 'pacing');
    assert.equal(second.stream.context, null);
    assert.equal(second.exchange.upstream, null);
    assert.equal(second.exchange.upstreamStream, null);
  });

  it('the queued reset goes out on the clock once the budget refills, in the order of the cancels', () => {
    const calls: Calls = [];
    const clock = new FakeTimers();
    const budget = new ResetBudget(1, 1, clock);
    const exchanges = [relaying(calls, budget), relaying(calls, budget), relaying(calls, budget)];
    exchanges.forEach(({ stream }, i) => {
      (stream as { id: number }).id = 2 * i + 1;
    });
    for (const { exchange } of exchanges) cancelUpstream(exchange, clock.now());
    assert.deepEqual(calls, ['reset 1 8']);
    clock.advance(999);
    assert.deepEqual(calls, ['reset 1 8']);
    clock.advance(1);
    assert.deepEqual(calls, ['reset 1 8', 'reset 3 8', 'streamEnded']);
    clock.advance(1000);
    assert.deepEqual(calls, ['reset 1 8', 'reset 3 8', 'streamEnded', 'reset 5 8', 'streamEnded']);
    assert.equal(budget.state, 'idle');
  });

  it('a queued stream that ends before its turn is not reset', () => {
    const calls: Calls = [];
    const clock = new FakeTimers();
    const budget = new ResetBudget(1, 1, clock);
    cancelUpstream(relaying(calls, budget).exchange, 0);
    const second = relaying(calls, budget);
    cancelUpstream(second.exchange, 0);
    second.stream.state = 'closed';
    clock.advance(5000);
    assert.deepEqual(calls, ['reset 5 8']);
    assert.equal(budget.queued, 0);
  });

  it('takes from the budget at the time it is given', () => {
    const calls: Calls = [];
    // One reset, refilled at one per second: spent at 0, still short of a whole token at 999 ms, whole again at 1000.
    const budget = new ResetBudget(1, 1, stillClock());
    for (const now of [0, 999]) cancelUpstream(relaying(calls, budget).exchange, now);
    assert.deepEqual(calls, ['reset 5 8']);
    // The cancel of 999 ms waits; the token of 1000 ms is its own, not a later cancel's.
    cancelUpstream(relaying(calls, budget).exchange, 1000);
    assert.deepEqual(calls, ['reset 5 8']);
    assert.equal(budget.queued, 2);
  });

  it('takes from the budget at the time it is given, when nothing waits', () => {
    const calls: Calls = [];
    // Spent at 0, whole again at 1000: that cancel is reset at once; the next one at 1000 waits.
    const budget = new ResetBudget(1, 1, stillClock());
    for (const now of [0, 1000]) cancelUpstream(relaying(calls, budget).exchange, now);
    assert.deepEqual(calls, ['reset 5 8', 'reset 5 8']);
    cancelUpstream(relaying(calls, budget).exchange, 1000);
    assert.deepEqual(calls, ['reset 5 8', 'reset 5 8'], 'the token at 1000 was taken');
    assert.equal(budget.queued, 1);
  });
});

describe('detachUpstream', () => {
  it('clears the upstream stream of its exchange and forgets connection and stream', () => {
    const { exchange, stream } = relaying([], null);
    detachUpstream(exchange);
    assert.equal(stream.context, null);
    assert.equal(exchange.upstream, null);
    assert.equal(exchange.upstreamStream, null);
  });

  it('leaves a stream that carries another exchange as it is', () => {
    const { exchange, stream } = relaying([], null);
    const other = newExchange('relaying');
    stream.context = other;
    detachUpstream(exchange);
    assert.equal(stream.context, other);
    assert.equal(exchange.upstream, null);
    assert.equal(exchange.upstreamStream, null);
  });

  it('forgets the connection when there is no stream', () => {
    const { exchange } = relaying([], null);
    exchange.upstreamStream = null;
    detachUpstream(exchange);
    assert.equal(exchange.upstream, null);
    assert.equal(exchange.upstreamStream, null);
  });
});
