// Interception's Prometheus metrics as a scrape shows them, fed by a manager through a pass that repairs something.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import type { ErrorCode } from '../../agent/vocabulary/errors.ts';
import { InterceptMetrics } from '../../agent/intercept/intercept-metrics.ts';
import { createHarness, settle } from './manager-harness.ts';

/** The sample lines of `names`, without HELP/TYPE and without zero histogram buckets. */
async function samples(registry: Registry, prefix: string): Promise<string[]> {
  const text = await registry.metrics();
  return text.split('\n').filter((line) => line.startsWith(prefix) && !line.includes('_bucket'));
}

describe('InterceptMetrics', () => {
  it('starts idle and reports state, passes, repairs, members and errors', async () => {
    const registry = new Registry();
    const errors: ErrorCode[] = [];
    const metrics = new InterceptMetrics(registry, (code) => errors.push(code));
    assert.deepEqual(await samples(registry, 'meshlite_intercept_state'), [
      'meshlite_intercept_state{state="idle"} 1',
      'meshlite_intercept_state{state="installing"} 0',
      'meshlite_intercept_state{state="ready"} 0',
      'meshlite_intercept_state{state="applying"} 0',
      'meshlite_intercept_state{state="failed"} 0',
      'meshlite_intercept_state{state="stopped"} 0',
    ]);
    // Fail closed: fail open's refresh would put the deleted member back before the reconcile sees it missing.
    const { manager, kernel, timers } = createHarness({ metrics, failMode: 'closed' });
    const start = manager.start();
    await settle();
    await start;
    manager.setPods(['10.1.0.5', '10.1.0.6']);
    timers.advance(5);
    await settle();
    kernel.ipsetRestore('del meshlite-pods-v4 10.1.0.5\n');
    timers.advance(10_005);
    await settle();
    assert.deepEqual(await samples(registry, 'meshlite_intercept_state{state="ready"}'), ['meshlite_intercept_state{state="ready"} 1']);
    assert.deepEqual(await samples(registry, 'meshlite_intercept_passes_total'), [
      'meshlite_intercept_passes_total{pass="install",result="success"} 1',
      'meshlite_intercept_passes_total{pass="sets",result="success"} 1',
      'meshlite_intercept_passes_total{pass="reconcile",result="success"} 1',
    ]);
    assert.deepEqual(await samples(registry, 'meshlite_intercept_pass_seconds_count'), [
      'meshlite_intercept_pass_seconds_count{pass="install"} 1',
      'meshlite_intercept_pass_seconds_count{pass="sets"} 1',
      'meshlite_intercept_pass_seconds_count{pass="reconcile"} 1',
    ]);
    assert.deepEqual(await samples(registry, 'meshlite_intercept_repairs_total'), ['meshlite_intercept_repairs_total{kind="set_member"} 1']);
    assert.deepEqual(await samples(registry, 'meshlite_intercept_set_members'), [
      'meshlite_intercept_set_members{set="meshlite-pods-v4"} 2',
      'meshlite_intercept_set_members{set="meshlite-dsts-v4"} 0',
    ]);
    assert.deepEqual(errors, ['ML_INTERCEPT_REPAIRED']);
    await manager.stop();
  });
});
