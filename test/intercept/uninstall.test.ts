// Uninstall on a fake kernel: exactly meshlite's jumps, chains and sets go, in every backend and family; idempotent.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planRuleRemoval, planSetRemoval } from '../../agent/intercept/removal-plan.ts';
import { parseIptablesSave } from '../../agent/intercept/iptables-dump.ts';
import { uninstall } from '../../agent/intercept/uninstall.ts';
import { createLogger } from '../../agent/telemetry/logger.ts';
import { FakeNetfilter } from './fake-netfilter.ts';
import { CREATE_V4, FILTER_V4, KUBE_PROXY_V4, type LogLine, NAT_V4 } from './manager-harness.ts';
import { LEGACY_SAVE_KUBE, NFT_SAVE_INSTALLED } from './samples.ts';

const REMOVE_V4 =
  '*nat\n-D PREROUTING -m comment --comment meshlite -j MESHLITE-PREROUTING\n-F MESHLITE-PREROUTING\n-X MESHLITE-PREROUTING\nCOMMIT\n' +
  '*filter\n-D INPUT -m comment --comment meshlite -j MESHLITE-INPUT\n-F MESHLITE-INPUT\n-X MESHLITE-INPUT\nCOMMIT\n';

const READS = ['iptables-nft-save', 'ip6tables-nft-save', 'iptables-legacy-save', 'ip6tables-legacy-save', 'ipset list -n'];

function logged(): { logger: ReturnType<typeof createLogger>; lines: LogLine[] } {
  const lines: LogLine[] = [];
  return { logger: createLogger('debug', { write: (line: string) => lines.push(JSON.parse(line) as LogLine) }), lines };
}

/** A node with kube-proxy in nft, meshlite installed there (v4), and someone else's set. */
function installedKernel(): FakeNetfilter {
  const kernel = new FakeNetfilter();
  kernel.iptables('nft', 4, KUBE_PROXY_V4);
  kernel.ipsetRestore(`${CREATE_V4}add meshlite-pods-v4 10.1.0.5\ncreate KUBE-CLUSTER-IP hash:ip,port family inet\n`);
  kernel.iptables('nft', 4, NAT_V4 + FILTER_V4);
  return kernel;
}

describe('removal plans', () => {
  it('delete every rule with the meshlite comment by its printed spec, then flush and delete the chains', () => {
    assert.deepEqual(planRuleRemoval(parseIptablesSave(NFT_SAVE_INSTALLED)), {
      removed: ['nat PREROUTING: jump', 'nat MESHLITE-PREROUTING: chain (1 rules)', 'filter INPUT: jump', 'filter MESHLITE-INPUT: chain (2 rules)'],
      script: REMOVE_V4,
    });
  });

  it('have nothing to do where meshlite never was', () => {
    assert.deepEqual(planRuleRemoval(parseIptablesSave(LEGACY_SAVE_KUBE)), { removed: [], script: null });
    assert.deepEqual(planRuleRemoval(parseIptablesSave('')), { removed: [], script: null });
    assert.deepEqual(planSetRemoval(['KUBE-CLUSTER-IP']), { removed: [], script: null });
  });

  it('destroy only meshlite\'s sets', () => {
    assert.deepEqual(planSetRemoval(['KUBE-CLUSTER-IP', 'meshlite-dsts-v6', 'meshlite-pods-v4', 'meshlite-other']), {
      removed: ['meshlite-pods-v4', 'meshlite-dsts-v6'],
      script: 'destroy meshlite-pods-v4\ndestroy meshlite-dsts-v6\n',
    });
  });

  it('destroy the new pods set of an interrupted migration too, last', () => {
    assert.deepEqual(planSetRemoval(['meshlite-pods-v6-new', 'meshlite-pods-v6']), {
      removed: ['meshlite-pods-v6', 'meshlite-pods-v6-new'],
      script: 'destroy meshlite-pods-v6\ndestroy meshlite-pods-v6-new\n',
    });
  });
});

