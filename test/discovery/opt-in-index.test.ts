// The opt-in index: exact enroll/unenroll sequences per opt-in rule (see docs/architecture.md, Enrollment), IP reuse in both orders, static pods.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OptInIndex, staticPodRecords } from '../../agent/discovery/opt-in-index.ts';
import type { PodSpec } from '../../agent/discovery/static-file.ts';
import { NODE, ns, pod, show } from '../support/opt-in-records.ts';

/** An index with a recorder: `take()` returns the changes since the last call, as `+ ip ns/name` / `- ip ns/name`. */
function harness(): { index: OptInIndex; take: () => string[] } {
  const index = new OptInIndex(NODE);
  let changes: string[] = [];
  index.subscribe((change) => changes.push(show(change)));
  return {
    index,
    take: () => {
      const taken = changes;
      changes = [];
      return taken;
    },
  };
}

function entries(index: OptInIndex): string[] {
  return [...index.enrolled].map(([ip, p]) => `${ip} ${p.namespace}/${p.name}`).sort();
}

describe('OptInIndex: a pod and its own annotation', () => {
  it('enrolls an enabled pod on apply and unenrolls it on delete', () => {
    const { index, take } = harness();
    index.applyPod(pod('a', { ips: ['10.0.0.1'], inject: 'enabled' }));
    assert.deepEqual(take(), ['+ 10.0.0.1 app/a']);
    assert.deepEqual(entries(index), ['10.0.0.1 app/a']);
    index.applyPod(pod('a', { ips: ['10.0.0.1'], inject: 'enabled' }));
    assert.deepEqual(take(), [], 'a new version that changes nothing emits nothing');
    index.deletePod(pod('a', { ips: ['10.0.0.1'], inject: 'enabled' }));
    assert.deepEqual(take(), ['- 10.0.0.1 app/a']);
    assert.deepEqual(entries(index), []);
  });

  it('leaves out a pod annotated disabled, or not annotated anywhere', () => {
    const { index, take } = harness();
    index.applyPod(pod('a', { ips: ['10.0.0.1'], inject: 'disabled' }));
    index.applyPod(pod('b', { ips: ['10.0.0.2'] }));
    assert.deepEqual(take(), []);
    assert.deepEqual(entries(index), []);
  });

  it('follows flips of the pod annotation without the pod restarting', () => {
    const { index, take } = harness();
    index.applyNamespace(ns('app', 'enabled'));
    index.applyPod(pod('a', { ips: ['10.0.0.1'], inject: 'disabled' }));
    assert.deepEqual(take(), []);
    index.applyPod(pod('a', { ips: ['10.0.0.1'], inject: 'enabled' }));
    assert.deepEqual(take(), ['+ 10.0.0.1 app/a']);
    index.applyPod(pod('a', { ips: ['10.0.0.1'], inject: 'disabled' }));
    assert.deepEqual(take(), ['- 10.0.0.1 app/a']);
    index.applyPod(pod('a', { ips: ['10.0.0.1'], inject: null }));
    assert.deepEqual(take(), ['+ 10.0.0.1 app/a'], 'annotation removed: the namespace decides');
    index.applyPod(pod('a', { ips: ['10.0.0.1'], inject: 'enabled' }));
    assert.deepEqual(take(), [], 'enabled by itself instead of by its namespace: still the same enrollment');
  });

  it('ignores pods of other nodes, and drops a pod whose record names another node', () => {
    const { index, take } = harness();
    index.applyPod(pod('a', { ips: ['10.0.0.1'], inject: 'enabled', nodeName: 'node-2' }));
    index.applyPod(pod('b', { ips: ['10.0.0.2'], inject: 'enabled', nodeName: '' }));
    assert.deepEqual(take(), []);
    index.applyPod(pod('b', { ips: ['10.0.0.2'], inject: 'enabled' }));
    assert.deepEqual(take(), ['+ 10.0.0.2 app/b']);
    index.applyPod(pod('b', { ips: ['10.0.0.2'], inject: 'enabled', nodeName: 'node-2' }));
    assert.deepEqual(take(), ['- 10.0.0.2 app/b']);
    assert.deepEqual(entries(index), []);
  });

  it('never enrolls a hostNetwork pod, whatever its annotation or its namespace say', () => {
    const { index, take } = harness();
    index.applyNamespace(ns('app', 'enabled'));
    index.applyPod(pod('a', { ips: ['192.168.1.10'], inject: 'enabled', hostNetwork: true }));
    index.applyPod(pod('b', { ips: ['192.168.1.10'], hostNetwork: true }));
    assert.deepEqual(take(), []);
    assert.deepEqual(entries(index), []);
  });

  it('enrolls a Pending pod that has its IP, and unenrolls it once Succeeded or Failed', () => {
    const { index, take } = harness();
    index.applyPod(pod('a', { ips: ['10.0.0.1'], inject: 'enabled', phase: 'Pending' }));
    index.applyPod(pod('b', { ips: ['10.0.0.2'], inject: 'enabled', phase: 'Running' }));
    assert.deepEqual(take(), ['+ 10.0.0.1 app/a', '+ 10.0.0.2 app/b']);
    index.applyPod(pod('a', { ips: ['10.0.0.1'], inject: 'enabled', phase: 'Succeeded' }));
    assert.deepEqual(take(), ['- 10.0.0.1 app/a']);
    index.applyPod(pod('b', { ips: ['10.0.0.2'], inject: 'enabled', phase: 'Failed' }));
    assert.deepEqual(take(), ['- 10.0.0.2 app/b']);
    index.applyPod(pod('c', { ips: ['10.0.0.3'], inject: 'enabled', phase: 'Failed' }));
    assert.deepEqual(take(), [], 'first seen already finished');
    index.deletePod(pod('a', { ips: ['10.0.0.1'], inject: 'enabled', phase: 'Succeeded' }));
    assert.deepEqual(take(), []);
    assert.deepEqual(entries(index), []);
  });

  it('waits for the IP of a pod that has none yet', () => {
    const { index, take } = harness();
    index.applyPod(pod('a', { inject: 'enabled', phase: 'Pending' }));
    assert.deepEqual(take(), []);
    index.applyPod(pod('a', { ips: ['10.0.0.1'], inject: 'enabled', phase: 'Pending' }));
    assert.deepEqual(take(), ['+ 10.0.0.1 app/a']);
    index.deletePod(pod('never-had-one', { inject: 'enabled' }));
    assert.deepEqual(take(), []);
  });

  it('enrolls every IP of a dual-stack pod and follows a change of one of them', () => {
    const { index, take } = harness();
    index.applyPod(pod('a', { ips: ['10.0.0.1', 'fd00::1'], inject: 'enabled' }));
    assert.deepEqual(take(), ['+ 10.0.0.1 app/a', '+ fd00::1 app/a']);
    index.applyPod(pod('a', { ips: ['10.0.0.1', 'fd00::2'], inject: 'enabled' }));
    assert.deepEqual(take(), ['- fd00::1 app/a', '+ fd00::2 app/a']);
    index.applyPod(pod('a', { ips: ['10.0.0.1', 'fd00::2'], inject: 'disabled' }));
    assert.deepEqual(take(), ['- 10.0.0.1 app/a', '- fd00::2 app/a']);
    index.applyPod(pod('a', { ips: ['10.0.0.1', 'fd00::2'], inject: 'enabled' }));
    assert.deepEqual(take(), ['+ 10.0.0.1 app/a', '+ fd00::2 app/a']);
    index.deletePod(pod('a'));
    assert.deepEqual(take(), ['- 10.0.0.1 app/a', '- fd00::2 app/a']);
  });

  it('counts an invalid pod record as absent, and its correction as a new pod', () => {
    const { index, take } = harness();
    index.applyPod(pod('a', { ips: ['10.0.0.1'], inject: 'enabled' }));
    assert.deepEqual(take(), ['+ 10.0.0.1 app/a']);
    index.applyPod(pod('a', { ips: ['10.0.0.1'], inject: 'enabled', invalid: 'status.podIPs[0]: not an IP' }));
    assert.deepEqual(take(), ['- 10.0.0.1 app/a']);
    index.applyPod(pod('a', { ips: ['10.0.0.1'], inject: 'enabled' }));
    assert.deepEqual(take(), ['+ 10.0.0.1 app/a']);
  });
});

