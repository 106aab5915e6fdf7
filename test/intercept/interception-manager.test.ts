// The interception manager on a fake kernel: start, set updates (coalesced), whenApplied, IPv6, and stop.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CREATE_V4, createHarness, FILTER_V4, NAT_V4, settle, started, warnings } from './manager-harness.ts';

describe('InterceptionManager.start', () => {
  it('detects the backend, creates the sets, installs chains and jumps in one restore, and checks IPv6 is clean', async () => {
    const { kernel, manager, observed, lines } = createHarness();
    const start = manager.start();
    assert.equal(manager.state.state, 'installing');
    await settle();
    await start;
    assert.deepEqual(kernel.take(), [
      { command: 'iptables-nft-save' },
      { command: 'iptables-legacy-save' },
      { command: 'ipset list -n' },
      { command: 'ipset restore', input: CREATE_V4 },
      { command: 'iptables-nft-restore --noflush', input: NAT_V4 + FILTER_V4 },
      // No IPv6 node IP: any IPv6 interception a previous configuration left is looked for (none here).
      { command: 'ip6tables-nft-save' },
      { command: 'ipset list -n' },
    ]);
    assert.deepEqual(observed, ['state installing', 'pass install ok', 'state ready']);
    assert.equal(manager.state.state, 'ready');
    assert.deepEqual(manager.backend, { backend: 'nft', reason: 'kube-chains', kubeLines: { nft: 9, legacy: 0 } });
    assert.deepEqual(
      lines.filter((line) => line.level === 'info').map((line) => line.msg),
      ['using iptables backend nft', 'interception applied'],
    );
    const applied = lines.find((line) => line.msg === 'interception applied');
    assert.deepEqual(applied?.sets, {
      'meshlite-pods-v4': { created: true, added: 0, removed: 0 },
      'meshlite-dsts-v4': { created: true, added: 0, removed: 0 },
    });
    assert.deepEqual(applied?.rules, [
      'v4 nat MESHLITE-PREROUTING: chain missing',
      'v4 nat PREROUTING: jump missing',
      'v4 filter MESHLITE-INPUT: chain missing',
      'v4 filter INPUT: jump missing',
    ]);
    // Ahead of kube-proxy's jumps, whose rules are untouched.
    assert.match(kernel.save('nft/4'), /-A PREROUTING -m comment --comment meshlite -j MESHLITE-PREROUTING\n-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n/);
    assert.match(kernel.save('nft/4'), /-A INPUT -m comment --comment meshlite -j MESHLITE-INPUT\n-A INPUT -j KUBE-FIREWALL\n/);
  });

  it('fills the sets in the first pass with what was desired before start', async () => {
    const { kernel, manager } = createHarness();
    manager.setPods(['10.1.0.5']);
    manager.setDestinations([{ ip: '10.96.0.10', port: 8080 }]);
    const start = manager.start();
    await settle();
    await start;
    const restore = kernel.take().find((call) => call.command === 'ipset restore');
    assert.equal(
      restore?.input,
      'create meshlite-pods-v4 hash:ip family inet maxelem 65536 timeout 3 -exist\nadd meshlite-pods-v4 10.1.0.5 timeout 2 -exist\n' +
        'create meshlite-dsts-v4 hash:ip,port family inet maxelem 1048576 -exist\nadd meshlite-dsts-v4 10.96.0.10,tcp:8080 -exist\n',
    );
  });

  it('changes nothing when a previous agent left everything in place (a restart opens no window)', async () => {
    const second = createHarness({}, (kernel) => {
      kernel.ipsetRestore(`${CREATE_V4}add meshlite-pods-v4 10.1.0.5\n`);
      kernel.iptables('nft', 4, NAT_V4 + FILTER_V4);
    });
    second.manager.setPods(['10.1.0.5']);
    const start = second.manager.start();
    await settle();
    await start;
    assert.deepEqual(
      second.kernel.take().map((call) => call.command),
      ['iptables-nft-save', 'iptables-legacy-save', 'ipset list -n', 'ipset save meshlite-pods-v4', 'ipset save meshlite-dsts-v4', 'ip6tables-nft-save', 'ipset list -n'],
    );
    assert.ok(!second.lines.some((line) => line.msg === 'interception applied'), 'nothing to log: nothing changed');
    assert.ok(second.lines.some((line) => line.msg === 'interception already in place'));
  });
});

