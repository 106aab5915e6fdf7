// The probe socket's thread: /healthz while the main thread is busy, 503 once the main thread has been stuck past
// the stall limit, /readyz as the main thread last said, a bad socket path refused.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { HEARTBEAT_MS, ProbeThread } from '../../agent/admin/probe-thread.ts';
import type { Readiness } from '../../agent/admin/admin-server.ts';
import { waitFor } from '../../lab/wait-for.ts';
import { getOverUnixSocket as get } from '../support/unix-socket-get.ts';

const dir = mkdtempSync(join(tmpdir(), 'meshlite-probe-thread-'));
after(() => rmSync(dir, { recursive: true, force: true }));


/** Blocks this (the main) thread for `ms`, as a stuck event loop would. */
function blockMainThread(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

describe('ProbeThread', () => {
  it('answers /healthz and /readyz (starting) at once, then what the main thread says; refresh() is seen before the next heartbeat', async () => {
    const socket = join(dir, 'a', 'probes.sock');
    const probes = new ProbeThread(socket);
    try {
      await probes.listening;
      assert.deepEqual(await get(socket, '/healthz'), { status: 200, body: 'ok\n' });
      const starting = await get(socket, '/readyz');
      assert.equal(starting.status, 503);
      assert.deepEqual(JSON.parse(starting.body), { ready: false, reason: 'starting: the agent is loading', phase: 'discovery' });

      let answer: Readiness = { ready: false, reason: 'interception rules not applied yet', phase: 'interception' };
      probes.follow(() => answer);
      await waitFor(async () => (await get(socket, '/readyz')).body.includes('interception'), { timeoutMs: 5_000, message: 'the answer followed' });
      answer = { ready: true, discovery: { state: 'synced' } };
      probes.refresh();
      // Well before a heartbeat could carry it: refresh() sends at once.
      const ready = await get(socket, '/readyz');
      assert.equal(ready.status, 200);
      assert.deepEqual(JSON.parse(ready.body), { ready: true, discovery: { state: 'synced' } });
      assert.equal((await get(socket, '/other')).status, 404);
    } finally {
      await probes.close();
    }
  });

  it('/healthz fails once the main thread has been stuck past the stall limit, and answers again when it turns', async () => {
    const socket = join(dir, 'b', 'probes.sock');
    const probes = new ProbeThread(socket, { stallLimitMs: 1_500 });
    try {
      await probes.listening;
      assert.equal((await get(socket, '/healthz')).status, 200);
      // A short pause is no stall: at most a heartbeat interval before it, the pause, curl's own time, all well under 1.5 s.
      blockMainThread(HEARTBEAT_MS);
      const brief = spawnSync('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--unix-socket', socket, 'http://agent/healthz'], { encoding: 'utf8' });
      assert.equal(brief.stdout, '200');
      // Stuck: the heartbeat stops; the thread still answers, 503 (curl runs while this thread is blocked in spawnSync).
      blockMainThread(2_500);
      const stuck = spawnSync('curl', ['-sS', '-w', ' %{http_code}', '--unix-socket', socket, 'http://agent/healthz'], { encoding: 'utf8' });
      assert.match(stuck.stdout, /^main thread unresponsive for \d+ ms\n 503$/);
      await waitFor(async () => (await get(socket, '/healthz')).status === 200, { timeoutMs: 5_000, message: 'healthy again' });
    } finally {
      await probes.close();
    }
  });

  it('a socket path that cannot be bound rejects listening with the reason', async () => {
    const blocker = join(dir, 'file');
    writeFileSync(blocker, '');
    const probes = new ProbeThread(join(blocker, 'probes.sock'));
    try {
      await assert.rejects(probes.listening, /EEXIST|ENOTDIR/);
    } finally {
      await probes.close();
    }
  });
});
