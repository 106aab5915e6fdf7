// Events of client connections (our server role), turned into relay actions. One object serves every connection.

import { ErrorCode } from '../http2/constants.ts';
import type { Http2ConnectionError, Http2Handler } from '../http2/handler.ts';
import type { Stream } from '../http2/stream.ts';
import type { DownstreamContext, DownstreamHttp2, Exchange } from './exchange.ts';
import type { Relay } from './relay.ts';
import { unpinned } from './unpinned.ts';

/** What the agent's limits need to hear from client connections (see agent-run.ts); absent in tests of the relay. */
export interface DownstreamLimits {
  /** Over the agent's buffer budget: new streams are refused. */
  readonly budget: { readonly exhausted: boolean };
  /** A stream opened on the connection (it is not idle). */
  streamOpened(connection: DownstreamHttp2): void;
  /** A new stream was refused because of the budget. */
  streamRefused(): void;
  /** A connection did not complete its handshake in time. */
  handshakeTimedOut(): void;
  /** A connection was closed for a flood (rapid reset, PINGs, SETTINGS: http2/flood-guard.ts); `reason` names it. */
  flooded(reason: string): void;
}

export class DownstreamHandler implements Http2Handler<DownstreamContext, Exchange> {
  private readonly relay: Relay;
  limits: DownstreamLimits | null = null;

  constructor(relay: Relay) {
    this.relay = relay;
  }

  onHeaders(connection: DownstreamHttp2, stream: Stream<Exchange>, headers: readonly string[], endStream: boolean, isTrailers: boolean): void {
    if (!isTrailers) {
      const limits = this.limits;
      if (limits !== null) {
        limits.streamOpened(connection);
        if (limits.budget.exhausted) {
          // Nothing was processed: the client may retry (gRPC clients do so transparently), here or elsewhere.
          connection.resetStream(stream, ErrorCode.REFUSED_STREAM);
          limits.streamRefused();
          return;
        }
      }
      return this.relay.startExchange(connection, stream, headers, endStream);
    }
    // Request trailers are rare in gRPC; they end the request body.
    const exchange = stream.context;
    if (exchange !== null && exchange.phase !== 'finished') this.relay.forwardRequestData(exchange, EMPTY, true);
  }

  onData(connection: DownstreamHttp2, stream: Stream<Exchange>, data: Buffer, endStream: boolean): void {
    const exchange = stream.context;
    if (exchange === null || exchange.phase === 'finished') {
      // The response was already decided: the rest of the request is read and dropped.
      connection.consume(stream, data.length);
      return;
    }
    // Bytes that will wait (no upstream stream yet, or its queue is not empty) must not pin their whole read.
    const upstream = exchange.upstreamStream;
    const waits = upstream === null || upstream.queuedBytes > 0;
    this.relay.forwardRequestData(exchange, waits ? unpinned(data) : data, endStream);
  }

  onStreamReset(connection: DownstreamHttp2, stream: Stream<Exchange>): void {
    const exchange = stream.context;
    if (exchange !== null) this.relay.clientCancelled(exchange);
    // A stream that ends with its connection still counts what it held: those bytes leave the budget now.
    if (stream.unconsumedBytes > 0) connection.consume(stream, stream.unconsumedBytes);
  }

  onStreamClose(): void {}

  onDataSent(_connection: DownstreamHttp2, stream: Stream<Exchange>, bytes: number): void {
    // Response bytes reached the client connection: the endpoint may send that much more on the stream.
    const exchange = stream.context;
    if (exchange !== null && exchange.upstream !== null && exchange.upstreamStream !== null) {
      exchange.upstream.consume(exchange.upstreamStream, bytes);
    }
  }

  onGoaway(): void {}

  onRemoteSettings(): void {}

  onConnectionClose(_connection: DownstreamHttp2, error: Http2ConnectionError | null): void {
    if (error === null || error.byPeer) return;
    if (error.code === ErrorCode.SETTINGS_TIMEOUT) this.limits?.handshakeTimedOut();
    else if (error.code === ErrorCode.ENHANCE_YOUR_CALM) this.limits?.flooded(error.message);
  }
}

const EMPTY = Buffer.alloc(0);
