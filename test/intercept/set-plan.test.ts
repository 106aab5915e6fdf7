// Set members' spelling, reading ipset save, and the ipset restore script of the difference.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DesiredSets } from '../../agent/intercept/desired-sets.ts';
import { parseIpsetNames, parseIpsetSave } from '../../agent/intercept/ipset-dump.ts';
import { setDefinitions } from '../../agent/intercept/names.ts';
import { destinationMember, podMember, savedMember } from '../../agent/intercept/set-members.ts';
import { planSets } from '../../agent/intercept/set-plan.ts';
import { IPSET_SAVE, IPSET_SAVE_TIMEOUTS } from './samples.ts';

describe('set members', () => {
  it('spell addresses as the kernel prints them: IPv6 compressed and lower case, IPv4-mapped as IPv4', () => {
    assert.deepEqual(podMember('10.1.0.5'), { family: 4, member: '10.1.0.5' });
    assert.deepEqual(podMember('FD00:0:0:1:0:0:0:5'), { family: 6, member: 'fd00:0:0:1::5' });
    assert.deepEqual(podMember('2001:DB8:0:0:1:0:0:1'), { family: 6, member: '2001:db8::1:0:0:1' });
    assert.deepEqual(podMember('::ffff:10.1.0.9'), { family: 4, member: '10.1.0.9' });
    assert.equal(podMember('10.1.0.256'), null);
    assert.equal(podMember('fe80::1%eth0'), null);
    assert.equal(podMember('pod-a'), null);
  });

  it('spell destinations ip,tcp:port and refuse ports outside 1..65535', () => {
    assert.deepEqual(destinationMember('10.96.0.10', 8080), { family: 4, member: '10.96.0.10,tcp:8080' });
    assert.deepEqual(destinationMember('FD00:96::A', 443), { family: 6, member: 'fd00:96::a,tcp:443' });
    for (const port of [0, 65_536, 80.5, Number.NaN]) assert.equal(destinationMember('10.96.0.10', port), null, String(port));
  });

  it('read members as saved, keeping what is not an address or TCP as printed', () => {
    assert.equal(savedMember('10.96.0.10,tcp:8080'), '10.96.0.10,tcp:8080');
    assert.equal(savedMember('10.96.0.10,8080'), '10.96.0.10,tcp:8080');
    assert.equal(savedMember('2001:db8::1:0:0:1,tcp:443'), '2001:db8::1:0:0:1,tcp:443');
    assert.equal(savedMember('10.96.0.11,udp:53'), '10.96.0.11,udp:53');
    assert.equal(savedMember('10.96.0.11,icmp:ping'), '10.96.0.11,icmp:ping');
    assert.equal(savedMember('fd00:0:0:1::5'), 'fd00:0:0:1::5');
  });
});

describe('parseIpsetSave', () => {
  it('reads every set with its type, family and members, others\' sets included', () => {
    const sets = parseIpsetSave(IPSET_SAVE);
    assert.deepEqual([...sets.keys()], ['meshlite-pods-v4', 'meshlite-dsts-v4', 'meshlite-pods-v6', 'meshlite-dsts-v6', 'KUBE-LOOP-BACK', 'KUBE-SERVICE-SETS']);
    assert.deepEqual(sets.get('meshlite-dsts-v4'), {
      name: 'meshlite-dsts-v4',
      type: 'hash:ip,port',
      family: 'inet',
      timeoutS: null,
      members: new Set(['10.96.0.10,tcp:8080', '10.96.0.11,udp:53']),
      expiring: new Set(),
    });
    assert.deepEqual(sets.get('meshlite-dsts-v6')?.members, new Set(['2001:db8::1:0:0:1,tcp:443']));
    assert.equal(sets.get('KUBE-SERVICE-SETS')?.family, null);
  });

  it('reads a set\'s timeout support and its members without their timeouts, telling expiring from permanent ones', () => {
    const sets = parseIpsetSave(IPSET_SAVE_TIMEOUTS);
    assert.deepEqual(sets.get('meshlite-pods-v4'), {
      name: 'meshlite-pods-v4',
      type: 'hash:ip',
      family: 'inet',
      timeoutS: 3,
      members: new Set(['10.1.0.6', '10.1.0.5']),
      expiring: new Set(['10.1.0.5']),
    });
    assert.deepEqual(sets.get('meshlite-pods-v6')?.expiring, new Set(['fd00:0:0:1::5']));
    assert.equal(sets.get('meshlite-dsts-v4')?.timeoutS, null);
  });

  it('reads ipset list -n', () => {
    assert.deepEqual(parseIpsetNames('meshlite-pods-v4\nKUBE-CLUSTER-IP\n\n'), ['meshlite-pods-v4', 'KUBE-CLUSTER-IP']);
    assert.deepEqual(parseIpsetNames(''), []);
  });
});

