// The supervised informer's LIST/WATCH cycle on a scripted API and a fake clock: the exact requests and states for an
// ERROR event, a 410 ERROR event, clean closes that deliver nothing, and an idle watch.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KubeApi, WatchHandlers } from '../../agent/discovery/kube-api.ts';
import type { ServiceRecord } from '../../agent/discovery/kube-objects.ts';
import { projectService } from '../../agent/discovery/kube-projection.ts';
import { type InformerState, SupervisedInformer } from '../../agent/discovery/supervised-informer.ts';
import { createLogger } from '../../agent/telemetry/logger.ts';
import { FakeTimers } from '../support/fake-timers.ts';
import { grpcServiceObject } from '../support/kube-api-objects.ts';

const service = (name: string, resourceVersion: string): unknown => {
  const object = grpcServiceObject(name) as { metadata: Record<string, unknown> };
  return { ...object, metadata: { ...object.metadata, resourceVersion } };
};

/** An API whose LIST answers `listed` and whose watches the test drives; `requests` logs `list`, `watch RV`. */
function scriptedApi(listed: () => { items: unknown[]; resourceVersion: string }) {
  const requests: string[] = [];
  let current: WatchHandlers | null = null;
  const api: KubeApi = {
    async list(_path, _query, project) {
      requests.push('list');
      const { items, resourceVersion } = listed();
      return { items: items.map(project), resourceVersion };
    },
    get: async () => null,
    post: async () => null,
    async watch(_path, query, handlers) {
      requests.push(`watch ${query.resourceVersion}`);
      current = handlers;
      return {
        abort: () => {
          requests.push('abort');
          current = null;
        },
      };
    },
  };
  return {
    api,
    requests,
    get watch(): WatchHandlers {
      assert.ok(current !== null, 'a watch is open');
      return current;
    },
  };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

function informerOn(api: KubeApi, timers: FakeTimers) {
  const events: string[] = [];
  const states: string[] = [];
  const informer = new SupervisedInformer<ServiceRecord>({
    spec: { resource: 'services', path: '/api/v1/services', project: projectService },
    api,
    handlers: {
      apply: (record) => events.push(`apply ${record.metadata.name}`),
      delete: (record) => events.push(`delete ${record.metadata.name}`),
      stateChanged: (state: InformerState) => states.push(state.state === 'failed' ? `failed(${state.code}: ${state.reason})` : state.state),
    },
    timers,
    random: () => 0.5,
    logger: createLogger('silent'),
    backoff: { initialMs: 1000, maxMs: 8000 },
    listTimeoutMs: 5000,
    watchIdleTimeoutMs: 10_000,
  });
  return { informer, events, states };
}

test('an ERROR event other than 410 fails the watch (backoff), then it resumes from the last resourceVersion', async () => {
  const timers = new FakeTimers();
  const script = scriptedApi(() => ({ items: [service('a', '5')], resourceVersion: '10' }));
  const { informer, events, states } = informerOn(script.api, timers);
  informer.start();
  await settle();
  script.watch.event('ADDED', service('b', '11'));
  script.watch.event('ERROR', { kind: 'Status', code: 500, message: 'etcd is unhappy' });
  await settle();
  assert.deepEqual(states, ['syncing', 'watching', 'failed(ML_KUBE_WATCH_FAILED: WATCH /api/v1/services: ERROR event 500: etcd is unhappy)']);
  assert.deepEqual(script.requests, ['list', 'watch 10', 'abort']);
  timers.advance(749);
  await settle();
  assert.equal(script.requests.length, 3, 'not before the backoff (750 ms with this random)');
  timers.advance(1);
  await settle();
  assert.deepEqual(script.requests, ['list', 'watch 10', 'abort', 'watch 11']);
  assert.deepEqual(events, ['apply a', 'apply b']);
  assert.equal(states.at(-1), 'watching');
  informer.stop();
});

test('a 410 ERROR event relists at once: deletes for what vanished, applies for what changed, the same version skipped', async () => {
  const timers = new FakeTimers();
  let listing = { items: [service('a', '5'), service('b', '6')], resourceVersion: '10' };
  const script = scriptedApi(() => listing);
  const { informer, events, states } = informerOn(script.api, timers);
  informer.start();
  await settle();
  listing = { items: [service('b', '6'), service('c', '20')], resourceVersion: '21' };
  script.watch.event('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' });
  await settle();
  assert.deepEqual(script.requests, ['list', 'watch 10', 'abort', 'list', 'watch 21']);
  assert.deepEqual(events, ['apply a', 'apply b', 'delete a', 'apply c']);
  assert.deepEqual(states, ['syncing', 'watching', 'syncing', 'watching']);
  informer.stop();
});

test('clean closes: resumed at once after events; a second close in a row without any waits its backoff', async () => {
  const timers = new FakeTimers();
  const script = scriptedApi(() => ({ items: [], resourceVersion: '10' }));
  const { informer, states } = informerOn(script.api, timers);
  informer.start();
  await settle();
  script.watch.event('BOOKMARK', { kind: 'Service', apiVersion: 'v1', metadata: { resourceVersion: '15' } });
  script.watch.end(null);
  await settle();
  script.watch.end(null);
  await settle();
  assert.deepEqual(script.requests, ['list', 'watch 10', 'watch 15', 'watch 15'], 'the first empty close resumes at once');
  script.watch.end(null);
  await settle();
  assert.equal(script.requests.length, 4, 'the second empty close in a row waits');
  assert.equal(informer.state.state, 'syncing');
  timers.advance(749);
  await settle();
  assert.equal(script.requests.length, 4, 'not before the backoff (750 ms with this random)');
  timers.advance(1);
  await settle();
  assert.deepEqual(script.requests.slice(4), ['watch 15']);
  assert.ok(!states.some((state) => state.startsWith('failed')), states.join(', '));
  informer.stop();
});

test('a watch silent past the idle timeout is abandoned and reopened at once; bytes keep it open', async () => {
  const timers = new FakeTimers();
  const script = scriptedApi(() => ({ items: [], resourceVersion: '10' }));
  const { informer, states } = informerOn(script.api, timers);
  informer.start();
  await settle();
  timers.advance(6000);
  script.watch.activity();
  timers.advance(6000);
  await settle();
  assert.deepEqual(script.requests, ['list', 'watch 10'], 'activity 6 s ago: still open at 12 s');
  timers.advance(4000);
  await settle();
  assert.deepEqual(script.requests, ['list', 'watch 10', 'abort', 'watch 10']);
  assert.deepEqual(states, ['syncing', 'watching', 'syncing', 'watching']);
  informer.stop();
  assert.equal(timers.activeCount, 0, 'stop() leaves no timer');
});