describe('InterceptionManager set updates', () => {
  it('adds and removes a pod with one ipset restore each, and nothing else', async () => {
    const { kernel, manager, timers } = await started(createHarness());
    manager.setPods(['10.1.0.5', '10.1.0.6']);
    const applied = manager.whenApplied();
    assert.deepEqual(kernel.take(), [], 'nothing before the coalescing delay');
    timers.advance(5);
    await settle();
    await applied;
    assert.deepEqual(kernel.take(), [{ command: 'ipset restore', input: 'add meshlite-pods-v4 10.1.0.5 timeout 2 -exist\nadd meshlite-pods-v4 10.1.0.6 timeout 2 -exist\n' }]);
    manager.setPods(['10.1.0.6']);
    timers.advance(5);
    await settle();
    await manager.whenApplied();
    assert.deepEqual(kernel.take(), [{ command: 'ipset restore', input: 'del meshlite-pods-v4 10.1.0.5 -exist\n' }]);
    assert.deepEqual(kernel.members('meshlite-pods-v4'), ['10.1.0.6']);
    // As the dashboard shows it: ready, the sets as last applied, the last pass and how long ago (no time passed).
    assert.deepEqual(manager.describe(), { state: 'ready', reason: null, sets: { 'meshlite-pods-v4': 1, 'meshlite-dsts-v4': 0 }, lastPass: { kind: 'sets', agoMs: 0 } });
    manager.setPods(['10.1.0.6']);
    timers.advance(5);
    await settle();
    await manager.whenApplied();
    assert.deepEqual(kernel.take(), [], 'the same pods again: nothing to run');
  });

  it('replaces the destinations with the difference only', async () => {
    const { kernel, manager, timers } = await started(createHarness());
    manager.setDestinations([{ ip: '10.96.0.10', port: 8080 }, { ip: '10.1.1.7', port: 8080 }]);
    timers.advance(5);
    await settle();
    kernel.take();
    manager.setDestinations([{ ip: '10.1.1.7', port: 8080 }, { ip: '10.1.1.8', port: 8080 }]);
    timers.advance(5);
    await settle();
    assert.deepEqual(kernel.take().at(-1), {
      command: 'ipset restore',
      input: 'del meshlite-dsts-v4 10.96.0.10,tcp:8080 -exist\nadd meshlite-dsts-v4 10.1.1.8,tcp:8080 -exist\n',
    });
    assert.deepEqual(kernel.members('meshlite-dsts-v4'), ['10.1.1.7,tcp:8080', '10.1.1.8,tcp:8080']);
  });

  it('coalesces a burst of changes into one pass, and a change during a pass into one more', async () => {
    const { kernel, manager, timers, observed } = await started(createHarness());
    manager.setPods(['10.1.0.5']);
    manager.setPods(['10.1.0.5', '10.1.0.6']);
    manager.setDestinations([{ ip: '10.96.0.10', port: 8080 }]);
    const first = manager.whenApplied();
    timers.advance(5);
    assert.equal(manager.state.state, 'applying');
    manager.setPods(['10.1.0.7']);
    const second = manager.whenApplied();
    await settle();
    await first;
    assert.deepEqual(kernel.take().filter((call) => call.command === 'ipset restore').map((call) => call.input), [
      'add meshlite-pods-v4 10.1.0.5 timeout 2 -exist\nadd meshlite-pods-v4 10.1.0.6 timeout 2 -exist\nadd meshlite-dsts-v4 10.96.0.10,tcp:8080 -exist\n',
    ]);
    let secondDone = false;
    void second.then(() => {
      secondDone = true;
    });
    await settle();
    assert.equal(secondDone, false, 'the change made during the pass is not applied yet');
    timers.advance(5);
    await settle();
    await second;
    assert.deepEqual(kernel.take().filter((call) => call.command === 'ipset restore').map((call) => call.input), [
      'del meshlite-pods-v4 10.1.0.5 -exist\ndel meshlite-pods-v4 10.1.0.6 -exist\nadd meshlite-pods-v4 10.1.0.7 timeout 2 -exist\n',
    ]);
    assert.deepEqual(observed, ['state applying', 'pass sets ok', 'state ready', 'state applying', 'pass sets ok', 'state ready']);
  });

  it('whenApplied resolves at once when nothing is pending, and waits for start before the first pass', async () => {
    const { manager } = createHarness();
    let resolved = false;
    void manager.whenApplied().then(() => {
      resolved = true;
    });
    await settle();
    assert.equal(resolved, false, 'nothing is in the kernel before start');
    const start = manager.start();
    await settle();
    await start;
    assert.equal(resolved, true);
    await manager.whenApplied();
  });

  it('normalises addresses, splits families, and skips what is not an address with one warning', async () => {
    const { kernel, manager, timers, lines, observed } = await started(createHarness());
    manager.setPods(['10.1.0.5', '::ffff:10.1.0.9', 'fd00::5', 'not-an-ip', '']);
    manager.setDestinations([{ ip: '10.96.0.10', port: 0 }, { ip: '10.96.0.11', port: 9000 }]);
    manager.setPods(['10.1.0.5', '::ffff:10.1.0.9', 'fd00::5', 'not-an-ip', '']);
    timers.advance(5);
    await settle();
    assert.deepEqual(kernel.take().at(-1)?.input, 'add meshlite-pods-v4 10.1.0.5 timeout 2 -exist\nadd meshlite-pods-v4 10.1.0.9 timeout 2 -exist\nadd meshlite-dsts-v4 10.96.0.11,tcp:9000 -exist\n');
    assert.deepEqual(warnings(lines), [
      'warn ML_INTERCEPT_INVALID_ADDRESS skipping pods that are not addresses',
      'warn ML_INTERCEPT_INVALID_ADDRESS skipping destinations that are not addresses',
    ]);
    assert.deepEqual(lines.find((line) => line.side === 'pods' && line.level === 'warn')?.invalid, ['not-an-ip', '']);
    assert.deepEqual(observed.filter((entry) => entry.startsWith('error')), ['error ML_INTERCEPT_INVALID_ADDRESS', 'error ML_INTERCEPT_INVALID_ADDRESS']);
  });
});

