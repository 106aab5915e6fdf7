// The agent's log as an operator reads it: every line names its component, every warning and error its code, errors
// are in one field (`err`), and no line is about a single request (at the default level).

import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startGrpcServer, makeEchoClient, unary } from '../../lab/grpc-peers.ts';
import { waitFor } from '../../lab/wait-for.ts';
import { startAgent } from '../support/agent-process.ts';

test('start, requests (one to an unknown service), a reload, a bad edit and a drain: every line has a component, every warning and error a code, errors are in err, none is per request', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshlite-log-lines-'));
  const backend = await startGrpcServer({ id: 'b1' });
  const file = join(dir, 'services.yaml');
  const write = (text: string): void => {
    writeFileSync(`${file}.tmp`, text);
    renameSync(`${file}.tmp`, file);
  };
  const services = (port: number) => `services:\n  - name: greeter\n    namespace: default\n    port: 50051\n    endpoints:\n      - address: 127.0.0.1:${port}\n`;
  write(services(backend.port));
  const agent = await startAgent(['--discovery', 'static', '--static-file', file]);
  const client = makeEchoClient(agent.listen, { 'grpc.default_authority': 'greeter.default.svc.cluster.local:50051' });
  const stranger = makeEchoClient(agent.listen, { 'grpc.default_authority': 'nowhere.default.svc.cluster.local:1' });
  try {
    for (let i = 0; i < 20; i++) await unary(client, Buffer.from('x'));
    await unary(stranger, Buffer.from('x')).catch(() => {});
    write(`${services(backend.port)}      - address: 127.0.0.1:1\n`);
    await waitFor(() => agent.logs.some((line) => line.msg === 'static discovery file reloaded'), { timeoutMs: 10_000, message: 'the reload' });
    write('services: [ {');
    await waitFor(() => agent.logs.some((line) => line.code === 'ML_STATIC_FILE_RELOAD_FAILED'), { timeoutMs: 10_000, message: 'the bad edit' });
  } finally {
    client.close();
    stranger.close();
    assert.equal(await agent.stop(), 0);
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  }
  assert.ok(agent.logs.some((line) => line.msg === 'meshlite stopped'), 'the whole log, to the end');
  for (const line of agent.logs) {
    assert.equal(typeof line.component, 'string', `a line without a component: ${JSON.stringify(line)}`);
    if (['warn', 'error', 'fatal'].includes(String(line.level))) assert.match(String(line.code), /^ML_[A-Z_]+$/, `a ${line.level} without a code: ${JSON.stringify(line)}`);
    // One field for errors: `err`, an object with the message (and type, code and stack for an Error).
    assert.ok(!('error' in line) && !('reason' in line && String(line.level) !== 'info'), `an error outside err: ${JSON.stringify(line)}`);
    if ('err' in line && line.err !== null) assert.equal(typeof (line.err as { message?: unknown }).message, 'string', `err without a message: ${JSON.stringify(line)}`);
  }
  const badEdit = agent.logs.find((line) => line.code === 'ML_STATIC_FILE_RELOAD_FAILED');
  assert.match(String((badEdit?.err as { message?: string } | undefined)?.message), /services\.yaml/, 'the bad edit says what is wrong, in err');
  assert.ok(agent.logs.length < 25, `${agent.logs.length} lines for 21 requests: none per request`);
});