describe('uninstall', () => {
  it('removes rules before sets, in every backend and family, and leaves kube-proxy\'s as they were', async () => {
    const kernel = installedKernel();
    const { logger, lines } = logged();
    const report = await uninstall({ runner: kernel.runner, logger, backend: 'auto' });
    assert.deepEqual(kernel.take(), [
      { command: 'iptables-nft-save' },
      { command: 'iptables-nft-restore --noflush', input: REMOVE_V4 },
      { command: 'ip6tables-nft-save' },
      { command: 'iptables-legacy-save' },
      { command: 'ip6tables-legacy-save' },
      { command: 'ipset list -n' },
      { command: 'ipset restore', input: 'destroy meshlite-pods-v4\ndestroy meshlite-dsts-v4\n' },
    ]);
    assert.deepEqual(report, {
      removed: [
        'nft v4: nat PREROUTING: jump',
        'nft v4: nat MESHLITE-PREROUTING: chain (1 rules)',
        'nft v4: filter INPUT: jump',
        'nft v4: filter MESHLITE-INPUT: chain (2 rules)',
        'ipset meshlite-pods-v4',
        'ipset meshlite-dsts-v4',
      ],
      unreadable: [],
    });
    const untouched = new FakeNetfilter();
    untouched.iptables('nft', 4, KUBE_PROXY_V4);
    assert.equal(kernel.save('nft/4'), untouched.save('nft/4'));
    assert.deepEqual(kernel.setNames(), ['KUBE-CLUSTER-IP']);
    assert.deepEqual(lines.filter((line) => line.level === 'info').map((line) => line.msg), ['interception removed']);
  });

  it('is idempotent: a second run, or a run on a clean machine, only reads', async () => {
    const kernel = installedKernel();
    const { logger, lines } = logged();
    await uninstall({ runner: kernel.runner, logger, backend: 'auto' });
    kernel.take();
    assert.deepEqual(await uninstall({ runner: kernel.runner, logger, backend: 'auto' }), { removed: [], unreadable: [] });
    assert.deepEqual(kernel.take().map((call) => call.command), READS);
    assert.equal(lines.at(-1)?.msg, 'nothing of interception to remove');
  });

  it('looks only in a forced backend, and skips a backend that is not installed', async () => {
    const kernel = installedKernel();
    // The rules are in nft: the sets they name cannot go, and saying so is the point.
    await assert.rejects(uninstall({ runner: kernel.runner, logger: createLogger('silent'), backend: 'legacy' }), /Set cannot be destroyed: it is in use/);
    assert.deepEqual(kernel.take().map((call) => call.command), ['iptables-legacy-save', 'ip6tables-legacy-save', 'ipset list -n', 'ipset restore']);
    assert.deepEqual(kernel.setNames(), ['meshlite-pods-v4', 'meshlite-dsts-v4', 'KUBE-CLUSTER-IP']);
    kernel.installed = new Set(['nft']);
    const report = await uninstall({ runner: kernel.runner, logger: createLogger('silent'), backend: 'auto' });
    assert.equal(report.removed.length, 6);
    assert.deepEqual(report.unreadable, []);
  });

  it('goes on past a backend it cannot read, and fails with the code after removing what it could', async () => {
    const kernel = installedKernel();
    const { logger, lines } = logged();
    kernel.failWhen = (call) => {
      if (call.command === 'ip6tables-nft-save') return { code: 1, stdout: '', stderr: 'ip6tables: Address family not supported' };
      if (call.command === 'ipset restore') return { code: 1, stdout: '', stderr: 'ipset v7.17: Error in line 1: Set cannot be destroyed: it is in use by a kernel component' };
      return null;
    };
    await assert.rejects(uninstall({ runner: kernel.runner, logger, backend: 'auto' }), {
      code: 'ML_INTERCEPT_COMMAND_FAILED',
      message: 'ipset restore exited 1: ipset v7.17: Error in line 1: Set cannot be destroyed: it is in use by a kernel component',
    });
    assert.doesNotMatch(kernel.save('nft/4'), /MESHLITE/, 'the rules are gone all the same');
    assert.deepEqual(
      lines.filter((line) => line.level !== 'info').map((line) => `${line.level} ${line.code} ${line.msg}`),
      ['warn ML_INTERCEPT_COMMAND_FAILED cannot read nft v6; skipped', 'error ML_INTERCEPT_COMMAND_FAILED removing interception failed'],
    );
  });
});
