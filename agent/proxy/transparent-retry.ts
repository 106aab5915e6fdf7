// Transparent retries: a request goes to another endpoint only while HTTP/2 proves the first one never processed it
// (connect failure, REFUSED_STREAM, a stream above the endpoint's GOAWAY), and only while its body is still held.

import type { Exchange } from './exchange.ts';
import { NO_CHUNKS, withChunk } from '../vocabulary/chunk-list.ts';

/** Request bodies up to this size are kept until the response starts, so a refused request can be sent again. */
export const RETRY_BODY_LIMIT = 64 * 1024;
/** Attempts per request, the first included. */
export const MAX_ATTEMPTS = 3;

const EMPTY = Buffer.alloc(0);

/** Request body from the client: kept in order (and, while a retry is possible, kept after it was sent). */
export function keepRequestData(exchange: Exchange, data: Buffer, endStream: boolean): void {
  if (data.length > 0) {
    exchange.body = withChunk(exchange.body, data);
    exchange.bodyBytes += data.length;
  }
  if (endStream) exchange.requestEnded = true;
  if (exchange.retryable && exchange.bodyBytes > RETRY_BODY_LIMIT) exchange.retryable = false;
}

/** Sends what the upstream stream has not had yet of the body; drops what was sent once no retry is possible. */
export function sendRequestBody(exchange: Exchange): void {
  const connection = exchange.upstream;
  const stream = exchange.upstreamStream;
  if (connection === null || stream === null) return;
  const body = exchange.body;
  while (exchange.bodySent < body.length) {
    const index = exchange.bodySent++;
    const last = exchange.requestEnded && exchange.bodySent === body.length;
    connection.sendData(stream, body[index], last);
  }
  // The client's END_STREAM can come alone (an empty DATA frame, or trailers) after the whole body went upstream,
  // held for a retry or not: it still has to end the upstream request, once.
  if (exchange.requestEnded && stream.state === 'open' && !stream.endAfterQueue) connection.sendData(stream, EMPTY, true);
  if (!exchange.retryable) {
    exchange.body = NO_CHUNKS;
    exchange.bodySent = 0;
  }
}

/** Request bytes the upstream accepted: they return to the client's window once each, however many attempts sent
 *  them (a retry sends the held body again). */
export function creditRequestBytes(exchange: Exchange, bytes: number): void {
  exchange.requestBytesSent += bytes;
  const credit = exchange.requestBytesSent - exchange.requestBytesCredited;
  if (credit > 0) {
    exchange.requestBytesCredited += credit;
    exchange.downstream.consume(exchange.downstreamStream, credit);
  }
}

/**
 * How long a request whose endpoints cannot be connected to is held, trying again, before it fails UNAVAILABLE (its
 * own deadline, when sooner, ends it first): long enough for a restarting only endpoint to come back, short enough
 * that a client without a deadline learns of an outage.
 */
export const UNSENT_HOLD_MS = 5_000;

/**
 * Nothing reached the endpoint (connect failed): the request goes around again — to another endpoint, or to wait for
 * this one's next connect — for as long as it has been held less than UNSENT_HOLD_MS. Attempts are not counted: a
 * connect failure costs the endpoint nothing, and the pool's backoff paces the attempts.
 */
export function mayRetryUnsent(exchange: Exchange, now: number): boolean {
  return now - exchange.startedAt < UNSENT_HOLD_MS;
}

/** The endpoint refused the stream unprocessed: another attempt is allowed while the body is held and attempts remain. */
export function mayRetryRefused(exchange: Exchange): boolean {
  return exchange.retryable && exchange.attempts < MAX_ATTEMPTS;
}