describe('InterceptionManager with IPv6', () => {
  it('installs both families, IPv6 in ip6tables with a bracketed DNAT target', async () => {
    const { kernel, manager, timers } = createHarness({ nodeIPs: { v4: '10.0.0.1', v6: 'FD00:0:0:0::1' } });
    manager.setPods(['10.1.0.5', 'FD00::5']);
    manager.setDestinations([{ ip: 'fd00:96::a', port: 443 }]);
    const start = manager.start();
    await settle();
    await start;
    const calls = kernel.take();
    assert.deepEqual(calls.map((call) => call.command), [
      'iptables-nft-save',
      'iptables-legacy-save',
      'ipset list -n',
      'ipset restore',
      'iptables-nft-restore --noflush',
      'ip6tables-nft-save',
      'ip6tables-nft-restore --noflush',
    ]);
    assert.equal(calls[3].input, `create meshlite-pods-v4 hash:ip family inet maxelem 65536 timeout 3 -exist
add meshlite-pods-v4 10.1.0.5 timeout 2 -exist
create meshlite-dsts-v4 hash:ip,port family inet maxelem 1048576 -exist
create meshlite-pods-v6 hash:ip family inet6 maxelem 65536 timeout 3 -exist
add meshlite-pods-v6 fd00::5 timeout 2 -exist
create meshlite-dsts-v6 hash:ip,port family inet6 maxelem 1048576 -exist
add meshlite-dsts-v6 fd00:96::a,tcp:443 -exist
`);
    assert.equal(calls[6].input, `*nat
:MESHLITE-PREROUTING - [0:0]
-A MESHLITE-PREROUTING -p tcp -m set --match-set meshlite-pods-v6 src -m set --match-set meshlite-dsts-v6 dst,dst -j DNAT --to-destination [fd00::1]:15001
-I PREROUTING 1 -m comment --comment meshlite -j MESHLITE-PREROUTING
COMMIT
*filter
:MESHLITE-INPUT - [0:0]
-A MESHLITE-INPUT -d fd00::1/128 -p tcp -m tcp --dport 15001 -m conntrack --ctstate DNAT -j ACCEPT
-A MESHLITE-INPUT -d fd00::1/128 -p tcp -m tcp --dport 15001 -j REJECT --reject-with tcp-reset
-I INPUT 1 -m comment --comment meshlite -j MESHLITE-INPUT
COMMIT
`);
    manager.setPods(['fd00::6']);
    timers.advance(5);
    await settle();
    assert.deepEqual(kernel.take().at(-1)?.input, 'del meshlite-pods-v4 10.1.0.5 -exist\ndel meshlite-pods-v6 fd00::5 -exist\nadd meshlite-pods-v6 fd00::6 timeout 2 -exist\n');
  });

  it('removes IPv6 interception a previous configuration left when there is no IPv6 node IP now', async () => {
    const previous = createHarness({ nodeIPs: { v4: '10.0.0.1', v6: 'fd00::1' } });
    await started(previous);
    const { kernel, manager } = createHarness({}, (fresh) => {
      fresh.ipsetRestore('create meshlite-pods-v6 hash:ip family inet6\ncreate meshlite-dsts-v6 hash:ip,port family inet6\n');
      fresh.iptables('nft', 6, previous.kernel.save('nft/6'));
    });
    const start = manager.start();
    await settle();
    await start;
    const calls = kernel.take().slice(5);
    assert.deepEqual(calls, [
      { command: 'ip6tables-nft-save' },
      {
        command: 'ip6tables-nft-restore --noflush',
        input: '*nat\n-D PREROUTING -m comment --comment meshlite -j MESHLITE-PREROUTING\n-F MESHLITE-PREROUTING\n-X MESHLITE-PREROUTING\nCOMMIT\n' +
          '*filter\n-D INPUT -m comment --comment meshlite -j MESHLITE-INPUT\n-F MESHLITE-INPUT\n-X MESHLITE-INPUT\nCOMMIT\n',
      },
      { command: 'ipset list -n' },
      { command: 'ipset restore', input: 'destroy meshlite-pods-v6\ndestroy meshlite-dsts-v6\n' },
    ]);
    assert.deepEqual(kernel.setNames(), ['meshlite-pods-v4', 'meshlite-dsts-v4']);
  });
});

