// The periodic reconcile (repairs of what someone else removed, each logged and counted), retries with backoff, backends.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_INTERCEPT_BACKOFF } from '../../agent/intercept/interception-manager.ts';
import { backoffDelay } from '../../agent/vocabulary/backoff.ts';
import { FakeNetfilter } from './fake-netfilter.ts';
import { createHarness, type Harness, KUBE_PROXY_V4, settle, started, warnings } from './manager-harness.ts';

const RECONCILE_READS = ['ipset list -n', 'ipset save meshlite-pods-v4', 'ipset save meshlite-dsts-v4', 'iptables-nft-save'];

/**
 * Starts with one pod and one destination applied, then forgets what that took. Fail closed, so that no refresh runs
 * between the reconciles these tests count command by command (fail open's refresh has its own tests).
 */
async function running(options: Parameters<typeof createHarness>[0] = {}): Promise<Harness> {
  const harness = await started(createHarness({ failMode: 'closed', ...options }));
  harness.manager.setPods(['10.1.0.5']);
  harness.manager.setDestinations([{ ip: '10.96.0.10', port: 8080 }]);
  harness.timers.advance(5);
  await settle();
  harness.kernel.take();
  harness.lines.splice(0);
  harness.observed.splice(0);
  return harness;
}

/** Lets the reconcile timer fire and its pass run. */
async function reconcile(harness: Harness): Promise<void> {
  harness.timers.advance(10_000);
  harness.timers.advance(5);
  await settle();
}

