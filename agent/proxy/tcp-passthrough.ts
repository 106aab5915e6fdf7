// Relays a connection that is not HTTP/2 byte for byte to its original destination: interception must never break
// a connection, whatever it speaks.

import net from 'node:net';

export interface PassthroughTarget {
  host: string;
  port: number;
}

/**
 * Connects to `target`, sends `firstBytes` (what sniffing already read), then pipes both ways with half-close kept.
 * `onError` hears of a failure once; both sockets are destroyed then.
 */
export function passThrough(client: net.Socket, firstBytes: Buffer, target: PassthroughTarget, connectTimeoutMs: number, onError: (error: Error) => void): void {
  const upstream = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
  let failed = false;
  const fail = (error: Error): void => {
    if (failed) return;
    failed = true;
    client.destroy();
    upstream.destroy();
    onError(error);
  };
  upstream.setTimeout(connectTimeoutMs, () => fail(new Error(`connect to ${target.host}:${target.port} timed out`)));
  upstream.once('connect', () => {
    upstream.setTimeout(0);
    upstream.setNoDelay(true);
    if (firstBytes.length > 0) upstream.write(firstBytes);
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  });
  upstream.on('error', fail);
  client.on('error', fail);
  // A side that is fully closed takes the other with it once its data is flushed.
  client.on('close', () => upstream.end());
  upstream.on('close', () => client.end());
}
