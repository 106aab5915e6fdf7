// The persister: a change is written one interval later, changes during a write make one more, failures retry later.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PersistedView } from '../../agent/discovery/persisted-view.ts';
import { StateFileWriteError } from '../../agent/discovery/state-file.ts';
import { ViewPersister } from '../../agent/discovery/view-persister.ts';
import { createLogger } from '../../agent/telemetry/logger.ts';
import { FakeTimers } from '../support/fake-timers.ts';

function harness() {
  const timers = new FakeTimers();
  const events: string[] = [];
  let version = 0;
  let pending: Array<{ resolve: (bytes: number) => void; reject: (error: Error) => void }> = [];
  const persister = new ViewPersister({
    write: (view) => {
      events.push(`write v${view.savedAtMs} at ${timers.now()}`);
      return new Promise((resolve, reject) => pending.push({ resolve, reject }));
    },
    snapshot: (): PersistedView => ({ savedAtMs: version, nodeName: 'node-a', services: [], pods: [] }),
    timers,
    logger: createLogger('silent'),
    countError: (code) => events.push(`error ${code}`),
    intervalMs: 1000,
    retryMs: 10_000,
  });
  const finishWrite = async (error?: Error): Promise<void> => {
    const [write] = pending;
    pending = pending.slice(1);
    if (error === undefined) write.resolve(10);
    else write.reject(error);
    // Let the persister's await resume.
    await new Promise((resolve) => setImmediate(resolve));
  };
  const change = (v: number): void => {
    version = v;
    persister.changed();
  };
  return { timers, events, persister, finishWrite, change };
}

describe('ViewPersister', () => {
  it('writes a burst of changes once, one interval after the first, with the view as it is then', async () => {
    const h = harness();
    h.change(1);
    h.timers.advance(400);
    h.change(2);
    h.change(3);
    assert.deepEqual(h.persister.state, { state: 'waiting' });
    h.timers.advance(599);
    assert.deepEqual(h.events, []);
    h.timers.advance(1);
    assert.deepEqual(h.events, ['write v3 at 1000']);
    assert.deepEqual(h.persister.state, { state: 'writing', again: false });
    await h.finishWrite();
    assert.deepEqual(h.persister.state, { state: 'idle' });
    assert.equal(h.timers.activeCount, 0);
  });

  it('a change during a write is written one interval after that write ends', async () => {
    const h = harness();
    h.change(1);
    h.timers.advance(1000);
    h.change(2);
    assert.deepEqual(h.persister.state, { state: 'writing', again: true });
    h.timers.advance(5000);
    await h.finishWrite();
    assert.deepEqual(h.persister.state, { state: 'waiting' });
    h.timers.advance(1000);
    assert.deepEqual(h.events, ['write v1 at 1000', 'write v2 at 7000']);
    await h.finishWrite();
    assert.deepEqual(h.persister.state, { state: 'idle' });
  });

  it('a failed write counts its code and is tried again after the retry time; the agent goes on', async () => {
    const h = harness();
    h.change(1);
    h.timers.advance(1000);
    await h.finishWrite(new StateFileWriteError('ML_STATE_FILE_WRITE_FAILED', 'ENOSPC: no space left on device'));
    assert.deepEqual(h.persister.state, { state: 'waiting' });
    h.change(2);
    h.timers.advance(9999);
    assert.deepEqual(h.events, ['write v1 at 1000', 'error ML_STATE_FILE_WRITE_FAILED']);
    h.timers.advance(1);
    assert.deepEqual(h.events, ['write v1 at 1000', 'error ML_STATE_FILE_WRITE_FAILED', 'write v2 at 11000']);
    await h.finishWrite(new Error('something else'));
    assert.deepEqual(h.events.slice(3), ['error ML_STATE_FILE_WRITE_FAILED']);
  });

  it('stop() clears the timer; a write under way finishes and nothing follows', async () => {
    const h = harness();
    h.change(1);
    h.persister.stop();
    assert.equal(h.timers.activeCount, 0);
    h.change(2);
    h.timers.advance(5000);
    assert.deepEqual(h.events, []);

    const g = harness();
    g.change(1);
    g.timers.advance(1000);
    g.change(2);
    g.persister.stop();
    await g.finishWrite();
    g.timers.advance(5000);
    assert.deepEqual(g.events, ['write v1 at 1000']);
    assert.deepEqual(g.persister.state, { state: 'stopped' });
  });
});
