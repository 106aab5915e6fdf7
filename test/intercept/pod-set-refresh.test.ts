// Fail open's refresh: its script, what it covers, its cadence on the fake clock, its failures and retries; fail closed has none.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { membersToRefresh, refreshScript } from '../../agent/intercept/pod-set-refresher.ts';
import { createHarness, FILTER_V4, type Harness, NAT_V4, settle, started, warnings } from './manager-harness.ts';

const REFRESH = { command: 'ipset restore', input: 'add meshlite-pods-v4 10.1.0.5 timeout 2 -exist\nadd meshlite-pods-v4 10.1.0.6 timeout 2 -exist\n' };

/** Started at 0 ms with two pods applied at 5 ms; everything that took forgotten. */
async function withTwoPods(options: Parameters<typeof createHarness>[0] = {}): Promise<Harness> {
  const harness = await started(createHarness(options));
  harness.manager.setPods(['10.1.0.5', '10.1.0.6']);
  harness.timers.advance(5);
  await settle();
  harness.kernel.take();
  harness.lines.splice(0);
  harness.observed.splice(0);
  return harness;
}

/** Moves the fake clock to `ms` and lets what it started finish. */
async function at(harness: Harness, ms: number): Promise<void> {
  harness.timers.advance(ms - harness.timers.now());
  await settle();
}

describe('refreshScript and membersToRefresh', () => {
  it('write one add with the timeout and -exist per member, both families in one script, and nothing without members', () => {
    const members = new Map([
      ['meshlite-pods-v4', new Set(['10.1.0.5'])],
      ['meshlite-pods-v6', new Set(['fd00::5', 'fd00::6'])],
    ]);
    assert.equal(
      refreshScript(members, 2),
      'add meshlite-pods-v4 10.1.0.5 timeout 2 -exist\nadd meshlite-pods-v6 fd00::5 timeout 2 -exist\nadd meshlite-pods-v6 fd00::6 timeout 2 -exist\n',
    );
    assert.equal(refreshScript(new Map([['meshlite-pods-v4', new Set()]]), 2), null);
  });

  it('cover the pods that the last pass put in the kernel and that are still wanted, never a destination', () => {
    const applied = new Map([
      ['meshlite-pods-v4', new Set(['10.1.0.5', '10.1.0.6'])],
      ['meshlite-dsts-v4', new Set(['10.96.0.10,tcp:8080'])],
    ]);
    const desired = new Map([
      ['meshlite-pods-v4', new Set(['10.1.0.6', '10.1.0.7'])],
      ['meshlite-dsts-v4', new Set(['10.96.0.10,tcp:8080'])],
    ]);
    assert.deepEqual(membersToRefresh(['meshlite-pods-v4'], applied, desired), new Map([['meshlite-pods-v4', new Set(['10.1.0.6'])]]));
    assert.deepEqual(membersToRefresh(['meshlite-pods-v4'], null, desired), new Map([['meshlite-pods-v4', new Set()]]));
  });
});