describe('OptInIndex: the namespace annotation', () => {
  it('re-evaluates only the pods of the namespace that changed, and only those without their own value', () => {
    const { index, take } = harness();
    index.applyPod(pod('plain', { namespace: 'shop', ips: ['10.0.0.1'] }));
    index.applyPod(pod('opted-out', { namespace: 'shop', ips: ['10.0.0.2'], inject: 'disabled' }));
    index.applyPod(pod('opted-in', { namespace: 'shop', ips: ['10.0.0.3'], inject: 'enabled' }));
    index.applyPod(pod('elsewhere', { namespace: 'blog', ips: ['10.0.1.1'] }));
    assert.deepEqual(take(), ['+ 10.0.0.3 shop/opted-in']);
    index.applyNamespace(ns('shop', 'enabled'));
    assert.deepEqual(take(), ['+ 10.0.0.1 shop/plain']);
    index.applyNamespace(ns('shop', 'enabled'));
    assert.deepEqual(take(), [], 'same annotation: nothing to do');
    index.applyNamespace(ns('shop', 'disabled'));
    assert.deepEqual(take(), ['- 10.0.0.1 shop/plain'], "the pod's own enabled wins over its namespace's disabled");
    index.applyNamespace(ns('shop', null));
    assert.deepEqual(take(), []);
    index.applyNamespace(ns('blog', 'enabled'));
    assert.deepEqual(take(), ['+ 10.0.1.1 blog/elsewhere']);
    assert.deepEqual(entries(index), ['10.0.0.3 shop/opted-in', '10.0.1.1 blog/elsewhere']);
  });

  it('applies the namespace to pods that arrive after it', () => {
    const { index, take } = harness();
    index.applyNamespace(ns('shop', 'enabled'));
    assert.deepEqual(take(), []);
    index.applyPod(pod('a', { namespace: 'shop', ips: ['10.0.0.1'] }));
    index.applyPod(pod('b', { namespace: 'other', ips: ['10.0.0.2'] }));
    assert.deepEqual(take(), ['+ 10.0.0.1 shop/a']);
  });

  it('uses only the pod annotation while the namespace is not known yet', () => {
    const { index, take } = harness();
    index.applyPod(pod('plain', { namespace: 'shop', ips: ['10.0.0.1'] }));
    index.applyPod(pod('own', { namespace: 'shop', ips: ['10.0.0.2'], inject: 'enabled' }));
    assert.deepEqual(take(), ['+ 10.0.0.2 shop/own']);
    index.applyNamespace(ns('shop', 'enabled'));
    assert.deepEqual(take(), ['+ 10.0.0.1 shop/plain']);
  });

  it('falls back to the pods’ own annotations when the namespace is deleted', () => {
    const { index, take } = harness();
    index.applyNamespace(ns('shop', 'enabled'));
    index.applyPod(pod('plain', { namespace: 'shop', ips: ['10.0.0.1'] }));
    index.applyPod(pod('own', { namespace: 'shop', ips: ['10.0.0.2'], inject: 'enabled' }));
    assert.deepEqual(take(), ['+ 10.0.0.1 shop/plain', '+ 10.0.0.2 shop/own']);
    index.deleteNamespace(ns('shop', 'enabled'));
    assert.deepEqual(take(), ['- 10.0.0.1 shop/plain']);
    index.deleteNamespace(ns('shop', 'enabled'));
    assert.deepEqual(take(), [], 'deleting an unknown namespace changes nothing');
    assert.deepEqual(entries(index), ['10.0.0.2 shop/own']);
  });

  it('counts an invalid namespace record as absent', () => {
    const { index, take } = harness();
    index.applyNamespace(ns('shop', 'enabled'));
    index.applyPod(pod('plain', { namespace: 'shop', ips: ['10.0.0.1'] }));
    assert.deepEqual(take(), ['+ 10.0.0.1 shop/plain']);
    index.applyNamespace(ns('shop', 'enabled', 'metadata.annotations: not a mapping'));
    assert.deepEqual(take(), ['- 10.0.0.1 shop/plain']);
    index.applyNamespace(ns('shop', 'enabled'));
    assert.deepEqual(take(), ['+ 10.0.0.1 shop/plain']);
  });
});

