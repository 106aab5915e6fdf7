// Reading iptables-save output, and comparing rules by meaning rather than spelling.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chainRules, hasChain, hasComment, parseIptablesSave, ruleCount, ruleTarget, ruleWords, sameRule } from '../../agent/intercept/iptables-dump.ts';
import { LEGACY_SAVE_KUBE, NFT_SAVE_INSTALLED } from './samples.ts';

describe('parseIptablesSave', () => {
  it('reads tables, chains with policies, and each chain\'s rules in order, skipping comments and warnings', () => {
    const dump = parseIptablesSave(NFT_SAVE_INSTALLED);
    assert.deepEqual([...dump.keys()], ['filter', 'nat']);
    assert.deepEqual([...(dump.get('nat')?.chains ?? [])], [
      ['PREROUTING', 'ACCEPT'],
      ['INPUT', 'ACCEPT'],
      ['OUTPUT', 'ACCEPT'],
      ['POSTROUTING', 'ACCEPT'],
      ['KUBE-SERVICES', '-'],
      ['MESHLITE-PREROUTING', '-'],
    ]);
    assert.deepEqual(chainRules(dump, 'nat', 'PREROUTING'), [
      '-m comment --comment meshlite -j MESHLITE-PREROUTING',
      '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    ]);
    assert.deepEqual(chainRules(dump, 'filter', 'MESHLITE-INPUT'), [
      '-d 10.0.0.1/32 -p tcp -m tcp --dport 15001 -m conntrack --ctstate DNAT -j ACCEPT',
      '-d 10.0.0.1/32 -p tcp -m tcp --dport 15001 -j REJECT --reject-with tcp-reset',
    ]);
    assert.equal(ruleCount(dump), 7);
    assert.equal(hasChain(dump, 'nat', 'KUBE-SERVICES'), true);
    assert.equal(hasChain(dump, 'mangle', 'PREROUTING'), false);
    assert.deepEqual(chainRules(dump, 'raw', 'PREROUTING'), []);
  });

  it('reads an empty dump (a namespace without tables) as no tables, and skips lines it does not know', () => {
    assert.equal(parseIptablesSave('').size, 0);
    const dump = parseIptablesSave('*nat\n:PREROUTING ACCEPT [0:0]\n-N SOMETHING-NEW\n-A PREROUTING -j X\nCOMMIT\n-A OUTSIDE -j Y\n');
    assert.deepEqual(chainRules(dump, 'nat', 'PREROUTING'), ['-j X']);
    assert.equal(ruleCount(dump), 1);
  });

  it('reads a legacy dump the same way', () => {
    const dump = parseIptablesSave(LEGACY_SAVE_KUBE);
    assert.deepEqual(chainRules(dump, 'nat', 'PREROUTING').map(ruleTarget), ['CNI-HOSTPORT-DNAT', 'KUBE-SERVICES']);
  });
});

describe('rule words', () => {
  it('unquotes, keeps quoted spaces in one word, and drops a host prefix length of -d and -s', () => {
    assert.deepEqual(ruleWords('-d 10.0.0.1/32 -s fd00::1/128 -m comment --comment "kubernetes service portals" -j X'), [
      '-d', '10.0.0.1', '-s', 'fd00::1', '-m', 'comment', '--comment', 'kubernetes service portals', '-j', 'X',
    ]);
    assert.deepEqual(ruleWords('-d 10.0.0.0/8 --comment "say \\"hi\\""'), ['-d', '10.0.0.0/8', '--comment', 'say "hi"']);
  });

  it('sameRule ignores optional spellings only', () => {
    assert.equal(sameRule('-m comment --comment "meshlite" -j MESHLITE-INPUT', '-m comment --comment meshlite -j MESHLITE-INPUT'), true);
    assert.equal(sameRule('-d 10.0.0.1 -j ACCEPT', '-d 10.0.0.1/32 -j ACCEPT'), true);
    assert.equal(sameRule('-d 10.0.0.1/24 -j ACCEPT', '-d 10.0.0.1/32 -j ACCEPT'), false);
    assert.equal(sameRule('-j ACCEPT', '-j ACCEPT -m comment --comment x'), false);
  });

  it('ruleTarget and hasComment read the jump target and the exact comment', () => {
    assert.equal(ruleTarget('-m comment --comment "kubernetes service portals" -j KUBE-SERVICES'), 'KUBE-SERVICES');
    assert.equal(ruleTarget('-g KUBE-MARK-MASQ'), 'KUBE-MARK-MASQ');
    assert.equal(ruleTarget('-p tcp'), null);
    assert.equal(hasComment('-m comment --comment meshlite -j X', 'meshlite'), true);
    assert.equal(hasComment('-m comment --comment "meshlite" -j X', 'meshlite'), true);
    assert.equal(hasComment('-m comment --comment "not meshlite" -j X', 'meshlite'), false);
    assert.equal(hasComment('-m comment --comment meshlite-old -j X', 'meshlite'), false);
  });
});