describe('planSets', () => {
  const current = parseIpsetSave(IPSET_SAVE);
  const currentWithTimeouts = parseIpsetSave(IPSET_SAVE_TIMEOUTS);

  it('creates missing sets (with their limits, the pods set with timeout support) and adds pods with the timeout, in one script', () => {
    const desired = new Map([['meshlite-pods-v4', new Set(['10.1.0.5'])]]);
    assert.deepEqual(planSets(setDefinitions(4), desired, new Map(), 'open'), {
      changes: [
        { name: 'meshlite-pods-v4', created: true, added: ['10.1.0.5'], removed: [] },
        { name: 'meshlite-dsts-v4', created: true, added: [], removed: [] },
      ],
      conflicts: [],
      script:
        'create meshlite-pods-v4 hash:ip family inet maxelem 65536 timeout 3 -exist\nadd meshlite-pods-v4 10.1.0.5 timeout 2 -exist\n' +
        'create meshlite-dsts-v4 hash:ip,port family inet maxelem 1048576 -exist\n',
    });
  });

  it('fail closed creates the same sets and adds pods permanent (timeout 0)', () => {
    const desired = new Map([['meshlite-pods-v4', new Set(['10.1.0.5'])]]);
    assert.equal(
      planSets(setDefinitions(4), desired, new Map(), 'closed').script,
      'create meshlite-pods-v4 hash:ip family inet maxelem 65536 timeout 3 -exist\nadd meshlite-pods-v4 10.1.0.5 timeout 0 -exist\n' +
        'create meshlite-dsts-v4 hash:ip,port family inet maxelem 1048576 -exist\n',
    );
  });

  it('writes only the difference, never re-creating a set that exists, comparing members without their timeouts', () => {
    const desired = new Map([
      ['meshlite-pods-v4', new Set(['10.1.0.5', '10.1.0.6', '10.1.0.7'])],
      ['meshlite-dsts-v4', new Set(['10.96.0.11,tcp:9000'])],
    ]);
    assert.deepEqual(planSets(setDefinitions(4), desired, currentWithTimeouts, 'open'), {
      changes: [
        { name: 'meshlite-pods-v4', created: false, added: ['10.1.0.7'], removed: [] },
        { name: 'meshlite-dsts-v4', created: false, added: ['10.96.0.11,tcp:9000'], removed: ['10.96.0.10,tcp:8080'] },
      ],
      conflicts: [],
      script: 'add meshlite-pods-v4 10.1.0.7 timeout 2 -exist\ndel meshlite-dsts-v4 10.96.0.10,tcp:8080 -exist\nadd meshlite-dsts-v4 10.96.0.11,tcp:9000 -exist\n',
    });
  });

  it('fail closed keeps an older set without timeout support and writes only the difference into it, without timeouts', () => {
    const desired = new Map([
      ['meshlite-pods-v4', new Set(['10.1.0.5', '10.1.0.6'])],
      ['meshlite-dsts-v4', new Set(['10.96.0.10,tcp:8080'])],
    ]);
    assert.deepEqual(planSets(setDefinitions(4), desired, current, 'closed'), {
      changes: [
        { name: 'meshlite-pods-v4', created: false, added: ['10.1.0.6'], removed: [] },
        { name: 'meshlite-dsts-v4', created: false, added: [], removed: ['10.96.0.11,udp:53'] },
      ],
      conflicts: [],
      script: 'add meshlite-pods-v4 10.1.0.6 -exist\ndel meshlite-dsts-v4 10.96.0.11,udp:53 -exist\n',
    });
  });

  it('fail closed makes the expiring members it keeps permanent', () => {
    const desired = new Map([['meshlite-pods-v4', new Set(['10.1.0.5', '10.1.0.6'])], ['meshlite-dsts-v4', new Set(['10.96.0.10,tcp:8080'])]]);
    assert.deepEqual(planSets(setDefinitions(4), desired, currentWithTimeouts, 'closed'), {
      changes: [{ name: 'meshlite-pods-v4', created: false, added: [], removed: [], madePermanent: ['10.1.0.5'] }],
      conflicts: [],
      script: 'add meshlite-pods-v4 10.1.0.5 timeout 0 -exist\n',
    });
  });

  it('fail open rebuilds an older pods set without timeout support in a new set and swaps it in (rules reference the old one)', () => {
    const desired = new Map([
      ['meshlite-pods-v4', new Set(['10.1.0.5', '10.1.0.6'])],
      ['meshlite-dsts-v4', new Set(['10.96.0.10,tcp:8080', '10.96.0.11,udp:53'])],
    ]);
    assert.deepEqual(planSets(setDefinitions(4), desired, current, 'open'), {
      changes: [{ name: 'meshlite-pods-v4', created: false, added: ['10.1.0.6'], removed: [], migrated: true }],
      conflicts: [],
      script:
        'create meshlite-pods-v4-new hash:ip family inet maxelem 65536 timeout 3 -exist\n' +
        'flush meshlite-pods-v4-new\n' +
        'add meshlite-pods-v4-new 10.1.0.5 timeout 2 -exist\n' +
        'add meshlite-pods-v4-new 10.1.0.6 timeout 2 -exist\n' +
        'swap meshlite-pods-v4-new meshlite-pods-v4\n' +
        'destroy meshlite-pods-v4-new\n',
    });
  });

  it('has nothing to do when the kernel already holds the desired members (IPv6 spelled as the kernel does)', () => {
    const desired = new DesiredSets([6]);
    desired.replacePods(['FD00:0:0:1:0:0:0:5']);
    desired.replaceDestinations([{ ip: '2001:db8:0:0:1:0:0:1', port: 443 }]);
    assert.deepEqual(planSets(setDefinitions(6), desired.snapshot(), currentWithTimeouts, 'open'), { changes: [], conflicts: [], script: null });
    assert.deepEqual(planSets(setDefinitions(6), desired.snapshot(), current, 'closed'), { changes: [], conflicts: [], script: null });
  });

  it('reports a set of another type and leaves it out of the script', () => {
    const wrong = parseIpsetSave('create meshlite-dsts-v4 hash:ip family inet hashsize 1024 maxelem 65536\n');
    const plan = planSets(setDefinitions(4), new Map([['meshlite-dsts-v4', new Set(['10.96.0.10,tcp:8080'])]]), wrong, 'open');
    assert.deepEqual(plan.conflicts, ['meshlite-dsts-v4: is hash:ip family inet, expected hash:ip,port family inet']);
    assert.equal(plan.script, 'create meshlite-pods-v4 hash:ip family inet maxelem 65536 timeout 3 -exist\n');
  });
});

