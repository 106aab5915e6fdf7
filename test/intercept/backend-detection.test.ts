// Choosing the iptables backend: kube-proxy's chains first, then the busier backend, then nft; a setting overrides.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chooseBackend, detectBackend } from '../../agent/intercept/backend-detection.ts';
import { FakeNetfilter } from './fake-netfilter.ts';
import { LEGACY_SAVE_KUBE, NFT_SAVE_FIREWALL, NFT_SAVE_INSTALLED } from './samples.ts';

describe('chooseBackend', () => {
  it('prefers the backend with kube-proxy\'s chains, even when the other has more rules', () => {
    assert.deepEqual(chooseBackend({ nft: NFT_SAVE_FIREWALL, legacy: '*nat\n:KUBE-SERVICES - [0:0]\nCOMMIT\n' }), {
      backend: 'legacy',
      reason: 'kube-chains',
      kubeLines: { nft: 0, legacy: 1 },
    });
    assert.deepEqual(chooseBackend({ nft: NFT_SAVE_FIREWALL, legacy: LEGACY_SAVE_KUBE })?.kubeLines, { nft: 0, legacy: 5 });
  });

  it('takes the one with more KUBE- lines when both have some (leftovers of a migration are few)', () => {
    const leftover = '*filter\n:KUBE-FIREWALL - [0:0]\nCOMMIT\n';
    assert.deepEqual(chooseBackend({ nft: NFT_SAVE_INSTALLED, legacy: leftover }), { backend: 'nft', reason: 'kube-chains', kubeLines: { nft: 3, legacy: 1 } });
    assert.deepEqual(chooseBackend({ nft: leftover, legacy: LEGACY_SAVE_KUBE })?.backend, 'legacy');
    assert.deepEqual(chooseBackend({ nft: leftover, legacy: leftover })?.backend, 'nft', 'a tie goes to nft');
  });

  it('without kube-proxy, takes the backend with more rules, else nft', () => {
    assert.deepEqual(chooseBackend({ nft: '', legacy: NFT_SAVE_FIREWALL }), { backend: 'legacy', reason: 'more-rules', kubeLines: { nft: 0, legacy: 0 } });
    assert.deepEqual(chooseBackend({ nft: '', legacy: '' }), { backend: 'nft', reason: 'default', kubeLines: { nft: 0, legacy: 0 } });
  });

  it('takes the only backend that could be read, and none when neither could', () => {
    assert.deepEqual(chooseBackend({ nft: null, legacy: '' }), { backend: 'legacy', reason: 'only-available', kubeLines: { nft: null, legacy: 0 } });
    assert.deepEqual(chooseBackend({ nft: LEGACY_SAVE_KUBE, legacy: null })?.reason, 'only-available');
    assert.equal(chooseBackend({ nft: null, legacy: null }), null);
  });
});

describe('detectBackend', () => {
  it('reads both backends with their -save commands only, and hands back the chosen dump', async () => {
    const kernel = new FakeNetfilter();
    kernel.iptables('legacy', 4, LEGACY_SAVE_KUBE);
    const detection = await detectBackend(kernel.runner, 'auto');
    assert.deepEqual(kernel.take().map((call) => call.command), ['iptables-nft-save', 'iptables-legacy-save']);
    assert.equal(detection.decision.backend, 'legacy');
    assert.equal(detection.dump, kernel.save('legacy/4'));
  });

  it('a forced backend runs nothing', async () => {
    const kernel = new FakeNetfilter();
    assert.deepEqual(await detectBackend(kernel.runner, 'legacy'), {
      decision: { backend: 'legacy', reason: 'forced', kubeLines: { nft: null, legacy: null } },
      dump: null,
    });
    assert.deepEqual(kernel.calls, []);
  });

  it('a backend whose command fails counts as unavailable; both failing is a command failure', async () => {
    const kernel = new FakeNetfilter();
    kernel.failWhen = (call) => (call.command === 'iptables-nft-save' ? { code: 1, stdout: '', stderr: 'iptables: Protocol not supported' } : null);
    assert.deepEqual((await detectBackend(kernel.runner, 'auto')).decision.reason, 'only-available');
    kernel.installed = new Set();
    await assert.rejects(detectBackend(kernel.runner, 'auto'), { code: 'ML_INTERCEPT_COMMAND_FAILED', message: /neither iptables backend can be read/ });
  });
});