describe('OptInIndex: an IP reused by another pod', () => {
  const X = '10.0.0.9';

  it('A (opted in) deleted, then B (not opted in) with its IP: unenrolled', () => {
    const { index, take } = harness();
    index.applyPod(pod('a', { ips: [X], inject: 'enabled' }));
    assert.deepEqual(take(), [`+ ${X} app/a`]);
    index.deletePod(pod('a', { ips: [X], inject: 'enabled' }));
    assert.deepEqual(take(), [`- ${X} app/a`]);
    index.applyPod(pod('b', { ips: [X] }));
    assert.deepEqual(take(), []);
    assert.equal(index.podAt(X), undefined);
  });

  it('B (not opted in) added with the IP before A (opted in) is deleted: unenrolled at once, and stays so', () => {
    const { index, take } = harness();
    index.applyPod(pod('a', { ips: [X], inject: 'enabled' }));
    assert.deepEqual(take(), [`+ ${X} app/a`]);
    index.applyPod(pod('b', { ips: [X] }));
    assert.deepEqual(take(), [`- ${X} app/a`], 'B holds the IP now: A must not be credited with its traffic');
    index.applyPod(pod('a', { ips: [X], inject: 'enabled', phase: 'Running' }));
    assert.deepEqual(take(), [], "a late status update of A's stale record does not take the IP back");
    index.deletePod(pod('a', { ips: [X], inject: 'enabled' }));
    assert.deepEqual(take(), []);
    assert.deepEqual(entries(index), []);
  });

  it('A (opted in) deleted, then B (opted in) with its IP: enrolled to B', () => {
    const { index, take } = harness();
    index.applyPod(pod('a', { ips: [X], inject: 'enabled' }));
    index.deletePod(pod('a', { ips: [X], inject: 'enabled' }));
    index.applyPod(pod('b', { ips: [X], inject: 'enabled' }));
    assert.deepEqual(take(), [`+ ${X} app/a`, `- ${X} app/a`, `+ ${X} app/b`]);
    assert.deepEqual(index.podAt(X), { namespace: 'app', name: 'b' });
  });

  it('B (opted in) added with the IP before A (opted in) is deleted: moves to B, and stays with B', () => {
    const { index, take } = harness();
    index.applyPod(pod('a', { ips: [X], inject: 'enabled' }));
    assert.deepEqual(take(), [`+ ${X} app/a`]);
    index.applyPod(pod('b', { ips: [X], inject: 'enabled' }));
    assert.deepEqual(take(), [`- ${X} app/a`, `+ ${X} app/b`]);
    index.deletePod(pod('a', { ips: [X], inject: 'enabled' }));
    assert.deepEqual(take(), []);
    assert.deepEqual(entries(index), [`${X} app/b`]);
  });

  it('A (not opted in) replaced by B (opted in) before its delete: enrolled to B; A deleted keeps it', () => {
    const { index, take } = harness();
    index.applyPod(pod('a', { ips: [X] }));
    index.applyPod(pod('b', { ips: [X], inject: 'enabled' }));
    assert.deepEqual(take(), [`+ ${X} app/b`]);
    index.deletePod(pod('a', { ips: [X] }));
    assert.deepEqual(take(), []);
    assert.deepEqual(entries(index), [`${X} app/b`]);
  });

  it('the IP reused across namespaces: the namespace of the stale pod no longer matters', () => {
    const { index, take } = harness();
    index.applyNamespace(ns('old', 'enabled'));
    index.applyPod(pod('a', { namespace: 'old', ips: [X] }));
    index.applyPod(pod('b', { namespace: 'new', ips: [X] }));
    assert.deepEqual(take(), [`+ ${X} old/a`, `- ${X} old/a`]);
    index.applyNamespace(ns('old', 'disabled'));
    index.applyNamespace(ns('old', 'enabled'));
    assert.deepEqual(take(), []);
    index.applyNamespace(ns('new', 'enabled'));
    assert.deepEqual(take(), [`+ ${X} new/b`]);
  });
});