describe('DesiredSets', () => {
  it('replaces one side whole, keeps earlier snapshots unchanged, and says what it skipped', () => {
    const desired = new DesiredSets([4]);
    assert.deepEqual(desired.replacePods(['10.1.0.5', 'fd00::5', 'nope']), { invalid: ['nope'], otherFamily: 1 });
    const first = desired.snapshot();
    desired.replacePods(['10.1.0.6']);
    desired.replaceDestinations([{ ip: '10.96.0.10', port: 8080 }, { ip: '10.96.0.10', port: 8080 }]);
    assert.deepEqual(new Set(first.get('meshlite-pods-v4')), new Set(['10.1.0.5']));
    assert.deepEqual(new Set(first.get('meshlite-dsts-v4')), new Set());
    assert.deepEqual([...desired.snapshot()].map(([name, members]) => [name, new Set(members)]), [
      ['meshlite-pods-v4', new Set(['10.1.0.6'])],
      ['meshlite-dsts-v4', new Set(['10.96.0.10,tcp:8080'])],
    ]);
  });

  it('destination changes: a member comes with its first claim and goes with its last, whatever its spelling', () => {
    const desired = new DesiredSets([4]);
    const before = desired.snapshot();
    const claimed = (ip: string, port = 50051) => ({ ip, port, claimed: true });
    const givenUp = (ip: string, port = 50051) => ({ ip, port, claimed: false });
    assert.deepEqual(desired.changeDestinations([claimed('10.96.0.10'), claimed('10.1.0.5'), claimed('fd00::7'), claimed('nope'), claimed('10.1.0.6', 0)]), {
      invalid: ['nope:50051', '10.1.0.6:0'],
      otherFamily: 1,
    });
    assert.deepEqual(new Set(desired.snapshot().get('meshlite-dsts-v4')), new Set(['10.96.0.10,tcp:50051', '10.1.0.5,tcp:50051']));
    assert.equal(before.get('meshlite-dsts-v4')?.size, 0, 'an earlier snapshot stays as it was');
    // Two spellings of one member: it stays until both are given up.
    desired.changeDestinations([claimed('::ffff:10.1.0.5'), givenUp('10.1.0.5')]);
    assert.equal(desired.snapshot().get('meshlite-dsts-v4')?.has('10.1.0.5,tcp:50051'), true);
    desired.changeDestinations([givenUp('::ffff:10.1.0.5'), givenUp('10.9.9.9'), givenUp('nope'), givenUp('fd00::7')]);
    assert.deepEqual([...(desired.snapshot().get('meshlite-dsts-v4') ?? [])], ['10.96.0.10,tcp:50051']);
    // A replace sets the counts too: a change after it gives up what the replace listed.
    desired.replaceDestinations([{ ip: '10.1.0.8', port: 80 }, { ip: '10.1.0.8', port: 80 }]);
    desired.changeDestinations([givenUp('10.1.0.8', 80)]);
    assert.equal(desired.snapshot().get('meshlite-dsts-v4')?.has('10.1.0.8,tcp:80'), true, 'listed twice, given up once');
    desired.changeDestinations([givenUp('10.1.0.8', 80)]);
    assert.equal(desired.snapshot().get('meshlite-dsts-v4')?.size, 0);
  });

  it('destinations replaced again: what is gone leaves, what is invalid is said again', () => {
    const desired = new DesiredSets([4]);
    const first = [{ ip: '10.1.0.5', port: 80 }, { ip: 'nope', port: 80 }, { ip: '10.1.0.6', port: 70_000 }];
    const skipped = { invalid: ['nope:80', '10.1.0.6:70000'], otherFamily: 0 };
    assert.deepEqual(desired.replaceDestinations(first), skipped);
    assert.deepEqual(desired.replaceDestinations(first), skipped);
    assert.deepEqual(new Set(desired.snapshot().get('meshlite-dsts-v4')), new Set(['10.1.0.5,tcp:80']));
    // Many addresses, then few.
    desired.replaceDestinations(Array.from({ length: 3000 }, (_, n) => ({ ip: `10.2.${n >> 8}.${n & 255}`, port: 80 })));
    assert.equal(desired.snapshot().get('meshlite-dsts-v4')?.size, 3000);
    assert.deepEqual(desired.replaceDestinations([{ ip: '10.1.0.5', port: 81 }, { ip: '::ffff:10.1.0.9', port: 80 }]), { invalid: [], otherFamily: 0 });
    assert.deepEqual(new Set(desired.snapshot().get('meshlite-dsts-v4')), new Set(['10.1.0.5,tcp:81', '10.1.0.9,tcp:80']));
  });
});