describe('InterceptionManager, fail open', () => {
  it('adds pods with a 2 s timeout and refreshes every one of them every half second, one ipset restore each time', async () => {
    const harness = await withTwoPods();
    assert.deepEqual(harness.kernel.timeouts('meshlite-pods-v4'), ['10.1.0.5 2', '10.1.0.6 2']);
    await at(harness, 499);
    assert.deepEqual(harness.kernel.take(), [], 'nothing before the first half second');
    await at(harness, 500);
    assert.deepEqual(harness.kernel.take(), [REFRESH]);
    await at(harness, 999);
    assert.deepEqual(harness.kernel.take(), []);
    await at(harness, 1000);
    await at(harness, 1500);
    assert.deepEqual(harness.kernel.take(), [REFRESH, REFRESH]);
    assert.deepEqual(harness.observed, [], 'a refresh is no pass');
    assert.deepEqual(warnings(harness.lines), []);
  });

  it('puts back within half a second a member someone deleted (the reconcile then has nothing to repair)', async () => {
    const harness = await withTwoPods();
    harness.kernel.ipsetRestore('del meshlite-pods-v4 10.1.0.5\n');
    await at(harness, 500);
    assert.deepEqual(harness.kernel.members('meshlite-pods-v4'), ['10.1.0.6', '10.1.0.5']);
  });

  it('logs a failing refresh once with its code, counts every failure, retries each tick, and says when it works again', async () => {
    const harness = await withTwoPods();
    let failuresLeft = 3;
    harness.kernel.failWhen = (call) => {
      if (call.command !== 'ipset restore' || failuresLeft === 0) return null;
      failuresLeft--;
      return { code: 1, stdout: '', stderr: 'ipset v7.17: Error in line 1: Kernel error received: Operation not permitted\n' };
    };
    for (const ms of [500, 1000, 1500, 2000]) await at(harness, ms);
    assert.deepEqual(harness.kernel.take(), [REFRESH, REFRESH, REFRESH, REFRESH], 'retried on every tick, nothing else run');
    assert.deepEqual(harness.observed, ['error ML_INTERCEPT_REFRESH_FAILED', 'error ML_INTERCEPT_REFRESH_FAILED', 'error ML_INTERCEPT_REFRESH_FAILED']);
    assert.deepEqual(warnings(harness.lines), ["warn ML_INTERCEPT_REFRESH_FAILED refreshing the pod sets' timeouts failed; retrying every tick"]);
    const again = harness.lines.find((line) => line.msg === 'pod set timeouts refreshed again after failures');
    assert.deepEqual({ level: again?.level, failures: again?.failures }, { level: 'info', failures: 3 });
    assert.equal(harness.manager.state.state, 'ready', 'a refresh failure is not a failed pass');
  });

  it('refreshes nothing before the first pass succeeded, and nothing after stop; the members stay', async () => {
    const harness = createHarness();
    harness.kernel.installed = new Set();
    harness.manager.setPods(['10.1.0.5']);
    const start = harness.manager.start();
    await settle();
    await at(harness, 150);
    assert.ok(!harness.kernel.take().some((call) => call.command === 'ipset restore'), 'the install failed: no set, nothing to refresh');
    harness.kernel.installed = new Set(['nft', 'legacy']);
    await at(harness, 1000);
    await start;
    harness.kernel.take();
    await at(harness, 1500);
    assert.deepEqual(harness.kernel.take(), [{ command: 'ipset restore', input: 'add meshlite-pods-v4 10.1.0.5 timeout 2 -exist\n' }]);
    await harness.manager.stop();
    await at(harness, 10_000);
    assert.deepEqual(harness.kernel.take(), []);
    assert.equal(harness.timers.activeCount, 0);
    assert.deepEqual(harness.kernel.members('meshlite-pods-v4'), ['10.1.0.5']);
  });

  it('stopRefreshing (a drain starts): no refresh from then on, while passes still apply changes', async () => {
    const harness = createHarness();
    harness.manager.setPods(['10.1.0.5']);
    const start = harness.manager.start();
    await settle();
    await start;
    harness.kernel.take();
    await at(harness, 500);
    assert.deepEqual(harness.kernel.take(), [{ command: 'ipset restore', input: 'add meshlite-pods-v4 10.1.0.5 timeout 2 -exist\n' }]);
    harness.manager.stopRefreshing();
    await at(harness, 5000);
    assert.deepEqual(harness.kernel.take(), [], 'no refresh after the drain started');
    harness.manager.setPods(['10.1.0.5', '10.1.0.6']);
    await at(harness, 5005);
    assert.deepEqual(harness.kernel.take(), [{ command: 'ipset restore', input: 'add meshlite-pods-v4 10.1.0.6 timeout 2 -exist\n' }]);
    assert.equal(harness.manager.state.state, 'ready');
    await harness.manager.stop();
  });

  it('rebuilds an older agent\'s pods set without timeout support at start, swapping it in under the rules that use it', async () => {
    const harness = createHarness({}, (kernel) => {
      kernel.ipsetRestore('create meshlite-pods-v4 hash:ip family inet maxelem 65536\nadd meshlite-pods-v4 10.1.0.5\ncreate meshlite-dsts-v4 hash:ip,port family inet maxelem 1048576\n');
      kernel.iptables('nft', 4, NAT_V4 + FILTER_V4);
    });
    harness.manager.setPods(['10.1.0.5', '10.1.0.6']);
    const start = harness.manager.start();
    await settle();
    await start;
    assert.deepEqual(harness.kernel.take().find((call) => call.command === 'ipset restore'), {
      command: 'ipset restore',
      input:
        'create meshlite-pods-v4-new hash:ip family inet maxelem 65536 timeout 3 -exist\nflush meshlite-pods-v4-new\n' +
        'add meshlite-pods-v4-new 10.1.0.5 timeout 2 -exist\nadd meshlite-pods-v4-new 10.1.0.6 timeout 2 -exist\n' +
        'swap meshlite-pods-v4-new meshlite-pods-v4\ndestroy meshlite-pods-v4-new\n',
    });
    assert.deepEqual(harness.kernel.setNames(), ['meshlite-pods-v4', 'meshlite-dsts-v4']);
    assert.deepEqual(harness.kernel.timeouts('meshlite-pods-v4'), ['10.1.0.5 2', '10.1.0.6 2']);
    assert.match(harness.kernel.save('nft/4'), /--match-set meshlite-pods-v4 src/);
    const applied = harness.lines.find((line) => line.msg === 'interception applied');
    assert.deepEqual(applied?.sets, { 'meshlite-pods-v4': { created: false, added: 1, removed: 0, migrated: true } });
  });
});

describe('InterceptionManager, fail closed', () => {
  it('adds pods permanent, makes a fail-open agent\'s expiring members permanent, and never refreshes', async () => {
    const harness = createHarness({ failMode: 'closed' }, (kernel) => {
      kernel.ipsetRestore('create meshlite-pods-v4 hash:ip family inet maxelem 65536 timeout 3\nadd meshlite-pods-v4 10.1.0.5 timeout 3\ncreate meshlite-dsts-v4 hash:ip,port family inet maxelem 1048576\n');
    });
    harness.manager.setPods(['10.1.0.5']);
    await started(harness);
    assert.deepEqual(harness.kernel.timeouts('meshlite-pods-v4'), ['10.1.0.5 0']);
    harness.manager.setPods(['10.1.0.5', '10.1.0.6']);
    await at(harness, 5);
    assert.deepEqual(harness.kernel.take(), [{ command: 'ipset restore', input: 'add meshlite-pods-v4 10.1.0.6 timeout 0 -exist\n' }]);
    await at(harness, 9_999);
    assert.deepEqual(harness.kernel.take(), [], 'no refresh, ever');
    assert.deepEqual(harness.kernel.timeouts('meshlite-pods-v4'), ['10.1.0.5 0', '10.1.0.6 0']);
  });
});
