// The enrollment socket's path: a stale socket replaced, a live agent's taken over without a gap, anything else refused, and release only of our own.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { CniReply } from '../../agent/enrollment/cni-protocol.ts';
import { EnrollmentServer, type EnrollmentHandler } from '../../agent/enrollment/enrollment-server.ts';
import { probeSocket } from '../../agent/enrollment/socket-path.ts';
import { createLogger } from '../../agent/telemetry/logger.ts';
import { waitFor } from '../../lab/wait-for.ts';
import { call } from './unix-http.ts';

/** A handler whose DEL names the agent that answered, so a test sees which of two agents got a request. */
function agent(name: string, hold?: Promise<void>, received: string[] = []): EnrollmentHandler {
  return {
    add: async (): Promise<CniReply> => {
      received.push('add');
      await hold;
      return { status: 200, body: { enrolled: false, reason: `answered by ${name}` } };
    },
    del: () => ({ status: 200, body: { released: [name] } }),
    check: async () => ({ status: 200, body: { enrolled: false, expected: false, reason: name } }),
  };
}

function server(path: string, handler: EnrollmentHandler): EnrollmentServer {
  return new EnrollmentServer({ path, enrollment: handler, logger: createLogger('silent'), countError: () => {}, probeTimeoutMs: 500 });
}

async function answeredBy(path: string): Promise<unknown> {
  return (await call(path, '/v1/cni/del', { containerId: 'c', namespace: 'app', name: 'a' })).body;
}

/** A socket file nothing listens on, as an agent killed with SIGKILL leaves it (the kernel does not unlink it). */
function leaveStaleSocket(path: string): void {
  const script = `require('node:net').createServer().listen(${JSON.stringify(path)}, () => process.exit(0))`;
  execFileSync(process.execPath, ['-e', script]);
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

const ADD = { containerId: 'c', netns: '/n', ifName: 'eth0', namespace: 'app', name: 'a', ips: ['10.0.0.1'] };

describe('the enrollment socket’s path', () => {
  let directory: string;
  let path: string;
  const started: EnrollmentServer[] = [];

  beforeEach(async () => {
    directory = await mkdtemp(join(tmpdir(), 'ml-enr-'));
    path = join(directory, 'cni.sock');
  });

  afterEach(async () => {
    for (const each of started.splice(0)) await each.stop();
    await rm(directory, { recursive: true, force: true });
  });

  it('replaces a socket nothing answers on, and private names left by an agent that died mid-start', async () => {
    leaveStaleSocket(path);
    const leftover = `${path}.deadbeef.new`;
    leaveStaleSocket(leftover);
    assert.equal(await probeSocket(path, 500), 'stale');
    const fresh = server(path, agent('fresh'));
    started.push(fresh);
    const state = await fresh.start();
    assert.equal(state.state === 'listening' && state.previous, 'stale');
    assert.deepEqual(await answeredBy(path), { released: ['fresh'] });
    assert.deepEqual(await readdir(directory), ['cni.sock'], 'the leftover is gone, and no private name stays behind');
    assert.equal((await stat(path)).mode & 0o777, 0o660);
  });

  it('an upgrade: the new agent takes the path over from the live one, which finishes what it has and leaves the path alone', async () => {
    let release = (): void => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const received: string[] = [];
    const old = server(path, agent('old', held, received));
    started.push(old);
    await old.start();
    assert.equal(await probeSocket(path, 500), 'live');
    // Kept alive, as a client that would reuse its connection: stop() must not wait for it to let go.
    const keepAlive = new Agent({ keepAlive: true });
    const inFlight = call(path, '/v1/cni/add', ADD, 'POST', keepAlive);
    await waitFor(() => received.length === 1, { message: 'the old agent is handling an ADD' });
    const next = server(path, agent('new'));
    started.push(next);
    const state = await next.start();
    assert.equal(state.state === 'listening' && state.previous, 'live');
    assert.deepEqual(await answeredBy(path), { released: ['new'] }, 'new connections reach the new agent at once');
    const stopped = old.stop();
    release();
    assert.deepEqual((await inFlight).body, { enrolled: false, reason: 'answered by old' }, 'the old agent answers what it had');
    const stopping = performance.now();
    await stopped;
    // Not held until the server's keep-alive timeout (5 s) closes the client's idle connection.
    assert.ok(performance.now() - stopping < 2000, 'stop() returned once the answer was sent');
    keepAlive.destroy();
    assert.ok(await exists(path), 'the old agent did not unlink the new one’s socket');
    assert.deepEqual(await answeredBy(path), { released: ['new'] });
    await next.stop();
    assert.equal(await exists(path), false, 'the last agent removes its own socket');
  });

  it('refuses a path that holds something other than a socket, and leaves it as it was', async () => {
    await writeFile(path, 'not a socket');
    const refused = server(path, agent('x'));
    await assert.rejects(refused.start(), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'ML_LISTEN_FAILED');
      assert.equal(error.message, `cannot listen on the CNI enrollment socket ${path}: ${path} exists and is not a socket; remove it if it is not needed`);
      return true;
    });
    assert.equal((await stat(path)).isFile(), true);
    assert.deepEqual(await readdir(directory), ['cni.sock']);
  });

  it('leaves an existing directory’s mode as it is', async () => {
    const parent = join(directory, 'shared');
    await mkdir(parent, { mode: 0o755 });
    const inside = server(join(parent, 'cni.sock'), agent('x'));
    started.push(inside);
    await inside.start();
    assert.equal((await stat(parent)).mode & 0o777, 0o755);
  });

  it('probes: nothing, stale, live', async () => {
    assert.equal(await probeSocket(path, 500), 'none');
    leaveStaleSocket(path);
    assert.equal(await probeSocket(path, 500), 'stale');
    const live = server(path, agent('live'));
    started.push(live);
    await live.start();
    assert.equal(await probeSocket(path, 500), 'live');
  });
});
