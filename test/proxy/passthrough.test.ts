// Connections that are not HTTP/2 are relayed byte for byte to where they were going: interception never breaks one.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { RoundRobinPolicy } from '../../agent/balancer/round-robin.ts';
import { passThrough } from '../../agent/proxy/tcp-passthrough.ts';
import { waitFor } from '../../lab/wait-for.ts';
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

// ---- passThrough itself, on a pair of real sockets: `client` is the proxy's end of a test connection ----

interface Relayed {
  /** The test's own end of the client connection. */
  peer: net.Socket;
  /** The proxy's end, handed to passThrough. */
  client: net.Socket;
  errors: string[];
  close(): Promise<void>;
}

/** A client connection accepted the way the listener accepts (half-open allowed), handed to passThrough. */
async function relayed(target: { host: string; port: number }, connectTimeoutMs: number, firstBytes = Buffer.alloc(0)): Promise<Relayed> {
  const front = net.createServer({ allowHalfOpen: true });
  const port = await listen(front);
  const acceptedP = once(front, 'connection') as Promise<[net.Socket]>;
  const peer = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  peer.on('error', () => {});
  const [client] = await acceptedP;
  // The listener pauses the socket before it hands it over.
  client.pause();
  const errors: string[] = [];
  passThrough(client, firstBytes, target, connectTimeoutMs, (error) => errors.push((error as NodeJS.ErrnoException).code ?? error.message));
  return {
    peer,
    client,
    errors,
    close: async () => {
      peer.destroy();
      client.destroy();
      await new Promise((resolve) => front.close(resolve));
    },
  };
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  const port = await listen(server);
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test('passThrough: a destination that refuses is reported once, and the client closed', async () => {
  const r = await relayed({ host: '127.0.0.1', port: await freePort() }, 1000);
  try {
    await waitFor(() => r.peer.destroyed || r.peer.readableEnded, { message: 'the client was closed' });
    assert.deepEqual(r.errors, ['ECONNREFUSED']);
    assert.equal(r.client.destroyed, true);
  } finally {
    await r.close();
  }
});

test('passThrough: a second error after the first is not reported again', async () => {
  const upstream = net.createServer((socket) => socket.pipe(socket));
  const port = await listen(upstream);
  const r = await relayed({ host: '127.0.0.1', port }, 1000, Buffer.from('hi'));
  try {
    r.peer.on('data', () => {});
    await waitFor(() => r.client.bytesWritten === 2, { message: 'the echo of the first bytes' });
    r.client.emit('error', new Error('first'));
    r.client.emit('error', new Error('second'));
    assert.deepEqual(r.errors, ['first']);
  } finally {
    await r.close();
    upstream.close();
  }
});

test('passThrough: a client that fails takes the upstream connection down with it', async () => {
  let upstreamSide: net.Socket | undefined;
  const upstream = net.createServer({ allowHalfOpen: true }, (socket) => {
    upstreamSide = socket;
    socket.on('data', () => {});
    socket.on('error', () => {});
  });
  const port = await listen(upstream);
  const r = await relayed({ host: '127.0.0.1', port }, 1000, Buffer.from('hello'));
  try {
    await waitFor(() => upstreamSide !== undefined && upstreamSide.bytesRead === 5, { message: 'the first bytes upstream' });
    r.client.destroy(new Error('client broke'));
    // Destroyed, not merely ended: what the destination still sends is refused (a reset), so its socket closes.
    await waitFor(
      () => {
        if (!upstreamSide!.destroyed) upstreamSide!.write('more');
        return upstreamSide!.destroyed;
      },
      { timeoutMs: 5000, message: 'the upstream connection was destroyed' },
    );
    assert.deepEqual(r.errors, ['client broke']);
  } finally {
    await r.close();
    upstreamSide?.destroy();
    upstream.close();
  }
});

test('passThrough: the destination may end its side first; the client still sends and is heard', async () => {
  const heard: string[] = [];
  const upstream = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.end('bye');
    let got = '';
    socket.on('data', (chunk: Buffer) => {
      got += chunk.toString();
    });
    socket.on('end', () => heard.push(got));
  });
  const port = await listen(upstream);
  const r = await relayed({ host: '127.0.0.1', port }, 1000);
  try {
    let received = '';
    r.peer.on('data', (chunk: Buffer) => {
      received += chunk.toString();
    });
    await once(r.peer, 'end');
    assert.equal(received, 'bye');
    r.peer.end('still here');
    await waitFor(() => heard.length === 1, { message: 'the destination heard the client' });
    assert.deepEqual(heard, ['still here']);
    assert.deepEqual(r.errors, []);
  } finally {
    await r.close();
    upstream.close();
  }
});

test('passThrough: the connect timeout ends at the connect: an idle connection outlives it', async () => {
  const upstream = net.createServer((socket) => socket.pipe(socket));
  const port = await listen(upstream);
  const r = await relayed({ host: '127.0.0.1', port }, 50);
  try {
    let received = '';
    r.peer.on('data', (chunk: Buffer) => {
      received += chunk.toString();
    });
    r.peer.write('one');
    await waitFor(() => received === 'one', { message: 'the first echo' });
    // Eight times the connect timeout without a byte either way: a timer still armed would have fired.
    await new Promise((resolve) => setTimeout(resolve, 400));
    r.peer.write('two');
    await waitFor(() => received === 'onetwo', { message: 'the second echo' });
    assert.deepEqual(r.errors, []);
  } finally {
    await r.close();
    upstream.close();
  }
});

test('passThrough: a destination that never completes the handshake times out with its address', async () => {
  // A listening socket in a child whose only thread is blocked: it never accepts, so once its small backlog is full
  // the kernel drops further SYNs and a connect waits.
  const child = spawn(process.execPath, [
    '-e',
    `const s = require('node:net').createServer();
     s.listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
       process.stdout.write(String(s.address().port) + '\\n', () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0));
     });`,
  ]);
  const fillers: net.Socket[] = [];
  try {
    const [line] = (await once(child.stdout, 'data')) as [Buffer];
    const port = Number(line.toString().trim());
    // Fill the accept queue: the first connections complete their handshake and wait there.
    for (let i = 0; i < 8; i++) {
      const filler = net.connect({ host: '127.0.0.1', port });
      filler.on('error', () => {});
      fillers.push(filler);
    }
    await waitFor(() => fillers.filter((s) => !s.connecting).length >= 1, { message: 'the backlog filled' });
    const r = await relayed({ host: '127.0.0.1', port }, 200);
    try {
      await waitFor(() => r.errors.length === 1, { message: 'the connect timed out' });
      assert.deepEqual(r.errors, [`connect to 127.0.0.1:${port} timed out`]);
      await waitFor(() => r.peer.destroyed || r.peer.readableEnded, { message: 'the client was closed' });
    } finally {
      await r.close();
    }
  } finally {
    for (const filler of fillers) filler.destroy();
    child.kill('SIGKILL');
  }
});
