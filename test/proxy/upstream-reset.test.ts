// judgeUpstreamReset on its own: the verdict for each reset code, exchange phase, response state and connection state.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EMPTY_PICKER } from '../../agent/balancer/picker.ts';
import type { ConnectionState } from '../../agent/http2/connection.ts';
import { ErrorCode } from '../../agent/http2/constants.ts';
import { Http2ConnectionError } from '../../agent/http2/handler.ts';
import { Stream } from '../../agent/http2/stream.ts';
import { type DownstreamHttp2, Exchange, type ExchangePhase, type ExchangeUpstream } from '../../agent/proxy/exchange.ts';
import { judgeUpstreamReset } from '../../agent/proxy/upstream-reset.ts';
import type { UpstreamPool } from '../../agent/upstream/upstream-pool.ts';
import { GrpcStatus } from '../../agent/vocabulary/errors.ts';

const ADDRESS = '10.1.2.3:50051';
const OPEN: ConnectionState = { state: 'open' };
const DRAINING: ConnectionState = { state: 'draining', since: 5, initiatedBy: 'peer' };
const CLOSED_CLEANLY: ConnectionState = { state: 'closed', error: null };
const CLOSED_BY_US: ConnectionState = { state: 'closed', error: new Http2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'answered HTTP/1.1', false) };
const CLOSED_BY_PEER: ConnectionState = { state: 'closed', error: new Http2ConnectionError(ErrorCode.INTERNAL_ERROR, 'peer sent GOAWAY', true) };
const ANY_STATE: readonly ConnectionState[] = [OPEN, DRAINING, CLOSED_CLEANLY, CLOSED_BY_US, CLOSED_BY_PEER];

interface Setup {
  phase?: ExchangePhase;
  responseStarted?: boolean;
  pool?: boolean;
}

function exchangeWith({ phase = 'relaying', responseStarted = false, pool = true }: Setup = {}): Exchange {
  const driver = { onUpstreamReady() {}, onUpstreamFailed() {}, onDeadline() {} };
  const route = { key: 'default/greeter:50051', picker: EMPTY_PICKER };
  const exchange = new Exchange(driver, {} as DownstreamHttp2, new Stream<Exchange>(1, true, 65_535, 65_535), route, [], 0);
  exchange.phase = phase;
  exchange.responseStarted = responseStarted;
  if (pool) exchange.pool = { address: ADDRESS } as unknown as UpstreamPool<Exchange>;
  return exchange;
}

function connectionIn(lifecycle: ConnectionState, goingAwayByPeer = false): ExchangeUpstream {
  return { lifecycle, goingAwayByPeer } as unknown as ExchangeUpstream;
}

