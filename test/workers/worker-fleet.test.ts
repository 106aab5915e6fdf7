// The main thread's side of --workers: GOAWAY waits for every thread's listener to close, the drain counts every
// thread's connections, and a thread that dies is an error the agent is told of (with a scripted worker thread).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../agent/config.ts';
import type { DrainableListener } from '../../agent/drain/agent-shutdown.ts';
import { EndpointRegistry } from '../../agent/registry/endpoint-registry.ts';
import { createLogger } from '../../agent/telemetry/logger.ts';
import { createMetrics } from '../../agent/telemetry/metrics.ts';
import type { ErrorCode } from '../../agent/vocabulary/errors.ts';
import { WorkerFleet } from '../../agent/workers/worker-fleet.ts';
import { waitFor } from '../../lab/wait-for.ts';

const SCRIPTED = new URL('./support/scripted-data-plane-worker.ts', import.meta.url);

function fleetWithOneThread() {
  const result = parseConfig(['--discovery', 'static', '--log-level', 'silent'], {});
  assert.equal(result.action, 'run');
  const calls: string[] = [];
  const errors: ErrorCode[] = [];
  const failures: string[] = [];
  let openChanges = 0;
  const lines: string[] = [];
  const mainListener: DrainableListener = {
    stopAccepting: async () => {
      calls.push('main stop-accepting');
    },
    finishConnections: () => calls.push('main finish-connections'),
    openConnections: 1,
    destroyAll: () => calls.push('main destroy-all'),
  };
  const fleet = new WorkerFleet({
    threads: 1,
    config: result.config,
    registry: new EndpointRegistry(),
    optIn: { subscribe: () => () => {} },
    mainListener,
    mainMetrics: createMetrics({ processMetrics: false }),
    mainAccepted: () => 0,
    logger: createLogger('silent'),
    countError: (code) => errors.push(code),
    onFailure: (reason) => failures.push(reason),
    onOpenChanged: () => openChanges++,
    recentLine: (line) => lines.push(line),
    workerEntry: SCRIPTED,
  });
  return { fleet, calls, errors, failures, lines, openChanges: () => openChanges, mainListener };
}

describe('WorkerFleet', () => {
  it('sends GOAWAY nowhere before every thread stopped accepting, and counts every thread in the drain', async () => {
    const { fleet, calls, failures, lines, openChanges } = fleetWithOneThread();
    await fleet.listen([{ host: '127.0.0.1', port: 18432 }]);
    // The thread's log lines reach the main thread's recent events (the dashboard), in order, before its answer.
    assert.deepEqual(lines, ['{"level":"warn","msg":"scripted","code":"ML_ENDPOINT_EJECTED"}']);
    assert.deepEqual(fleet.describe(), [{ worker: 1, state: 'listening' }]);
    await fleet.stopAccepting(0);
    fleet.finishConnections();
    assert.deepEqual(calls, ['main stop-accepting'], 'no GOAWAY while a thread may still accept');
    // Not said yet: a thread's connections count as open.
    assert.equal(fleet.openConnections, 2);
    await waitFor(() => calls.includes('main finish-connections'), { timeoutMs: 5_000, message: 'GOAWAY once the thread stopped accepting' });
    await waitFor(() => fleet.threads[0].state.state === 'draining' && fleet.threads[0].openConnections === 0, { timeoutMs: 5_000, message: 'the thread drained' });
    // The main thread's one connection is all that is left; every change was reported to the drain.
    assert.equal(fleet.openConnections, 1);
    assert.ok(openChanges() >= 3, `open-connection changes reported: ${openChanges()}`);
    await fleet.stop();
    assert.deepEqual(fleet.describe(), [{ worker: 1, state: 'stopped' }]);
    assert.deepEqual(failures, []);
  });

  it('reports a thread that dies: ML_WORKER_EXITED, the agent told, the scrape failed rather than short', async () => {
    const { fleet, errors, failures } = fleetWithOneThread();
    await fleet.listen([{ host: '127.0.0.1', port: 18432 }]);
    await assert.rejects(fleet.metrics.metrics(), /worker 1 failed: it exited with code 3 unasked/);
    assert.deepEqual(failures, ['worker 1: it exited with code 3 unasked']);
    assert.deepEqual(errors, ['ML_WORKER_EXITED', 'ML_WORKER_SCRAPE_FAILED']);
    assert.deepEqual(fleet.describe(), [{ worker: 1, state: 'failed' }]);
    // A failed thread holds no connection and accepts nothing: the drain that follows need not wait for it.
    assert.equal(fleet.threads[0].openConnections, 0);
    await fleet.stopAccepting(0);
    await fleet.stop();
  });
});
