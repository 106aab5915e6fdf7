// The agent client over a unix socket: answers, missing and refusing sockets, timeouts, cut and oversized replies.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createAgentClient } from '../../cni/agent-client.ts';
import { startFakeAgent } from './support/fake-agent.ts';

const dir = mkdtempSync(join(tmpdir(), 'ml-cni-client-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('an answer carries the status and the body; the request is JSON with a content length', async () => {
  const socketPath = join(dir, 'a.sock');
  const agent = await startFakeAgent(socketPath, () => ({ status: 201, body: { enrolled: true } }));
  try {
    const exchange = await createAgentClient({ socketPath, timeoutMs: 2000 }).request('/v1/cni/add', { a: [1, 'b'] });
    assert.deepEqual(exchange, { kind: 'answered', status: 201, body: '{"enrolled":true}' });
    assert.deepEqual(agent.requests, [{ method: 'POST', path: '/v1/cni/add', contentType: 'application/json', body: { a: [1, 'b'] } }]);
  } finally {
    await agent.close();
  }
});

test('without a body the request is a GET with no content type', async () => {
  const socketPath = join(dir, 'g.sock');
  const agent = await startFakeAgent(socketPath, () => ({ status: 200, body: { ready: true } }));
  try {
    const exchange = await createAgentClient({ socketPath, timeoutMs: 2000 }).request('/v1/cni/status');
    assert.deepEqual(exchange, { kind: 'answered', status: 200, body: '{"ready":true}' });
    assert.deepEqual(agent.requests, [{ method: 'GET', path: '/v1/cni/status', contentType: undefined, body: '' }]);
  } finally {
    await agent.close();
  }
});

test('no socket file is unreachable with ENOENT', async () => {
  const socketPath = join(dir, 'missing.sock');
  assert.deepEqual(await createAgentClient({ socketPath, timeoutMs: 2000 }).request('/x', {}), { kind: 'unreachable', reason: `ENOENT ${socketPath}` });
});

test('a listener that never answers times out after timeoutMs', async () => {
  const socketPath = join(dir, 'silent.sock');
  const accepted: net.Socket[] = [];
  const server = net.createServer((socket) => accepted.push(socket));
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  try {
    const started = Date.now();
    const exchange = await createAgentClient({ socketPath, timeoutMs: 200 }).request('/x', {});
    assert.deepEqual(exchange, { kind: 'timeout', afterMs: 200 });
    assert.ok(Date.now() - started < 1500);
  } finally {
    for (const socket of accepted) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
});

test('a reply cut in the middle is unreachable; an oversized one is answered with an empty body', async () => {
  const socketPath = join(dir, 'odd.sock');
  const server = http.createServer((req, res) => {
    if (req.url === '/cut') {
      res.writeHead(200, { 'content-length': '100' });
      res.write('{"enr');
      setTimeout(() => res.socket?.destroy(), 20);
      return;
    }
    res.writeHead(200);
    res.end('x'.repeat(200 * 1024));
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  try {
    const client = createAgentClient({ socketPath, timeoutMs: 2000 });
    const cut = await client.request('/cut', {});
    assert.equal(cut.kind, 'unreachable');
    assert.deepEqual(await client.request('/big', {}), { kind: 'answered', status: 200, body: '' });
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});