describe('judgeUpstreamReset', () => {
  it('after the outcome is known, passes on only a RST_STREAM(NO_ERROR), whatever the connection state', () => {
    const finished = exchangeWith({ phase: 'finished', responseStarted: true });
    assert.deepEqual(judgeUpstreamReset(finished, connectionIn(OPEN), ErrorCode.NO_ERROR), { kind: 'after-finish', passReset: true });
    assert.deepEqual(judgeUpstreamReset(finished, connectionIn(OPEN), ErrorCode.CANCEL), { kind: 'after-finish', passReset: false });
    assert.deepEqual(judgeUpstreamReset(finished, connectionIn(OPEN), ErrorCode.PROTOCOL_ERROR), { kind: 'after-finish', passReset: false });
    assert.deepEqual(judgeUpstreamReset(finished, connectionIn(CLOSED_BY_US), ErrorCode.NO_ERROR), { kind: 'after-finish', passReset: true });
  });

  it('after the outcome is known, does not treat REFUSED_STREAM as a refusal to retry', () => {
    const finished = exchangeWith({ phase: 'finished' });
    assert.deepEqual(judgeUpstreamReset(finished, connectionIn(OPEN), ErrorCode.REFUSED_STREAM), { kind: 'after-finish', passReset: false });
  });

  it('after the outcome is known, needs no pool (the exchange may have let go of it)', () => {
    const finished = exchangeWith({ phase: 'finished', pool: false });
    assert.deepEqual(judgeUpstreamReset(finished, connectionIn(OPEN), ErrorCode.NO_ERROR), { kind: 'after-finish', passReset: true });
  });

  it('judges REFUSED_STREAM a refusal that charges the endpoint, in any phase before finished and any connection state', () => {
    const refused = { kind: 'refused', chargeEndpoint: true, message: `upstream ${ADDRESS} refused the stream (REFUSED_STREAM)` };
    for (const phase of ['waiting', 'relaying'] as const) {
      for (const lifecycle of ANY_STATE) {
        assert.deepEqual(judgeUpstreamReset(exchangeWith({ phase }), connectionIn(lifecycle), ErrorCode.REFUSED_STREAM), refused);
      }
    }
    assert.deepEqual(judgeUpstreamReset(exchangeWith({ responseStarted: true }), connectionIn(OPEN), ErrorCode.REFUSED_STREAM), refused);
  });

  it('judges a stream refused because the endpoint closes its connection (GOAWAY) a refusal that does not charge the endpoint', () => {
    assert.deepEqual(judgeUpstreamReset(exchangeWith({}), connectionIn(OPEN, true), ErrorCode.REFUSED_STREAM), {
      kind: 'refused',
      chargeEndpoint: false,
      message: `upstream ${ADDRESS} closed its connection (GOAWAY) before the stream`,
    });
  });

  it('judges RST_STREAM(NO_ERROR) after the response started the end of the response, charging the endpoint only when the connection is closed', () => {
    const started = exchangeWith({ responseStarted: true });
    const ended = (chargeEndpoint: boolean) => ({
      kind: 'ended-by-reset',
      chargeEndpoint,
      status: GrpcStatus.INTERNAL,
      message: 'response ended by RST_STREAM(NO_ERROR) without trailers',
    });
    assert.deepEqual(judgeUpstreamReset(started, connectionIn(OPEN), ErrorCode.NO_ERROR), ended(false));
    assert.deepEqual(judgeUpstreamReset(started, connectionIn(DRAINING), ErrorCode.NO_ERROR), ended(false));
    assert.deepEqual(judgeUpstreamReset(started, connectionIn(CLOSED_CLEANLY), ErrorCode.NO_ERROR), ended(true));
    assert.deepEqual(judgeUpstreamReset(started, connectionIn(CLOSED_BY_US), ErrorCode.NO_ERROR), ended(true));
  });

  it('judges RST_STREAM(NO_ERROR) before any response a reset to relay as INTERNAL', () => {
    assert.deepEqual(judgeUpstreamReset(exchangeWith(), connectionIn(OPEN), ErrorCode.NO_ERROR), {
      kind: 'relay-status',
      chargeEndpoint: false,
      status: GrpcStatus.INTERNAL,
      message: `upstream ${ADDRESS} reset the stream (NO_ERROR)`,
    });
  });

  it('on a connection the agent closed for breaking HTTP/2, fails the exchange with ML_UPSTREAM_PROTOCOL and the reason', () => {
    const expected = { kind: 'fail', chargeEndpoint: true, code: 'ML_UPSTREAM_PROTOCOL', message: `endpoint ${ADDRESS} broke HTTP/2: answered HTTP/1.1` };
    assert.deepEqual(judgeUpstreamReset(exchangeWith(), connectionIn(CLOSED_BY_US), ErrorCode.CANCEL), expected);
    assert.deepEqual(judgeUpstreamReset(exchangeWith(), connectionIn(CLOSED_BY_US), ErrorCode.NO_ERROR), expected);
    assert.deepEqual(judgeUpstreamReset(exchangeWith({ responseStarted: true }), connectionIn(CLOSED_BY_US), ErrorCode.INTERNAL_ERROR), expected);
  });

  it('on a connection closed without an error or by the peer, fails the exchange with ML_UPSTREAM_CONNECTION_LOST', () => {
    const lost = { kind: 'fail', chargeEndpoint: true, code: 'ML_UPSTREAM_CONNECTION_LOST', message: `connection to ${ADDRESS} lost` };
    assert.deepEqual(judgeUpstreamReset(exchangeWith(), connectionIn(CLOSED_CLEANLY), ErrorCode.CANCEL), lost);
    assert.deepEqual(judgeUpstreamReset(exchangeWith(), connectionIn(CLOSED_BY_PEER), ErrorCode.CANCEL), lost);
    assert.deepEqual(judgeUpstreamReset(exchangeWith(), connectionIn(CLOSED_BY_PEER), ErrorCode.NO_ERROR), lost);
    assert.deepEqual(judgeUpstreamReset(exchangeWith({ responseStarted: true }), connectionIn(CLOSED_BY_PEER), ErrorCode.PROTOCOL_ERROR), lost);
  });

  it('on an open or draining connection, relays the reset as the gRPC status of its code without charging the endpoint', () => {
    const cases: Array<[number, number, string]> = [
      [ErrorCode.CANCEL, GrpcStatus.CANCELLED, 'CANCEL'],
      [ErrorCode.ENHANCE_YOUR_CALM, GrpcStatus.RESOURCE_EXHAUSTED, 'ENHANCE_YOUR_CALM'],
      [ErrorCode.INADEQUATE_SECURITY, GrpcStatus.PERMISSION_DENIED, 'INADEQUATE_SECURITY'],
      [ErrorCode.PROTOCOL_ERROR, GrpcStatus.INTERNAL, 'PROTOCOL_ERROR'],
      [ErrorCode.HTTP_1_1_REQUIRED, GrpcStatus.INTERNAL, 'HTTP_1_1_REQUIRED'],
      [0xff, GrpcStatus.INTERNAL, '0xff'],
    ];
    for (const lifecycle of [OPEN, DRAINING] as const) {
      for (const responseStarted of [false, true]) {
        for (const [code, status, name] of cases) {
          assert.deepEqual(judgeUpstreamReset(exchangeWith({ responseStarted }), connectionIn(lifecycle), code), {
            kind: 'relay-status',
            chargeEndpoint: false,
            status,
            message: `upstream ${ADDRESS} reset the stream (${name})`,
          });
        }
      }
    }
  });

  it('judges a waiting exchange like a relaying one', () => {
    assert.deepEqual(judgeUpstreamReset(exchangeWith({ phase: 'waiting' }), connectionIn(OPEN), ErrorCode.CANCEL), {
      kind: 'relay-status',
      chargeEndpoint: false,
      status: GrpcStatus.CANCELLED,
      message: `upstream ${ADDRESS} reset the stream (CANCEL)`,
    });
  });
});