describe('InterceptionManager.stop', () => {
  it('stops every timer and leaves every rule and set in place', async () => {
    const { kernel, manager, timers, observed } = await started(createHarness());
    manager.setPods(['10.1.0.5']);
    timers.advance(5);
    await settle();
    const before = { rules: kernel.save('nft/4'), pods: kernel.members('meshlite-pods-v4') };
    kernel.take();
    manager.setPods(['10.1.0.6']);
    const pending = manager.whenApplied();
    await manager.stop();
    await assert.rejects(pending, /interception stopped/);
    await assert.rejects(manager.whenApplied(), /interception stopped/);
    manager.setPods(['10.1.0.7']);
    timers.advance(3_600_000);
    await settle();
    assert.equal(timers.activeCount, 0);
    assert.deepEqual(kernel.take(), [], 'no command after stop, and none to remove anything');
    assert.deepEqual({ rules: kernel.save('nft/4'), pods: kernel.members('meshlite-pods-v4') }, before);
    assert.deepEqual(observed.slice(-1), ['state stopped']);
  });

  it('lets a pass under way finish, and rejects a start that never got its rules in', async () => {
    const { kernel, manager } = createHarness();
    kernel.failWhen = (call) => (call.command === 'ipset restore' ? { code: 1, stdout: '', stderr: 'ipset v7.17: Kernel error' } : null);
    const start = manager.start();
    await settle();
    assert.equal(manager.state.state, 'failed');
    await manager.stop();
    await assert.rejects(start, /interception stopped/);
  });

  it('refuses a second start and a node IP of the wrong family', () => {
    const { manager } = createHarness();
    void manager.start().catch(() => {});
    assert.throws(() => manager.start(), /start\(\) in state installing/);
    assert.throws(() => createHarness({ nodeIPs: { v4: 'fd00::1', v6: null } }), /not an IPv4 address/);
    assert.throws(() => createHarness({ nodeIPs: { v4: null, v6: null } }), /no node IP/);
    void manager.stop();
  });
});
