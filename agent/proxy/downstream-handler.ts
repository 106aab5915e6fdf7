// Events of client connections (our server role), turned into relay actions. One object serves every connection.

import type { Http2Handler } from '../http2/handler.ts';
import type { Stream } from '../http2/stream.ts';
import type { DownstreamContext, DownstreamHttp2, Exchange } from './exchange.ts';
import type { Relay } from './relay.ts';

export class DownstreamHandler implements Http2Handler<DownstreamContext, Exchange> {
  private readonly relay: Relay;

  constructor(relay: Relay) {
    this.relay = relay;
  }

  onHeaders(connection: DownstreamHttp2, stream: Stream<Exchange>, headers: string[], endStream: boolean, isTrailers: boolean): void {
    if (!isTrailers) return this.relay.startExchange(connection, stream, headers, endStream);
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
    this.relay.forwardRequestData(exchange, data, endStream);
  }

  onStreamReset(_connection: DownstreamHttp2, stream: Stream<Exchange>): void {
    const exchange = stream.context;
    if (exchange !== null) this.relay.clientCancelled(exchange);
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

  onConnectionClose(): void {}
}

const EMPTY = Buffer.alloc(0);
