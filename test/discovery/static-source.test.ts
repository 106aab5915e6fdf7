// StaticSource on real temp files and the real fs.watch: edits apply (within 1 s, timed on a fake clock), bad edits keep the last good state.

import assert from 'node:assert/strict';
import { mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { StaticConfig } from '../../agent/discovery/static-file.ts';
import { type FileAccess, nodeFileAccess, StaticSource } from '../../agent/discovery/static-source.ts';
import type { ErrorCode } from '../../agent/vocabulary/errors.ts';
import { createLogger } from '../../agent/telemetry/logger.ts';
import { waitFor } from '../../lab/wait-for.ts';
import { type Clock, realClock } from '../../agent/vocabulary/clock.ts';
import { FakeTimers } from '../support/fake-timers.ts';

function fileWith(addresses: string[]): string {
  return `services:\n  - name: greeter\n    port: 50051\n    endpoints:\n${addresses.map((a) => `      - address: ${a}\n`).join('')}`;
}

function addressesOf(config: StaticConfig): string[] {
  return config.services[0].endpoints.map((e) => e.address);
}

/** Timers or watchers alive in the process: what stop() must give back. */
function live(kind: 'Timeout' | 'FSEventWrap'): number {
  return process.getActiveResourcesInfo().filter((k) => k === kind).length;
}

function liveHandles(): number {
  return live('Timeout') + live('FSEventWrap');
}

interface Harness {
  source: StaticSource;
  snapshots: StaticConfig[];
  /** The source's clock when each snapshot was handed on. */
  snapshotTimes: number[];
  logs: Record<string, unknown>[];
  reloads: string[];
  errors: ErrorCode[];
}

describe('StaticSource', () => {
  let dir: string;
  let path: string;
  let harness: Harness | null = null;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshlite-static-source-'));
    path = join(dir, 'mesh.yaml');
  });

  afterEach(async () => {
    harness?.source.stop();
    harness = null;
    await rm(dir, { recursive: true, force: true });
  });

  function start(files: FileAccess = nodeFileAccess, timers: Clock = realClock): Harness {
    const logs: Record<string, unknown>[] = [];
    const h: Harness = {
      snapshots: [],
      snapshotTimes: [],
      logs,
      reloads: [],
      errors: [],
      source: null as unknown as StaticSource,
    };
    h.source = new StaticSource({
      path,
      files,
      timers,
      logger: createLogger('info', { write: (line: string) => void logs.push(JSON.parse(line)) }),
      metrics: { countStaticReload: (result) => void h.reloads.push(result), countError: (code) => void h.errors.push(code) },
      onSnapshot: (config) => {
        h.snapshots.push(config);
        h.snapshotTimes.push(timers.now());
      },
    });
    harness = h;
    return h;
  }

  /**
   * Waits for snapshot number `count`, with a deadline generous enough for a loaded machine: how soon it comes is
   * checked on a fake clock (the tests "... within 1 s" below), not against the wall clock.
   */
  async function nextSnapshot(h: Harness, count: number): Promise<void> {
    await waitFor(() => h.snapshots.length >= count, { timeoutMs: 10_000, intervalMs: 5, message: `snapshot ${count}` });
  }

  /** No change event ever arrives: only the poll can see an edit. */
  const deafFiles: FileAccess = { ...nodeFileAccess, watchDirectory: () => ({ close() {} }) };

  it('load() delivers the first snapshot and returns it', async () => {
    await writeFile(path, fileWith(['10.0.0.1:50051']));
    const h = start();
    const config = await h.source.load();
    assert.deepEqual(h.snapshots, [config]);
    assert.deepEqual(addressesOf(config), ['10.0.0.1:50051']);
    assert.equal(h.source.state.state, 'watching');
    assert.ok(h.logs.some((l) => l.msg === 'static discovery file loaded' && l.component === 'static-source'));
  });

  it('load() of a malformed file throws naming the field, and starts nothing', async () => {
    await writeFile(path, fileWith(['10.0.0.1']));
    const before = liveHandles();
    const h = start();
    await assert.rejects(h.source.load(), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'ML_STATIC_FILE_INVALID');
      assert.match(error.message, /mesh\.yaml:5:9: services\[0\]\.endpoints\[0\]\.address: "10\.0\.0\.1" is not IP:port/);
      return true;
    });
    assert.deepEqual(h.snapshots, []);
    assert.equal(liveHandles(), before);
  });

  it('load() of a missing file throws a StaticFileError', async () => {
    const h = start();
    await assert.rejects(h.source.load(), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'ML_STATIC_FILE_INVALID');
      assert.match(error.message, /mesh\.yaml: cannot read the static discovery file: ENOENT/);
      return true;
    });
  });

  it('applies an in-place edit', async () => {
    await writeFile(path, fileWith(['10.0.0.1:50051']));
    const h = start();
    await h.source.load();
    await writeFile(path, fileWith(['10.0.0.1:50051', '10.0.0.2:50051']));
    await nextSnapshot(h, 2);
    assert.deepEqual(addressesOf(h.snapshots[1]), ['10.0.0.1:50051', '10.0.0.2:50051']);
    assert.deepEqual(h.reloads, ['success']);
  });

  it("applies an editor's rename-on-save", async () => {
    await writeFile(path, fileWith(['10.0.0.1:50051']));
    const h = start();
    await h.source.load();
    const temporary = join(dir, '.mesh.yaml.swp');
    await writeFile(temporary, fileWith(['10.0.0.3:50051']));
    await rename(temporary, path);
    await nextSnapshot(h, 2);
    assert.deepEqual(addressesOf(h.snapshots[1]), ['10.0.0.3:50051']);
    // A second save through a new inode is seen too (a watch on the file itself would miss it).
    await writeFile(temporary, fileWith(['10.0.0.4:50051']));
    await rename(temporary, path);
    await nextSnapshot(h, 3);
    assert.deepEqual(addressesOf(h.snapshots[2]), ['10.0.0.4:50051']);
  });

  it('applies an edit by polling when no change event arrives', async () => {
    await writeFile(path, fileWith(['10.0.0.1:50051']));
    let watched = false;
    const h = start({
      ...nodeFileAccess,
      watchDirectory: () => {
        watched = true;
        return { close() {} };
      },
    });
    await h.source.load();
    assert.ok(watched);
    await writeFile(path, fileWith(['10.0.0.5:50051']));
    await nextSnapshot(h, 2);
    assert.deepEqual(addressesOf(h.snapshots[1]), ['10.0.0.5:50051']);
  });

  it('by polling, an edit applies within 1 s: the poll comes 500 ms after the last, the reload 50 ms after the change', async () => {
    await writeFile(path, fileWith(['10.0.0.1:50051']));
    const clock = new FakeTimers();
    const h = start(deafFiles, clock);
    await h.source.load();
    assert.equal(clock.activeCount, 1, 'the poll timer');
    await writeFile(path, fileWith(['10.0.0.1:50051', '10.0.0.9:50051']));
    clock.advance(499);
    assert.equal(clock.activeCount, 1, 'no poll before 500 ms');
    clock.advance(1);
    // The poll stats the file (real I/O), sees the change, and sets the settle timer beside the next poll.
    await waitFor(() => clock.activeCount === 2, { timeoutMs: 10_000, intervalMs: 5, message: 'the poll saw the change' });
    clock.advance(49);
    assert.equal(h.snapshots.length, 1, 'not before the burst settles');
    clock.advance(1);
    await nextSnapshot(h, 2);
    assert.deepEqual(h.snapshotTimes, [0, 550]);
    assert.deepEqual(addressesOf(h.snapshots[1]), ['10.0.0.1:50051', '10.0.0.9:50051']);
    assert.deepEqual(h.reloads, ['success']);
  });

  it('with a change event, an edit applies 50 ms after it (the burst settles), without waiting for a poll', async () => {
    await writeFile(path, fileWith(['10.0.0.1:50051']));
    const clock = new FakeTimers();
    const h = start(nodeFileAccess, clock);
    await h.source.load();
    await writeFile(path, fileWith(['10.0.0.4:50051']));
    await waitFor(() => clock.activeCount === 2, { timeoutMs: 10_000, intervalMs: 5, message: 'the change event set the settle timer' });
    clock.advance(49);
    assert.equal(h.snapshots.length, 1, 'not before the burst settles');
    clock.advance(1);
    await nextSnapshot(h, 2);
    assert.deepEqual(h.snapshotTimes, [0, 50]);
    assert.deepEqual(addressesOf(h.snapshots[1]), ['10.0.0.4:50051']);
  });

  it('keeps the last good state on a malformed edit, logs the code, and applies the fix', async () => {
    await writeFile(path, fileWith(['10.0.0.1:50051']));
    const h = start();
    await h.source.load();
    await writeFile(path, fileWith(['10.0.0.1:50051']).replace('port: 50051', 'port: fifty'));
    await waitFor(() => h.reloads.length === 1, { timeoutMs: 3000, message: 'the bad edit is handled' });
    assert.deepEqual(h.reloads, ['failure']);
    assert.deepEqual(h.errors, ['ML_STATIC_FILE_RELOAD_FAILED']);
    assert.equal(h.snapshots.length, 1, 'no snapshot for the bad edit');
    const line = h.logs.find((l) => l.code === 'ML_STATIC_FILE_RELOAD_FAILED');
    assert.ok(line, 'an error line with the code');
    assert.equal(line.level, 'error');
    assert.match(String((line.err as { message?: string } | undefined)?.message), /mesh\.yaml:3:5: services\[0\]\.port: "fifty" is not a port/);

    await writeFile(path, fileWith(['10.0.0.1:50051', '10.0.0.6:50051']));
    await nextSnapshot(h, 2);
    assert.deepEqual(addressesOf(h.snapshots[1]), ['10.0.0.1:50051', '10.0.0.6:50051']);
    assert.deepEqual(h.reloads, ['failure', 'success']);
  });

  it('keeps the last good state while the file is gone, complaining once, and applies it when it is back', async () => {
    await writeFile(path, fileWith(['10.0.0.1:50051']));
    const h = start();
    await h.source.load();
    await unlink(path);
    await waitFor(() => h.reloads.length === 1, { timeoutMs: 3000, message: 'the removal is noticed' });
    // Give the watcher and two more polls the chance to complain again: they must not.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    assert.deepEqual(h.reloads, ['failure']);
    assert.equal(h.logs.filter((l) => l.code === 'ML_STATIC_FILE_RELOAD_FAILED').length, 1);
    assert.match(String((h.logs.find((l) => l.code)?.err as { message?: string } | undefined)?.message), /cannot read the static discovery file: ENOENT/);
    await writeFile(path, fileWith(['10.0.0.7:50051']));
    await nextSnapshot(h, 2);
    assert.deepEqual(addressesOf(h.snapshots[1]), ['10.0.0.7:50051']);
  });

  it('does not hand on an unchanged file again (a touch, an event from another file)', async () => {
    const text = fileWith(['10.0.0.1:50051']);
    await writeFile(path, text);
    const h = start();
    await h.source.load();
    await writeFile(path, text);
    await writeFile(join(dir, 'other.yaml'), 'not: ours');
    await new Promise((resolve) => setTimeout(resolve, 700));
    assert.equal(h.snapshots.length, 1);
    assert.deepEqual(h.reloads, []);
  });

  it('stop() closes the watcher and every timer, and ignores later edits', async () => {
    await writeFile(path, fileWith(['10.0.0.1:50051']));
    const timersBefore = live('Timeout');
    const watchersBefore = live('FSEventWrap');
    const h = start();
    await h.source.load();
    assert.equal(live('Timeout'), timersBefore + 1, 'the poll timer while running');
    assert.equal(live('FSEventWrap'), watchersBefore + 1, 'the directory watcher while running');
    h.source.stop();
    assert.equal(h.source.state.state, 'stopped');
    assert.equal(live('Timeout'), timersBefore, 'timers are cleared at once, not left to fire');
    // An fs.watch handle is released on the next turn of the event loop.
    await waitFor(() => live('FSEventWrap') === watchersBefore, { timeoutMs: 5000, message: 'the watcher is closed' });
    await writeFile(path, fileWith(['10.0.0.8:50051']));
    await new Promise((resolve) => setTimeout(resolve, 700));
    assert.equal(h.snapshots.length, 1);
    h.source.stop(); // idempotent
  });
});
