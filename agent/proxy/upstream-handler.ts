// Events of upstream connections (our client role), turned into relay actions. One object serves every connection.

import type { Http2ConnectionError } from '../http2/handler.ts';
import type { Stream } from '../http2/stream.ts';
import type { UpstreamHttp2Handler } from '../upstream/upstream-connection.ts';
import type { Exchange, ExchangeUpstream } from './exchange.ts';
import type { Relay } from './relay.ts';
import { creditRequestBytes } from './transparent-retry.ts';
import { unpinned } from './unpinned.ts';

export class UpstreamHandler implements UpstreamHttp2Handler<Exchange> {
  private readonly relay: Relay;

  constructor(relay: Relay) {
    this.relay = relay;
  }

  onHeaders(connection: ExchangeUpstream, stream: Stream<Exchange>, headers: readonly string[], endStream: boolean, isTrailers: boolean): void {
    markStreamFrame(connection);
    const exchange = stream.context;
    if (exchange === null) return; // orphaned by a cancel past the reset budget
    const downstream = exchange.downstream;
    if (isTrailers) {
      downstream.sendTrailers(exchange.downstreamStream, headers);
    } else {
      exchange.retryable = false;
      exchange.responseStarted = true;
      this.relay.responseStarted(exchange);
      downstream.sendHeaders(exchange.downstreamStream, headers, endStream);
    }
    if (endStream) this.relay.responseEnded(exchange, grpcStatusIn(headers));
  }

  onData(connection: ExchangeUpstream, stream: Stream<Exchange>, data: Buffer, endStream: boolean): void {
    markStreamFrame(connection);
    const exchange = stream.context;
    if (exchange === null) {
      connection.consume(stream, data.length);
      return;
    }
    // Bytes that will wait behind others for a slow client must not pin their whole read.
    const waits = exchange.downstreamStream.queuedBytes > 0;
    exchange.downstream.sendData(exchange.downstreamStream, waits ? unpinned(data) : data, endStream);
    if (endStream) this.relay.responseEnded(exchange, GRPC_INTERNAL);
  }

  onStreamReset(connection: ExchangeUpstream, stream: Stream<Exchange>, code: number): void {
    const exchange = stream.context;
    if (exchange !== null) this.relay.upstreamStreamReset(exchange, connection, code);
    connection.context?.onStreamEnded();
  }

  onStreamClose(connection: ExchangeUpstream): void {
    connection.context?.onStreamEnded();
  }

  onDataSent(_connection: ExchangeUpstream, stream: Stream<Exchange>, bytes: number): void {
    const exchange = stream.context;
    if (exchange !== null) creditRequestBytes(exchange, bytes);
  }

  onGoaway(connection: ExchangeUpstream): void {
    connection.context?.onPeerGoaway();
  }

  onRemoteSettings(connection: ExchangeUpstream): void {
    connection.context?.onPeerSettings();
  }

  onConnectionClose(connection: ExchangeUpstream, error: Http2ConnectionError | null): void {
    connection.context?.onClosed(error === null ? null : error.message);
  }
}

const GRPC_INTERNAL = 13;

/** The endpoint wrote HEADERS or DATA: its next PING from our keepalive is free (see upstream/upstream-keepalive.ts). */
function markStreamFrame(connection: ExchangeUpstream): void {
  const upstream = connection.context;
  if (upstream !== null) upstream.streamFrameSeen = true;
}

/** The grpc-status of a trailer (or Trailers-Only) block; a missing or malformed one is INTERNAL per the gRPC spec. */
function grpcStatusIn(headers: readonly string[]): number {
  for (let i = 0; i < headers.length; i += 2) {
    // Decimal digits only: Number() would read '' and ' ' as 0 (OK), and '0x1' or '1e0' as numbers.
    if (headers[i] === 'grpc-status') return /^[0-9]{1,9}$/.test(headers[i + 1]) ? Number(headers[i + 1]) : GRPC_INTERNAL;
  }
  return GRPC_INTERNAL;
}