describe('OptInIndex: subscribers and lookups', () => {
  it('replays the current enrollment to a new subscriber, and stops after unsubscribe', () => {
    const index = new OptInIndex(NODE);
    index.applyPod(pod('a', { ips: ['10.0.0.1', 'fd00::1'], inject: 'enabled' }));
    const seen: string[] = [];
    const unsubscribe = index.subscribe((change) => seen.push(show(change)));
    assert.deepEqual(seen, ['+ 10.0.0.1 app/a', '+ fd00::1 app/a']);
    unsubscribe();
    index.deletePod(pod('a'));
    assert.equal(seen.length, 2);
  });

  it('has the index updated before a listener hears of a change', () => {
    const index = new OptInIndex(NODE);
    const seen: Array<[string, boolean]> = [];
    index.subscribe((change) => seen.push([show(change), index.enrolled.has(change.ip)]));
    index.applyPod(pod('a', { ips: ['10.0.0.1'], inject: 'enabled' }));
    index.applyPod(pod('a', { ips: ['10.0.0.1'], inject: 'disabled' }));
    assert.deepEqual(seen, [
      ['+ 10.0.0.1 app/a', true],
      ['- 10.0.0.1 app/a', false],
    ]);
  });

  it('delivers every change to every listener when one throws, then rethrows the first error', () => {
    const index = new OptInIndex(NODE);
    const seen: string[] = [];
    index.subscribe(() => {
      throw new Error('ipset failed');
    });
    index.subscribe((change) => seen.push(show(change)));
    assert.throws(() => index.applyPod(pod('a', { ips: ['10.0.0.1', '10.0.0.2'], inject: 'enabled' })), /ipset failed/);
    assert.deepEqual(seen, ['+ 10.0.0.1 app/a', '+ 10.0.0.2 app/a']);
    assert.deepEqual(entries(index), ['10.0.0.1 app/a', '10.0.0.2 app/a']);
  });

  it('finds the pod under the spellings a socket reports', () => {
    const index = new OptInIndex(NODE);
    index.applyPod(pod('a', { ips: ['10.0.0.1', 'fd00::1'], inject: 'enabled' }));
    const a = { namespace: 'app', name: 'a' };
    assert.deepEqual(index.podAt('10.0.0.1'), a);
    assert.deepEqual(index.podAt('::ffff:10.0.0.1'), a);
    assert.deepEqual(index.podAt('FD00:0::1'), a);
    assert.equal(index.podAt('10.0.0.2'), undefined);
    assert.equal(index.podAt('not an ip'), undefined);
  });
});

