// Connections that are not HTTP/2 are relayed byte for byte to where they were going: interception never breaks one.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { RoundRobinPolicy } from '../../agent/balancer/round-robin.ts';
import { startRelay } from '../support/relay-harness.ts';

async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

test('an HTTP/1.1 request to an intercepted destination reaches it untouched', async () => {
  const web = http.createServer((request, response) => response.end(`hello ${request.url}`));
  const port = await listen(web);
  const harness = await startRelay([], new RoundRobinPolicy(), { originalDestination: () => ({ ip: '127.0.0.1', port }) });
  try {
    const response = await fetch(`http://127.0.0.1:${harness.port}/path?x=1`);
    assert.equal(response.status, 200);
    assert.equal(await response.text(), 'hello /path?x=1');
  } finally {
    await harness.close();
    web.closeAllConnections();
    web.close();
  }
});

test('a server-speaks-first protocol works once the sniff times out, and half-close is kept', async () => {
  const greeter = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.write('220 hello\r\n');
    let seen = '';
    socket.on('data', (chunk) => {
      seen += chunk.toString();
    });
    socket.on('end', () => socket.end(`got ${seen.length} bytes\r\n`));
  });
  const port = await listen(greeter);
  const harness = await startRelay([], new RoundRobinPolicy(), {
    originalDestination: () => ({ ip: '127.0.0.1', port }),
    sniffTimeoutMs: 200,
  });
  try {
    const client = net.connect({ port: harness.port, host: '127.0.0.1', allowHalfOpen: true });
    let received = '';
    client.on('data', (chunk) => {
      received += chunk.toString();
      if (received === '220 hello\r\n') client.end('QUIT\r\n');
    });
    await once(client, 'end');
    assert.equal(received, '220 hello\r\ngot 6 bytes\r\n');
    client.destroy();
  } finally {
    await harness.close();
    greeter.close();
  }
});

test('a non-HTTP/2 connection dialled directly (explicit mode) is closed: there is nowhere else to send it', async () => {
  const harness = await startRelay([]);
  try {
    const client = net.connect({ port: harness.port, host: '127.0.0.1' });
    client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await once(client, 'close');
  } finally {
    await harness.close();
  }
});
