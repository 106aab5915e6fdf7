// Serving from the state file at start: when the file is used, when it is not, and how the first sync replaces it.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LastKnownView, STATE_FILE_FALLBACK_AFTER_MS } from '../../agent/discovery/last-known-view.ts';
import type { PodRecord } from '../../agent/discovery/kube-objects.ts';
import type { PodRef } from '../../agent/discovery/opt-in-index.ts';
import type { PersistedView } from '../../agent/discovery/persisted-view.ts';
import type { StateFileRead } from '../../agent/discovery/state-file.ts';
import { SyncGate } from '../../agent/discovery/sync-gate.ts';
import { EndpointRegistry } from '../../agent/registry/endpoint-registry.ts';
import { createLogger } from '../../agent/telemetry/logger.ts';
import { FakeTimers } from '../support/fake-timers.ts';
import { endpointSpec, serviceSpec } from '../support/service-records.ts';

const SAVED_AT = Date.parse('2026-05-04T03:02:01.000Z');
const OLD = serviceSpec('old', [endpointSpec('10.244.1.5')]);
const KEPT = serviceSpec('kept', [endpointSpec('10.244.1.6')]);
const FILE_VIEW: PersistedView = {
  savedAtMs: SAVED_AT,
  nodeName: 'node-a',
  services: [OLD, KEPT],
  pods: [{ namespace: 'default', name: 'client-1', ips: ['10.244.0.7'] }],
};

function harness(read: StateFileRead) {
  const timers = new FakeTimers();
  const registry = new EndpointRegistry();
  const events: string[] = [];
  const optIn = {
    replacePods: (records: readonly PodRecord[]) => events.push(`pods ${records.map((r) => `${r.metadata.name}:${r.inject}`).join(',')}`),
    applyPod: (r: PodRecord) => events.push(`apply ${r.metadata.name}`),
    deletePod: (r: PodRecord) => events.push(`delete ${r.metadata.name}`),
    applyNamespace: () => events.push('namespace'),
    deleteNamespace: () => events.push('namespace gone'),
  };
  const gate = new SyncGate({ registry, optIn, logger: createLogger('silent') });
  const writes: PersistedView[] = [];
  const enrolled = new Map<string, PodRef>();
  const view = new LastKnownView({
    stateFile: {
      path: '/run/meshlite/state.json',
      read: async () => {
        events.push(`read at ${timers.now()}`);
        return read;
      },
      write: async (v) => {
        writes.push(v);
        return 1;
      },
    },
    gate,
    registry,
    optIn,
    index: { enrolled, subscribe: () => () => {} },
    nodeName: 'node-a',
    timers,
    wallClockMs: () => SAVED_AT + 60_000,
    logger: createLogger('silent'),
    countError: (code) => events.push(`error ${code}`),
  });
  let sync = (): void => {};
  let fail = (): void => {};
  const synced = new Promise<void>((resolve) => {
    sync = resolve;
  });
  const failing = new Promise<void>((resolve) => {
    fail = resolve;
  });
  let started = false;
  const start = view.start({ startedAt: 0, synced, failing }).then(() => {
    started = true;
  });
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  return { timers, registry, gate, view, events, writes, sync, fail, start, settle, isStarted: () => started };
}

describe('LastKnownView', () => {
  it('a sync within the bound: the file is not read, the staged view is applied, persisting starts', async () => {
    const h = harness({ state: 'loaded', view: FILE_VIEW });
    h.gate.upsert(KEPT);
    h.timers.advance(STATE_FILE_FALLBACK_AFTER_MS - 1);
    assert.deepEqual(h.registry.keys(), [], 'held until the sync');
    h.sync();
    await h.start;
    assert.deepEqual(h.events, ['pods ']);
    assert.deepEqual(h.registry.keys(), [KEPT.key]);
    assert.deepEqual(h.view.state, { state: 'synced' });
    h.timers.advance(1000);
    await h.settle();
    assert.equal(h.writes.length, 1);
    assert.deepEqual(h.writes[0], { savedAtMs: SAVED_AT + 60_000, nodeName: 'node-a', services: [KEPT], pods: [] });
  });

  it('no sync within the bound: the file is loaded and the start goes on; the sync then replaces it whole', async () => {
    const h = harness({ state: 'loaded', view: FILE_VIEW });
    h.timers.advance(STATE_FILE_FALLBACK_AFTER_MS - 1);
    await h.settle();
    assert.equal(h.isStarted(), false);
    h.timers.advance(1);
    await h.start;
    assert.deepEqual(h.events, [`read at ${STATE_FILE_FALLBACK_AFTER_MS}`, 'pods client-1:enabled', 'error ML_SERVING_FROM_STATE_FILE']);
    assert.deepEqual(h.registry.keys(), [OLD.key, KEPT.key]);
    assert.deepEqual(h.view.status({ state: 'degraded' }), {
      state: 'persisted',
      savedAt: '2026-05-04T03:02:01.000Z',
      services: 2,
      pods: 1,
      stateFile: '/run/meshlite/state.json',
      api: { state: 'degraded' },
    });
    // Informer events while serving from the file are staged: a half-listed view never reaches the registry.
    h.gate.upsert(serviceSpec('kept', []));
    assert.deepEqual(h.registry.get(KEPT.key)?.endpoints.length, 1);
    h.gate.upsert(KEPT);
    h.sync();
    await h.settle();
    assert.deepEqual(h.registry.keys(), [KEPT.key], 'the service gone meanwhile went');
    assert.deepEqual(h.events.slice(3), ['pods ']);
    assert.deepEqual(h.view.status({ state: 'synced' }), { state: 'synced' });
    assert.equal(h.writes.length, 0);
    h.timers.advance(1000);
    await h.settle();
    assert.equal(h.writes.length, 1);
  });

  it('a failed LIST ends the wait at once', async () => {
    const h = harness({ state: 'loaded', view: FILE_VIEW });
    h.fail();
    await h.start;
    assert.deepEqual(h.events, ['read at 0', 'pods client-1:enabled', 'error ML_SERVING_FROM_STATE_FILE']);
    assert.equal(h.view.state.state, 'persisted');
  });

  it('a missing file: waits for the sync, nothing logged as an error', async () => {
    const h = harness({ state: 'missing' });
    h.fail();
    await h.settle();
    assert.equal(h.isStarted(), false);
    h.sync();
    await h.start;
    assert.deepEqual(h.events, ['read at 0', 'pods ']);
  });

  it('a rejected file: its code is counted, nothing of it is loaded, the start waits for the sync', async () => {
    const h = harness({ state: 'rejected', rejection: { code: 'ML_STATE_FILE_VERSION', reason: 'version 2' } });
    h.timers.advance(STATE_FILE_FALLBACK_AFTER_MS);
    await h.settle();
    assert.equal(h.isStarted(), false);
    assert.deepEqual(h.registry.keys(), []);
    h.sync();
    await h.start;
    assert.deepEqual(h.events, [`read at ${STATE_FILE_FALLBACK_AFTER_MS}`, 'error ML_STATE_FILE_VERSION', 'pods ']);
  });

  it('stop() ends persisting', async () => {
    const h = harness({ state: 'missing' });
    h.sync();
    await h.start;
    h.view.stop();
    h.timers.advance(5000);
    await h.settle();
    assert.equal(h.writes.length, 0);
    assert.equal(h.timers.activeCount, 0);
  });
});
