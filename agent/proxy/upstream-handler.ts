// Events of upstream connections (our client role), turned into relay actions. One object serves every connection.

import type { Http2Connection } from '../http2/connection.ts';
import type { Http2ConnectionError, Http2Handler } from '../http2/handler.ts';
import type { Stream } from '../http2/stream.ts';
import type { UpstreamConnection } from '../upstream/upstream-connection.ts';
import type { Exchange } from './exchange.ts';
import type { Relay } from './relay.ts';

export class UpstreamHandler implements Http2Handler {
  private readonly relay: Relay;

  constructor(relay: Relay) {
    this.relay = relay;
  }

  onHeaders(_connection: Http2Connection, stream: Stream, headers: string[], endStream: boolean, isTrailers: boolean): void {
    const exchange = stream.context as Exchange | null;
    if (exchange === null) return; // orphaned by a cancel past the reset budget
    const downstream = exchange.downstream;
    if (isTrailers) {
      downstream.sendTrailers(exchange.downstreamStream, headers);
    } else {
      exchange.retryable = false;
      exchange.responseStarted = true;
      downstream.sendHeaders(exchange.downstreamStream, headers, endStream);
    }
    if (endStream) this.relay.responseEnded(exchange, grpcStatusIn(headers));
  }

  onData(connection: Http2Connection, stream: Stream, data: Buffer, endStream: boolean): void {
    const exchange = stream.context as Exchange | null;
    if (exchange === null) {
      connection.consume(stream, data.length);
      return;
    }
    exchange.downstream.sendData(exchange.downstreamStream, data, endStream);
    if (endStream) this.relay.responseEnded(exchange, GRPC_INTERNAL);
  }

  onStreamReset(connection: Http2Connection, stream: Stream, code: number): void {
    const exchange = stream.context as Exchange | null;
    if (exchange !== null) this.relay.upstreamStreamReset(exchange, connection, code);
    (connection.context as UpstreamConnection | null)?.onStreamEnded();
  }

  onStreamClose(connection: Http2Connection): void {
    (connection.context as UpstreamConnection | null)?.onStreamEnded();
  }

  onDataSent(_connection: Http2Connection, stream: Stream, bytes: number): void {
    const exchange = stream.context as Exchange | null;
    if (exchange !== null) this.relay.requestBytesSent(exchange, bytes);
  }

  onGoaway(connection: Http2Connection): void {
    (connection.context as UpstreamConnection | null)?.onPeerGoaway();
  }

  onRemoteSettings(): void {}

  onConnectionClose(connection: Http2Connection, error: Http2ConnectionError | null): void {
    (connection.context as UpstreamConnection | null)?.onClosed(error === null ? null : error.message);
  }
}

const GRPC_INTERNAL = 13;

/** The grpc-status of a trailer (or Trailers-Only) block; a missing or malformed one is INTERNAL per the gRPC spec. */
function grpcStatusIn(headers: readonly string[]): number {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] === 'grpc-status') {
      const status = Number(headers[i + 1]);
      return Number.isInteger(status) && status >= 0 ? status : GRPC_INTERNAL;
    }
  }
  return GRPC_INTERNAL;
}