describe('OptInIndex: static discovery', () => {
  const spec = (name: string, ip: string, inject: PodSpec['inject'], namespace = 'default'): PodSpec => ({ namespace, name, ip, inject });

  it('turns the static file’s pods into records of this node, in the API’s spelling of addresses', () => {
    const records = staticPodRecords([spec('a', '10.0.0.1', 'enabled'), spec('b', '::ffff:10.0.0.2', 'disabled', 'shop')], NODE);
    assert.deepEqual(records, [
      {
        kind: 'Pod',
        metadata: { namespace: 'default', name: 'a', resourceVersion: '' },
        invalid: null,
        nodeName: NODE,
        ips: ['10.0.0.1'],
        hostNetwork: false,
        phase: 'Running',
        inject: 'enabled',
      },
      {
        kind: 'Pod',
        metadata: { namespace: 'shop', name: 'b', resourceVersion: '' },
        invalid: null,
        nodeName: NODE,
        ips: ['10.0.0.2'],
        hostNetwork: false,
        phase: 'Running',
        inject: 'disabled',
      },
    ]);
  });

  it('feeds the index with complete versions of the file and emits only the net difference', () => {
    const { index, take } = harness();
    index.replacePods(staticPodRecords([spec('a', '10.0.0.1', 'enabled'), spec('b', '10.0.0.2', 'disabled'), spec('c', 'fd00::3', 'enabled')], NODE));
    assert.deepEqual(take(), ['+ 10.0.0.1 default/a', '+ fd00::3 default/c']);
    // a and c swap their IPs, b opts in, c leaves.
    index.replacePods(staticPodRecords([spec('a', 'fd00::3', 'enabled'), spec('b', '10.0.0.2', 'enabled')], NODE));
    assert.deepEqual(take(), ['- fd00::3 default/c', '+ fd00::3 default/a', '- 10.0.0.1 default/a', '+ 10.0.0.2 default/b']);
    assert.deepEqual(entries(index), ['10.0.0.2 default/b', 'fd00::3 default/a']);
    index.replacePods(staticPodRecords([spec('a', 'fd00::3', 'enabled'), spec('b', '10.0.0.2', 'enabled')], NODE));
    assert.deepEqual(take(), []);
    index.replacePods([]);
    assert.deepEqual(take(), ['- fd00::3 default/a', '- 10.0.0.2 default/b']);
  });

  it('refuses a set that lists a pod twice, changing nothing', () => {
    const { index, take } = harness();
    const twice = staticPodRecords([spec('a', '10.0.0.1', 'enabled'), spec('a', '10.0.0.2', 'enabled')], NODE);
    assert.throws(() => index.replacePods(twice), /pod default\/a is listed twice/);
    assert.deepEqual(take(), []);
  });
});
