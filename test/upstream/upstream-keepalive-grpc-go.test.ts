// The upstream PING keepalive against a grpc-go server with its default keepalive enforcement (a PING within 5 min of
// the last one is a strike unless the server wrote HEADERS or DATA since; the third strike is GOAWAY(ENHANCE_YOUR_CALM,
// "too_many_pings")): a call that stays quiet for 9 s through the agent, which pings in each silence it may, succeeds.
// A keepalive that pinged every second of that silence would have had the connection closed by the fourth PING.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type GoServerHandle, grpcGoUnavailable, startGoServer } from '../../lab/grpc-go-peers.ts';
import { META, makeEchoClient, unary } from '../../lab/grpc-peers.ts';
import { type AgentProcess, startAgent } from '../support/agent-process.ts';

const AUTHORITY = 'quiet.default.svc.cluster.local:50063';

test('a call quiet for 9 s to a grpc-go server through the agent: the keepalive stays under its ping-strike limit, the call succeeds', { skip: grpcGoUnavailable(), timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'meshlite-keepalive-go-'));
  let server: GoServerHandle | null = null;
  let agent: AgentProcess | null = null;
  const client = { close: () => {} };
  try {
    server = await startGoServer({ id: 'go' });
    const file = join(dir, 'services.yaml');
    const lines = ['services:', '  - name: quiet', '    namespace: default', '    port: 50063', '    endpoints:', `      - address: 127.0.0.1:${server.port}`, ''];
    writeFileSync(file, lines.join('\n'));
    agent = await startAgent(['--discovery', 'static', '--static-file', file]);
    const echo = makeEchoClient(agent.listen, { 'grpc.default_authority': AUTHORITY });
    client.close = () => echo.close();
    // A first call, so the connection has carried a response before the quiet one (as a busy one would have).
    await unary(echo, Buffer.from('warm'), { timeoutMs: 5_000 });
    const started = performance.now();
    const result = await unary(echo, Buffer.from('quiet'), { timeoutMs: 30_000, metadata: { [META.delayMs]: '9000' } });
    t.diagnostic(`the quiet call took ${Math.round(performance.now() - started)} ms`);
    assert.equal(result.headers.get(META.servedBy)[0], 'go');
    assert.equal(result.message.toString(), 'quiet');
    const closed = agent.logs.filter((l) => l.msg === 'upstream connection closed');
    assert.deepEqual(closed, [], 'no upstream connection was closed (no GOAWAY for too many pings, no keepalive loss)');
    assert.equal((await server.stats()).connections, 1, 'one connection served both calls');
  } finally {
    client.close();
    await agent?.stop();
    await server?.stop({ graceful: false });
    rmSync(dir, { recursive: true, force: true });
  }
});