describe('InterceptionManager reconcile', () => {
  it('reads the kernel every interval and changes nothing when all is in place', async () => {
    const harness = await running();
    await reconcile(harness);
    assert.deepEqual(harness.kernel.take().map((call) => call.command), RECONCILE_READS);
    await reconcile(harness);
    assert.deepEqual(harness.kernel.take().map((call) => call.command), RECONCILE_READS);
    assert.deepEqual(warnings(harness.lines), []);
    assert.deepEqual(harness.observed, ['state applying', 'pass reconcile ok', 'state ready', 'state applying', 'pass reconcile ok', 'state ready']);
  });

  it('puts back a deleted jump, first again, with a warning that says what', async () => {
    const harness = await running();
    harness.kernel.iptables('nft', 4, '*nat\n-D PREROUTING -m comment --comment meshlite -j MESHLITE-PREROUTING\nCOMMIT\n');
    await reconcile(harness);
    assert.deepEqual(harness.kernel.take().slice(4), [
      { command: 'iptables-nft-restore --noflush', input: '*nat\n-I PREROUTING 1 -m comment --comment meshlite -j MESHLITE-PREROUTING\nCOMMIT\n' },
    ]);
    assert.deepEqual(warnings(harness.lines), ['warn ML_INTERCEPT_REPAIRED restored interception that someone else removed or changed']);
    assert.deepEqual(harness.lines.find((line) => line.code === 'ML_INTERCEPT_REPAIRED')?.repaired, ['v4 nat PREROUTING: jump missing']);
    assert.deepEqual(harness.observed, ['state applying', 'error ML_INTERCEPT_REPAIRED', 'repaired jump 1', 'pass reconcile ok', 'state ready']);
    assert.match(harness.kernel.save('nft/4'), /-A PREROUTING -m comment --comment meshlite -j MESHLITE-PREROUTING\n-A PREROUTING -m comment --comment "kubernetes service portals"/);
  });

  it('moves its jump back ahead of a kube-proxy that re-inserted its own first, and removes a duplicate', async () => {
    const harness = await running();
    harness.kernel.iptables('nft', 4, '*nat\n-D PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n-I PREROUTING 1 -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\nCOMMIT\n');
    harness.kernel.iptables('nft', 4, '*filter\n-A INPUT -m comment --comment meshlite -j MESHLITE-INPUT\nCOMMIT\n');
    await reconcile(harness);
    assert.deepEqual(harness.kernel.take().slice(4), [
      {
        command: 'iptables-nft-restore --noflush',
        input: '*nat\n-D PREROUTING -m comment --comment meshlite -j MESHLITE-PREROUTING\n-I PREROUTING 1 -m comment --comment meshlite -j MESHLITE-PREROUTING\nCOMMIT\n' +
          '*filter\n-D INPUT -m comment --comment meshlite -j MESHLITE-INPUT\n-D INPUT -m comment --comment meshlite -j MESHLITE-INPUT\n-I INPUT 1 -m comment --comment meshlite -j MESHLITE-INPUT\nCOMMIT\n',
      },
    ]);
    assert.deepEqual(harness.lines.find((line) => line.code === 'ML_INTERCEPT_REPAIRED')?.repaired, [
      "v4 nat PREROUTING: jump after kube-proxy's",
      'v4 filter INPUT: jump present 2 times',
    ]);
    await reconcile(harness);
    assert.deepEqual(harness.kernel.take().map((call) => call.command), RECONCILE_READS, 'repaired for good');
  });

  it('rewrites a flushed chain whole, in one commit', async () => {
    const harness = await running();
    harness.kernel.iptables('nft', 4, '*nat\n-F MESHLITE-PREROUTING\nCOMMIT\n');
    await reconcile(harness);
    assert.deepEqual(harness.kernel.take().slice(4), [
      {
        command: 'iptables-nft-restore --noflush',
        input: '*nat\n:MESHLITE-PREROUTING - [0:0]\n-A MESHLITE-PREROUTING -p tcp -m set --match-set meshlite-pods-v4 src -m set --match-set meshlite-dsts-v4 dst,dst -j DNAT --to-destination 10.0.0.1:15001\nCOMMIT\n',
      },
    ]);
    assert.deepEqual(harness.lines.find((line) => line.code === 'ML_INTERCEPT_REPAIRED')?.repaired, ['v4 nat MESHLITE-PREROUTING: rules changed']);
    assert.ok(harness.observed.includes('repaired chain 1'));
  });

  it('puts back a deleted set member and removes one someone else added', async () => {
    const harness = await running();
    harness.kernel.ipsetRestore('del meshlite-pods-v4 10.1.0.5\nadd meshlite-pods-v4 10.1.0.66\n');
    await reconcile(harness);
    assert.deepEqual(harness.kernel.take(), [
      { command: 'ipset list -n' },
      { command: 'ipset save meshlite-pods-v4' },
      { command: 'ipset save meshlite-dsts-v4' },
      { command: 'ipset restore', input: 'del meshlite-pods-v4 10.1.0.66 -exist\nadd meshlite-pods-v4 10.1.0.5 timeout 0 -exist\n' },
      { command: 'iptables-nft-save' },
    ]);
    assert.deepEqual(harness.lines.find((line) => line.code === 'ML_INTERCEPT_REPAIRED')?.repaired, [
      'meshlite-pods-v4: 1 member missing (10.1.0.5)',
      'meshlite-pods-v4: 1 member added by someone else (10.1.0.66)',
    ]);
    assert.deepEqual(harness.observed.filter((entry) => entry.startsWith('repaired')), ['repaired set_member 1', 'repaired set_member 1']);
    assert.deepEqual(harness.kernel.members('meshlite-pods-v4'), ['10.1.0.5']);
  });

  it('a desired change found at reconcile is an update, not a repair', async () => {
    const harness = await running();
    harness.manager.setPods([]);
    harness.timers.advance(10_000);
    await settle();
    assert.deepEqual(warnings(harness.lines), []);
    assert.deepEqual(harness.kernel.members('meshlite-pods-v4'), []);
  });
});

