// A peer that closes its socket without GOAWAY (grpc-go's client does): the connection ends, on a socket accepted with
// allowHalfOpen (the listener's) too, instead of staying half-open for as long as the process lives.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import type { Http2Handler } from '../../agent/http2/handler.ts';
import { serveSocket } from '../../agent/http2/socket-transport.ts';
import { waitFor } from '../../lab/wait-for.ts';
import { PREFACE, settings } from '../support/raw-frames.ts';

test('a client FIN after the handshake, with no GOAWAY and no stream: the server side closes', async () => {
  let closed = 0;
  let accepted: net.Socket | null = null;
  const handler = { onRemoteSettings: () => {}, onConnectionClose: () => void closed++ } as unknown as Http2Handler;
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    accepted = socket;
    serveSocket(socket, handler);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  try {
    await once(client, 'connect');
    client.write(Buffer.concat([PREFACE, settings([])]));
    // The server's SETTINGS: the handshake is done.
    await once(client, 'data');
    client.end();
    await waitFor(() => (accepted as net.Socket | null)?.destroyed === true, { timeoutMs: 5_000, message: 'the server side closed' });
    await waitFor(() => closed === 1, { timeoutMs: 5_000, message: 'the connection ended' });
  } finally {
    client.destroy();
    server.close();
  }
  assert.equal(closed, 1);
});
