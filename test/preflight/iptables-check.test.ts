// The iptables preflight: the backend kube-proxy uses, and that its save and restore commands run, per IP family.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkIptables, INSTALL_IPTABLES, restoreTestScript } from '../../agent/preflight/iptables-check.ts';
import { exited, ScriptedRunner } from './scripted-runner.ts';

describe('checkIptables', () => {
  it('finds no kube-proxy rules on a fresh node: nft by default, then save and a --test restore that commits nothing', async () => {
    const script = new ScriptedRunner();
    const lines = await checkIptables({ runner: script.runner, setting: 'auto', families: [4] });
    assert.deepEqual(lines, [
      { status: 'ok', what: 'iptables backend: nft (no kube-proxy rules yet; the default, looked at again once the agent runs)' },
      { status: 'ok', what: 'iptables nft IPv4: iptables-nft-save and iptables-nft-restore run' },
    ]);
    assert.deepEqual(script.calls, [
      { command: 'iptables-nft-save' },
      { command: 'iptables-legacy-save' },
      { command: 'iptables-nft-save' },
      { command: 'iptables-nft-restore --test --noflush', input: restoreTestScript() },
    ]);
    assert.equal(restoreTestScript(), '*nat\n:MESHLITE-PREROUTING - [0:0]\nCOMMIT\n*filter\n:MESHLITE-INPUT - [0:0]\nCOMMIT\n');
  });

  it("takes kube-proxy's backend (legacy here) and checks each family of the node IPs with its commands", async () => {
    const script = new ScriptedRunner().answer('iptables-legacy-save', exited(0, '', '*nat\n:KUBE-SERVICES - [0:0]\n-A PREROUTING -j KUBE-SERVICES\nCOMMIT\n'));
    const lines = await checkIptables({ runner: script.runner, setting: 'auto', families: [4, 6] });
    assert.deepEqual(lines, [
      { status: 'ok', what: "iptables backend: legacy (kube-proxy's rules are there: 2 KUBE- lines)" },
      { status: 'ok', what: 'iptables legacy IPv4: iptables-legacy-save and iptables-legacy-restore run' },
      { status: 'ok', what: 'iptables legacy IPv6: ip6tables-legacy-save and ip6tables-legacy-restore run' },
    ]);
    assert.deepEqual(script.commands().slice(2), [
      'iptables-legacy-save',
      'iptables-legacy-restore --test --noflush --wait=5',
      'ip6tables-legacy-save',
      'ip6tables-legacy-restore --test --noflush --wait=5',
    ]);
  });

  it('reads nothing to decide when the backend is forced', async () => {
    const script = new ScriptedRunner();
    const lines = await checkIptables({ runner: script.runner, setting: 'legacy', families: [] });
    assert.deepEqual(lines, [{ status: 'ok', what: 'iptables backend: legacy (set by --iptables-backend)' }]);
    assert.deepEqual(script.calls, []);
  });

  it('says to install iptables when neither backend runs, and nothing more', async () => {
    const script = new ScriptedRunner().answer('iptables-nft-save', 'missing').answer('iptables-legacy-save', 'missing');
    const lines = await checkIptables({ runner: script.runner, setting: 'auto', families: [4] });
    assert.deepEqual(lines, [
      {
        status: 'fail',
        what: 'iptables backend',
        problem: 'neither iptables-nft-save nor iptables-legacy-save runs',
        fix: INSTALL_IPTABLES,
      },
    ]);
  });

  it('names the command that failed, and asks for NET_ADMIN when it ran but was refused', async () => {
    const script = new ScriptedRunner().answer('iptables-nft-restore', exited(4, 'iptables-nft-restore: Permission denied (you must be root)\n'));
    const lines = await checkIptables({ runner: script.runner, setting: 'nft', families: [4] });
    assert.deepEqual(lines[1], {
      status: 'fail',
      what: 'iptables nft IPv4',
      problem: 'iptables-nft-restore --test --noflush exited 4: iptables-nft-restore: Permission denied (you must be root)',
      fix: "run it as root with CAP_NET_ADMIN in the node's network namespace (the DaemonSet's agent container: kubectl -n meshlite-system exec ds/meshlite -c agent -- node agent/main.ts check)",
    });
    const missing = new ScriptedRunner().answer('ip6tables-nft-save', 'missing');
    const [, v6] = await checkIptables({ runner: missing.runner, setting: 'nft', families: [6] });
    assert.deepEqual(v6, { status: 'fail', what: 'iptables nft IPv6', problem: 'ip6tables-nft-save did not run to completion: spawn ip6tables-nft-save ENOENT', fix: INSTALL_IPTABLES });
  });
});