describe('InterceptionManager failures', () => {
  it('retries a failing command with backoff, from failed, and counts and logs each failure with its code', async () => {
    const harness = await running();
    let failuresLeft = 2;
    harness.kernel.failWhen = (call) => {
      if (call.command !== 'ipset restore' || failuresLeft === 0) return null;
      failuresLeft--;
      return { code: 1, stdout: '', stderr: 'ipset v7.17: Error in line 1: Kernel error received: Operation not permitted\n' };
    };
    harness.manager.setPods(['10.1.0.5', '10.1.0.6']);
    const applied = harness.manager.whenApplied();
    harness.timers.advance(5);
    await settle();
    const first = backoffDelay(DEFAULT_INTERCEPT_BACKOFF, 1, () => 0.5);
    const second = backoffDelay(DEFAULT_INTERCEPT_BACKOFF, 2, () => 0.5);
    assert.deepEqual(harness.manager.state, {
      state: 'failed',
      code: 'ML_INTERCEPT_COMMAND_FAILED',
      reason: 'ipset restore exited 1: ipset v7.17: Error in line 1: Kernel error received: Operation not permitted',
      since: 10,
      failures: 1,
      retryInMs: first,
    });
    harness.timers.advance(first - 1);
    await settle();
    assert.equal(harness.manager.state.state, 'failed', 'no retry before the delay');
    harness.timers.advance(1);
    await settle();
    assert.deepEqual({ state: harness.manager.state.state, failures: (harness.manager.state as { failures: number }).failures }, { state: 'failed', failures: 2 });
    harness.timers.advance(second);
    await settle();
    await applied;
    assert.equal(harness.manager.state.state, 'ready');
    assert.deepEqual(harness.observed, [
      'state applying', 'pass sets failed', 'error ML_INTERCEPT_COMMAND_FAILED', 'state failed',
      'state applying', 'pass reconcile failed', 'error ML_INTERCEPT_COMMAND_FAILED', 'state failed',
      'state applying', 'pass reconcile ok', 'state ready',
    ]);
    assert.deepEqual(warnings(harness.lines), [
      'warn ML_INTERCEPT_COMMAND_FAILED applying interception failed; retrying',
      'warn ML_INTERCEPT_COMMAND_FAILED applying interception failed; retrying',
    ]);
    const recovered = harness.lines.find((line) => line.msg === 'interception applied again after failures');
    assert.deepEqual({ level: recovered?.level, failures: recovered?.failures }, { level: 'info', failures: 2 });
    assert.deepEqual(harness.kernel.members('meshlite-pods-v4'), ['10.1.0.5', '10.1.0.6']);
    // A retry is a full reconcile: the rules are read as well.
    assert.deepEqual(harness.kernel.calls.slice(-3).map((call) => call.command), ['ipset save meshlite-dsts-v4', 'ipset restore', 'iptables-nft-save']);
  });

  it('keeps retrying an install that fails, and start resolves once it succeeds', async () => {
    const harness = createHarness();
    harness.kernel.installed = new Set();
    const start = harness.manager.start();
    await settle();
    assert.deepEqual(harness.kernel.take().map((call) => call.command), ['iptables-nft-save', 'iptables-legacy-save']);
    assert.equal(harness.manager.state.state, 'failed');
    assert.match((harness.manager.state as { reason: string }).reason, /neither iptables backend can be read/);
    harness.kernel.installed = new Set(['legacy']);
    harness.timers.advance(backoffDelay(DEFAULT_INTERCEPT_BACKOFF, 1, () => 0.5));
    await settle();
    await start;
    assert.deepEqual(harness.manager.backend, { backend: 'legacy', reason: 'only-available', kubeLines: { nft: null, legacy: 0 } });
    assert.ok(harness.kernel.calls.some((call) => call.command === 'iptables-legacy-restore --noflush --wait=5'));
  });

  it('a set of the wrong type is reported with its code and blocks only its family', async () => {
    const harness = createHarness({ nodeIPs: { v4: '10.0.0.1', v6: 'fd00::1' } }, (kernel) => kernel.ipsetRestore('create meshlite-dsts-v4 hash:ip family inet\n'));
    const start = harness.manager.start();
    await settle();
    assert.equal(harness.manager.state.state, 'failed');
    assert.equal((harness.manager.state as { code: string }).code, 'ML_INTERCEPT_SET_CONFLICT');
    assert.match((harness.manager.state as { reason: string }).reason, /meshlite-dsts-v4: is hash:ip family inet, expected hash:ip,port family inet/);
    assert.deepEqual(harness.kernel.take().map((call) => call.command), [
      'iptables-nft-save',
      'iptables-legacy-save',
      'ipset list -n',
      'ipset save meshlite-dsts-v4',
      'ipset restore',
      'ip6tables-nft-save',
      'ip6tables-nft-restore --noflush',
    ]);
    assert.doesNotMatch(harness.kernel.save('nft/4'), /MESHLITE/, 'no rule naming a set of the wrong type');
    assert.match(harness.kernel.save('nft/6'), /-A MESHLITE-PREROUTING .*\[fd00::1\]:15001/, 'IPv6 is installed all the same');
    await harness.manager.stop();
    await assert.rejects(start, /interception stopped/);
  });
});

