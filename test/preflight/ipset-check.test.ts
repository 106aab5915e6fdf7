// The ipset preflight: the command, then throwaway sets of both types with timeout per family, always destroyed.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkIpset, INSTALL_IPSET, throwawayScript } from '../../agent/preflight/ipset-check.ts';
import { exited, ScriptedRunner } from './scripted-runner.ts';

describe('checkIpset', () => {
  it('creates, fills and destroys a hash:ip and a hash:ip,port set with timeout per family, named with the pid', async () => {
    const script = new ScriptedRunner().answer('ipset version', exited(0, '', 'ipset v7.17, protocol version: 7\n'));
    const lines = await checkIpset({ runner: script.runner, families: [4, 6], pid: 4242 });
    assert.deepEqual(lines, [
      { status: 'ok', what: 'ipset: ipset v7.17, protocol version: 7' },
      { status: 'ok', what: 'ipset IPv4: the kernel supports hash:ip and hash:ip,port sets with timeout' },
      { status: 'ok', what: 'ipset IPv6: the kernel supports hash:ip and hash:ip,port sets with timeout' },
    ]);
    assert.deepEqual(script.calls, [
      { command: 'ipset version' },
      { command: 'ipset restore', input: throwawayScript(4242, 4) },
      { command: 'ipset destroy meshlite-check-4242-ipport4' },
      { command: 'ipset destroy meshlite-check-4242-ip4' },
      { command: 'ipset restore', input: throwawayScript(4242, 6) },
      { command: 'ipset destroy meshlite-check-4242-ipport6' },
      { command: 'ipset destroy meshlite-check-4242-ip6' },
    ]);
    assert.equal(
      throwawayScript(4242, 6),
      'create meshlite-check-4242-ip6 hash:ip family inet6 timeout 3\nadd meshlite-check-4242-ip6 2001:db8::1 timeout 3\n' +
        'create meshlite-check-4242-ipport6 hash:ip,port family inet6 timeout 3\nadd meshlite-check-4242-ipport6 2001:db8::1,tcp:1 timeout 3\n',
    );
  });

  it('is one line saying to install ipset when the command is not found', async () => {
    const script = new ScriptedRunner().answer('ipset', 'missing');
    const lines = await checkIpset({ runner: script.runner, families: [4], pid: 1 });
    assert.deepEqual(lines, [
      { status: 'fail', what: 'ipset', problem: 'the ipset command is not installed or not on PATH (spawn ipset ENOENT)', fix: INSTALL_IPSET },
    ]);
    assert.deepEqual(script.commands(), ['ipset version']);
  });

  it('names the kernel modules when a set type or timeout is refused, and still destroys what was made', async () => {
    const script = new ScriptedRunner().answer(
      'ipset restore',
      exited(1, 'ipset v7.17: Error in line 3: Kernel error received: set type not supported\n'),
    );
    const lines = await checkIpset({ runner: script.runner, families: [4], pid: 7 });
    assert.deepEqual(lines[1], {
      status: 'fail',
      what: 'ipset IPv4',
      problem: 'the kernel refused a hash:ip or hash:ip,port set with timeout (ipset restore exited 1: ipset v7.17: Error in line 3: Kernel error received: set type not supported)',
      fix: 'load the ip_set, ip_set_hash_ip and ip_set_hash_ipport kernel modules on the node (modprobe); fail open needs sets with timeout support',
    });
    assert.deepEqual(script.commands().slice(2), ['ipset destroy meshlite-check-7-ipport4', 'ipset destroy meshlite-check-7-ip4']);
  });

  it('asks for NET_ADMIN when the kernel says the operation is not permitted', async () => {
    const script = new ScriptedRunner().answer('ipset version', exited(1, 'ipset v7.17: Kernel error received: Operation not permitted\n'));
    const lines = await checkIpset({ runner: script.runner, families: [4], pid: 7 });
    assert.deepEqual(lines, [
      {
        status: 'fail',
        what: 'ipset',
        problem: 'ipset version exited 1: ipset v7.17: Kernel error received: Operation not permitted',
        fix: "run it as root with CAP_NET_ADMIN in the node's network namespace (the DaemonSet's agent container has it)",
      },
    ]);
  });
});
