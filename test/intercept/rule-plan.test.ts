// The rule plan: meshlite's rules, what a dump lacks, and the restore script that puts exactly that right.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseIptablesSave } from '../../agent/intercept/iptables-dump.ts';
import { checkRules, ownChainRules, planRules, type RuleSpec } from '../../agent/intercept/rule-plan.ts';
import { IP6_NFT_SAVE_INSTALLED, LEGACY_SAVE_KUBE, NFT_SAVE_INSTALLED } from './samples.ts';

const V4: RuleSpec = { family: 4, nodeIP: '10.0.0.1', proxyPort: 15001 };
const V6: RuleSpec = { family: 6, nodeIP: 'fd00::1', proxyPort: 15001 };

const FULL_V4 = `*nat
:MESHLITE-PREROUTING - [0:0]
-A MESHLITE-PREROUTING -p tcp -m set --match-set meshlite-pods-v4 src -m set --match-set meshlite-dsts-v4 dst,dst -j DNAT --to-destination 10.0.0.1:15001
-I PREROUTING 1 -m comment --comment meshlite -j MESHLITE-PREROUTING
COMMIT
*filter
:MESHLITE-INPUT - [0:0]
-A MESHLITE-INPUT -d 10.0.0.1/32 -p tcp -m tcp --dport 15001 -m conntrack --ctstate DNAT -j ACCEPT
-A MESHLITE-INPUT -d 10.0.0.1/32 -p tcp -m tcp --dport 15001 -j REJECT --reject-with tcp-reset
-I INPUT 1 -m comment --comment meshlite -j MESHLITE-INPUT
COMMIT
`;

/** The installed sample with `edit` applied to its text. */
function edited(edit: (text: string) => string): ReturnType<typeof parseIptablesSave> {
  const text = edit(NFT_SAVE_INSTALLED);
  assert.notEqual(text, NFT_SAVE_INSTALLED, 'the edit changed something');
  return parseIptablesSave(text);
}

describe('ownChainRules', () => {
  it('spells IPv6 with a /128 guard and a bracketed DNAT target', () => {
    assert.deepEqual(ownChainRules(V6), {
      nat: ['-p tcp -m set --match-set meshlite-pods-v6 src -m set --match-set meshlite-dsts-v6 dst,dst -j DNAT --to-destination [fd00::1]:15001'],
      filter: [
        '-d fd00::1/128 -p tcp -m tcp --dport 15001 -m conntrack --ctstate DNAT -j ACCEPT',
        '-d fd00::1/128 -p tcp -m tcp --dport 15001 -j REJECT --reject-with tcp-reset',
      ],
    });
  });
});

describe('checkRules and planRules', () => {
  it('find nothing to do in what the kernel printed after an install (v4 and v6)', () => {
    assert.deepEqual(checkRules(parseIptablesSave(NFT_SAVE_INSTALLED), V4), []);
    assert.deepEqual(planRules(parseIptablesSave(IP6_NFT_SAVE_INSTALLED), V6), { problems: [], script: null });
  });

  it('install everything into an empty dump, jumps at position 1', () => {
    const plan = planRules(parseIptablesSave(''), V4);
    assert.deepEqual(plan.problems.map((p) => p.kind), ['chain-missing', 'jump-missing', 'chain-missing', 'jump-missing']);
    assert.equal(plan.script, FULL_V4);
  });

  it('put the jump first on a legacy node, with kube-proxy and a CNI chain already there', () => {
    const plan = planRules(parseIptablesSave(LEGACY_SAVE_KUBE), V4);
    assert.equal(plan.script, FULL_V4);
  });

  it('re-insert only a deleted jump', () => {
    const dump = edited((text) => text.replace('-A PREROUTING -m comment --comment meshlite -j MESHLITE-PREROUTING\n', ''));
    assert.deepEqual(planRules(dump, V4), {
      problems: [{ kind: 'jump-missing', table: 'nat', builtin: 'PREROUTING' }],
      script: '*nat\n-I PREROUTING 1 -m comment --comment meshlite -j MESHLITE-PREROUTING\nCOMMIT\n',
    });
  });

  it('move a jump that ended up after kube-proxy\'s, deleting it by its printed spec', () => {
    const dump = edited((text) =>
      text.replace(
        '-A PREROUTING -m comment --comment meshlite -j MESHLITE-PREROUTING\n-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n',
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n-A PREROUTING -m comment --comment "meshlite" -j MESHLITE-PREROUTING\n',
      ),
    );
    assert.deepEqual(planRules(dump, V4), {
      problems: [{ kind: 'jump-misplaced', table: 'nat', builtin: 'PREROUTING' }],
      script: '*nat\n-D PREROUTING -m comment --comment "meshlite" -j MESHLITE-PREROUTING\n-I PREROUTING 1 -m comment --comment meshlite -j MESHLITE-PREROUTING\nCOMMIT\n',
    });
  });

  it('leave a jump that another tool put ahead of it, as long as kube-proxy\'s comes after', () => {
    const dump = edited((text) => text.replace('-A PREROUTING -m comment --comment meshlite', '-A PREROUTING -j CNI-HOSTPORT-DNAT\n-A PREROUTING -m comment --comment meshlite'));
    assert.deepEqual(checkRules(dump, V4), []);
  });

  it('remove duplicates and a changed jump, keeping exactly one', () => {
    const duplicated = edited((text) => text.replace('-A INPUT -m comment --comment meshlite -j MESHLITE-INPUT\n', '-A INPUT -m comment --comment meshlite -j MESHLITE-INPUT\n'.repeat(3)));
    assert.deepEqual(planRules(duplicated, V4), {
      problems: [{ kind: 'jump-duplicated', table: 'filter', builtin: 'INPUT', count: 3 }],
      script: `*filter\n${'-D INPUT -m comment --comment meshlite -j MESHLITE-INPUT\n'.repeat(3)}-I INPUT 1 -m comment --comment meshlite -j MESHLITE-INPUT\nCOMMIT\n`,
    });
    const changed = edited((text) => text.replace('-A INPUT -m comment --comment meshlite -j MESHLITE-INPUT', '-A INPUT -i eth0 -m comment --comment meshlite -j MESHLITE-INPUT'));
    assert.deepEqual(planRules(changed, V4).script, '*filter\n-D INPUT -i eth0 -m comment --comment meshlite -j MESHLITE-INPUT\n-I INPUT 1 -m comment --comment meshlite -j MESHLITE-INPUT\nCOMMIT\n');
  });

  it('rewrite a chain whose rules were flushed or edited, or are for another port, without touching a right jump', () => {
    const flushed = edited((text) => text.replace(/-A MESHLITE-PREROUTING .*\n/, ''));
    assert.deepEqual(planRules(flushed, V4).script, FULL_V4.split('-I PREROUTING')[0].concat('COMMIT\n'));
    const otherPort = planRules(parseIptablesSave(NFT_SAVE_INSTALLED), { ...V4, proxyPort: 15006 });
    assert.deepEqual(otherPort.problems, [
      { kind: 'chain-changed', table: 'nat', chain: 'MESHLITE-PREROUTING' },
      { kind: 'chain-changed', table: 'filter', chain: 'MESHLITE-INPUT' },
    ]);
    assert.equal(otherPort.script, FULL_V4.replaceAll('15001', '15006').replace(/-I .*\n/g, ''));
  });
});