describe('InterceptionManager backends', () => {
  it('uses a forced backend without probing', async () => {
    const harness = createHarness({ backend: 'legacy' });
    const start = harness.manager.start();
    await settle();
    await start;
    assert.deepEqual(harness.kernel.take().map((call) => call.command), [
      'ipset list -n',
      'ipset restore',
      'iptables-legacy-save',
      'iptables-legacy-restore --noflush --wait=5',
      'ip6tables-legacy-save',
      'ipset list -n',
    ]);
    assert.equal(harness.kernel.save('legacy/4').includes('MESHLITE-PREROUTING'), true);
    const untouched = new FakeNetfilter();
    untouched.iptables('nft', 4, KUBE_PROXY_V4);
    assert.equal(harness.kernel.save('nft/4'), untouched.save('nft/4'), "kube-proxy's nft rules untouched");
  });

  it('follows kube-proxy into legacy when its chains show up there after an early start, and leaves nft clean', async () => {
    const harness = createHarness({}, (kernel) => {
      // A new node: kube-proxy has not written anything yet.
      kernel.iptables('nft', 4, '*nat\n-D PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n-D OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n-D POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING\n-F KUBE-SERVICES\n-X KUBE-SERVICES\n-X KUBE-POSTROUTING\nCOMMIT\n*filter\n-D INPUT -j KUBE-FIREWALL\n-F KUBE-FIREWALL\n-X KUBE-FIREWALL\nCOMMIT\n');
    });
    await started(harness);
    assert.deepEqual(harness.manager.backend?.reason, 'default');
    await reconcile(harness);
    assert.deepEqual(harness.kernel.take().map((call) => call.command).slice(0, 2), ['iptables-nft-save', 'iptables-legacy-save'], 'looks again');
    harness.kernel.iptables('legacy', 4, KUBE_PROXY_V4);
    await reconcile(harness);
    assert.deepEqual(harness.kernel.take().map((call) => call.command), [
      'iptables-nft-save',
      'iptables-legacy-save',
      ...RECONCILE_READS.slice(0, 3),
      'iptables-legacy-restore --noflush --wait=5',
      'iptables-nft-save',
      'iptables-nft-restore --noflush',
    ]);
    assert.deepEqual(harness.manager.backend?.backend, 'legacy');
    assert.doesNotMatch(harness.kernel.save('nft/4'), /MESHLITE|meshlite/);
    assert.match(harness.kernel.save('legacy/4'), /-A PREROUTING -m comment --comment meshlite -j MESHLITE-PREROUTING\n-A PREROUTING -m comment --comment "kubernetes service portals"/);
    assert.deepEqual(warnings(harness.lines), ["warn ML_INTERCEPT_BACKEND_MOVED kube-proxy's chains are in iptables legacy: moving interception there"]);
    await reconcile(harness);
    assert.deepEqual(harness.kernel.take().map((call) => call.command), [...RECONCILE_READS.slice(0, 3), 'iptables-legacy-save'], 'settled: no more probing');
  });
});

