// The CNI ipClaims over the opt-in index: CNI IPs before the informer's, in both orders; DEL; pod deletion; IP reuse; static pods.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { claimOnlyRecord, CniIpClaims } from '../../agent/enrollment/cni-ip-claims.ts';
import type { PodRecord } from '../../agent/discovery/kube-objects.ts';
import { OptInIndex, staticPodRecords } from '../../agent/discovery/opt-in-index.ts';
import { NODE, ns, pod, show } from '../support/opt-in-records.ts';

/** An ipClaims over a fresh index, with the index's changes recorded as `+ ip ns/name` / `- ip ns/name`. */
function harness(): { ipClaims: CniIpClaims; index: OptInIndex; take: () => string[]; entries: () => string[] } {
  const index = new OptInIndex(NODE);
  let changes: string[] = [];
  index.subscribe((change) => changes.push(show(change)));
  return {
    ipClaims: new CniIpClaims(index),
    index,
    take: () => {
      const taken = changes;
      changes = [];
      return taken;
    },
    entries: () => [...index.enrolled].map(([ip, p]) => `${ip} ${p.namespace}/${p.name}`).sort(),
  };
}

/** An ADD for pod app/NAME whose record (as enrollment found it) is `record`. */
function add(ipClaims: CniIpClaims, containerId: string, name: string, ips: string[], record: PodRecord): boolean {
  return ipClaims.add({ containerId, namespace: record.metadata.namespace, name, ips, record });
}

describe('CniIpClaims: CNI IPs before the informer has them', () => {
  it('informer first (no IPs yet), then ADD: enrolled by the ADD; the status update with the same IPs changes nothing', () => {
    const { ipClaims, take, entries } = harness();
    const scheduled = pod('a', { inject: 'enabled', phase: 'Pending' });
    ipClaims.applyPod(scheduled);
    assert.deepEqual(take(), []);
    assert.equal(add(ipClaims, 'c1', 'a', ['10.0.0.1', 'fd00::1'], scheduled), true);
    assert.deepEqual(take(), ['+ 10.0.0.1 app/a', '+ fd00::1 app/a']);
    ipClaims.applyPod(pod('a', { inject: 'enabled', phase: 'Pending' }));
    assert.deepEqual(take(), [], 'a Pod update without IPs (status not written yet) keeps the CNI IPs');
    ipClaims.applyPod(pod('a', { inject: 'enabled', phase: 'Running', ips: ['10.0.0.1', 'fd00::1'] }));
    assert.deepEqual(take(), []);
    assert.deepEqual(entries(), ['10.0.0.1 app/a', 'fd00::1 app/a']);
  });

  it('ADD first (pod not in the informer yet), then the informer without IPs, then with them', () => {
    const { ipClaims, take, entries } = harness();
    add(ipClaims, 'c1', 'a', ['10.0.0.1'], pod('a', { inject: 'enabled', phase: 'Pending' }));
    assert.deepEqual(take(), ['+ 10.0.0.1 app/a']);
    ipClaims.applyPod(pod('a', { inject: 'enabled', phase: 'Pending' }));
    ipClaims.applyPod(pod('a', { inject: 'enabled', phase: 'Pending' }));
    assert.deepEqual(take(), []);
    ipClaims.applyPod(pod('a', { inject: 'enabled', ips: ['10.0.0.1'] }));
    assert.deepEqual(take(), []);
    assert.deepEqual(entries(), ['10.0.0.1 app/a']);
  });

  it('the informer’s record decides the opt-in once it has the pod, even while the CNI IPs are used', () => {
    const { ipClaims, take } = harness();
    add(ipClaims, 'c1', 'a', ['10.0.0.1'], pod('a', { inject: 'enabled', phase: 'Pending' }));
    assert.deepEqual(take(), ['+ 10.0.0.1 app/a']);
    ipClaims.applyPod(pod('a', { inject: 'disabled', phase: 'Pending' }));
    assert.deepEqual(take(), ['- 10.0.0.1 app/a'], 'annotation flipped before the status was written');
    ipClaims.applyPod(pod('a', { inject: 'enabled', phase: 'Pending' }));
    assert.deepEqual(take(), ['+ 10.0.0.1 app/a']);
  });

  it('IPs from the API that differ replace the CNI IPs: the API is authoritative', () => {
    const { ipClaims, take, entries } = harness();
    add(ipClaims, 'c1', 'a', ['10.0.0.1'], pod('a', { inject: 'enabled', phase: 'Pending' }));
    ipClaims.applyPod(pod('a', { inject: 'enabled', ips: ['10.0.0.2'] }));
    assert.deepEqual(take(), ['+ 10.0.0.1 app/a', '- 10.0.0.1 app/a', '+ 10.0.0.2 app/a']);
    ipClaims.applyPod(pod('a', { inject: 'enabled' }));
    assert.deepEqual(take(), ['- 10.0.0.2 app/a'], 'from then on the API alone says what the pod holds');
    assert.deepEqual(entries(), []);
  });

  it('a new sandbox of a pod whose status still lists the old one’s IPs: the ADD wins until the status changes', () => {
    const { ipClaims, take, entries } = harness();
    ipClaims.applyPod(pod('a', { inject: 'enabled', ips: ['10.0.0.1'] }));
    assert.deepEqual(take(), ['+ 10.0.0.1 app/a']);
    ipClaims.del('app', 'a', 'c1');
    add(ipClaims, 'c2', 'a', ['10.0.0.7'], pod('a', { inject: 'enabled', ips: ['10.0.0.1'] }));
    assert.deepEqual(take(), ['- 10.0.0.1 app/a', '+ 10.0.0.7 app/a']);
    ipClaims.applyPod(pod('a', { inject: 'enabled', ips: ['10.0.0.1'], phase: 'Running' }));
    assert.deepEqual(take(), [], 'a late update still listing the old sandbox’s IPs is stale');
    ipClaims.applyPod(pod('a', { inject: 'enabled', ips: ['10.0.0.7'] }));
    assert.deepEqual(take(), []);
    assert.deepEqual(entries(), ['10.0.0.7 app/a']);
  });

  it('a pod that does not opt in still claims its IPs, and is enrolled when its annotation flips', () => {
    const { ipClaims, take, entries } = harness();
    add(ipClaims, 'c1', 'a', ['10.0.0.1'], pod('a', { phase: 'Pending' }));
    assert.deepEqual(take(), []);
    ipClaims.applyNamespace(ns('app', 'enabled'));
    assert.deepEqual(take(), ['+ 10.0.0.1 app/a'], 'the namespace opts it in: the CNI IPs are its IPs');
    assert.deepEqual(entries(), ['10.0.0.1 app/a']);
  });
});

describe('CniIpClaims: DEL and pod deletion', () => {
  it('DEL releases what the container enrolled, is idempotent, and ignores another container', () => {
    const { ipClaims, take, entries } = harness();
    add(ipClaims, 'c1', 'a', ['10.0.0.1', 'fd00::1'], pod('a', { inject: 'enabled', phase: 'Pending' }));
    take();
    assert.deepEqual(ipClaims.del('app', 'a', 'c0'), [], 'the DEL of an older sandbox');
    assert.deepEqual(take(), []);
    assert.deepEqual(ipClaims.del('app', 'a', 'c1'), ['10.0.0.1', 'fd00::1']);
    assert.deepEqual(take(), ['- 10.0.0.1 app/a', '- fd00::1 app/a']);
    assert.deepEqual(ipClaims.del('app', 'a', 'c1'), []);
    assert.deepEqual(ipClaims.del('app', 'nobody', 'c9'), []);
    assert.deepEqual(take(), []);
    assert.deepEqual(entries(), []);
  });

  it('DEL without the pod\'s name finds it by the container id (CNI_ARGS are optional on DEL)', () => {
    const { ipClaims, take, entries } = harness();
    add(ipClaims, 'c1', 'a', ['10.0.0.1'], pod('a', { inject: 'enabled', phase: 'Pending' }));
    take();
    assert.deepEqual(ipClaims.del(null, null, 'c9'), [], 'an unknown container');
    assert.deepEqual(ipClaims.del(null, null, 'c1'), ['10.0.0.1']);
    assert.deepEqual(take(), ['- 10.0.0.1 app/a']);
    assert.deepEqual(ipClaims.del(null, null, 'c1'), [], 'repeated');
    assert.deepEqual(entries(), []);
  });

  it('DEL after the API took over: the IPs stay released while the status still lists them', () => {
    const { ipClaims, take, entries } = harness();
    add(ipClaims, 'c1', 'a', ['10.0.0.1'], pod('a', { inject: 'enabled', phase: 'Pending' }));
    ipClaims.applyPod(pod('a', { inject: 'enabled', ips: ['10.0.0.1'] }));
    assert.deepEqual(take(), ['+ 10.0.0.1 app/a']);
    assert.deepEqual(ipClaims.del('app', 'a', 'c1'), ['10.0.0.1']);
    assert.deepEqual(take(), ['- 10.0.0.1 app/a']);
    ipClaims.applyPod(pod('a', { inject: 'enabled', ips: ['10.0.0.1'], phase: 'Running' }));
    assert.deepEqual(take(), [], 'a terminating pod’s status lags behind its sandbox');
    ipClaims.applyPod(pod('a', { inject: 'enabled', ips: ['10.0.0.2'] }));
    assert.deepEqual(take(), ['+ 10.0.0.2 app/a'], 'new IPs in the status are the pod’s');
    ipClaims.applyPod(pod('a', { inject: 'enabled', ips: ['10.0.0.1'] }));
    assert.deepEqual(take(), ['- 10.0.0.2 app/a', '+ 10.0.0.1 app/a'], 'once the status stopped listing it, the release is over');
    assert.deepEqual(entries(), ['10.0.0.1 app/a']);
  });

  it('an ADD overtaken by its own DEL changes nothing', () => {
    const { ipClaims, take } = harness();
    assert.deepEqual(ipClaims.del('app', 'a', 'c1'), []);
    assert.equal(add(ipClaims, 'c1', 'a', ['10.0.0.1'], pod('a', { inject: 'enabled' })), false);
    assert.deepEqual(take(), []);
    assert.equal(add(ipClaims, 'c2', 'a', ['10.0.0.1'], pod('a', { inject: 'enabled' })), true);
    assert.deepEqual(take(), ['+ 10.0.0.1 app/a']);
  });

  it('the pod’s deletion drops its CNI IPs (a DEL the agent missed)', () => {
    const { ipClaims, take, entries } = harness();
    add(ipClaims, 'c1', 'a', ['10.0.0.1'], pod('a', { inject: 'enabled', phase: 'Pending' }));
    ipClaims.applyPod(pod('a', { inject: 'enabled', phase: 'Pending' }));
    take();
    ipClaims.deletePod(pod('a'));
    assert.deepEqual(take(), ['- 10.0.0.1 app/a']);
    assert.deepEqual(ipClaims.del('app', 'a', 'c1'), [], 'nothing left for the late DEL');
    assert.equal(ipClaims.apiPod('app', 'a'), undefined);
    assert.deepEqual(entries(), []);
  });
});

describe('CniIpClaims: an IP reused by a pod that did not opt in', () => {
  const X = '10.0.0.9';

  it('A (opted in, from the API) still listed, B (not opted in) ADDed with its IP: unenrolled at once, in either later order', () => {
    for (const aGoesFirst of [true, false]) {
      const { ipClaims, take, entries } = harness();
      ipClaims.applyPod(pod('a', { inject: 'enabled', ips: [X] }));
      assert.deepEqual(take(), [`+ ${X} app/a`]);
      add(ipClaims, 'b1', 'b', [X], pod('b', { phase: 'Pending' }));
      assert.deepEqual(take(), [`- ${X} app/a`]);
      const aLate = (): void => ipClaims.applyPod(pod('a', { inject: 'enabled', ips: [X], phase: 'Running' }));
      const aGone = (): void => ipClaims.deletePod(pod('a'));
      const bStatus = (): void => ipClaims.applyPod(pod('b', { ips: [X] }));
      for (const step of aGoesFirst ? [aLate, aGone, bStatus] : [bStatus, aLate, aGone]) step();
      assert.deepEqual(take(), []);
      assert.deepEqual(entries(), []);
    }
  });

  it('A (opted in, CNI only) then B (not opted in) ADDed with the same IP, A’s DEL last: unenrolled and stays so', () => {
    const { ipClaims, take, entries } = harness();
    add(ipClaims, 'a1', 'a', [X], pod('a', { inject: 'enabled', phase: 'Pending' }));
    add(ipClaims, 'b1', 'b', [X], pod('b', { phase: 'Pending' }));
    assert.deepEqual(take(), [`+ ${X} app/a`, `- ${X} app/a`]);
    ipClaims.applyPod(pod('a', { inject: 'enabled', phase: 'Pending' }));
    assert.deepEqual(ipClaims.del('app', 'a', 'a1'), [X]);
    assert.deepEqual(take(), []);
    assert.deepEqual(entries(), []);
  });

  it('A’s DEL and B’s ADD in the other order: unenrolled, and B opting in later enrolls B', () => {
    const { ipClaims, take, entries } = harness();
    add(ipClaims, 'a1', 'a', [X], pod('a', { inject: 'enabled', phase: 'Pending' }));
    ipClaims.del('app', 'a', 'a1');
    add(ipClaims, 'b1', 'b', [X], pod('b', { phase: 'Pending' }));
    assert.deepEqual(take(), [`+ ${X} app/a`, `- ${X} app/a`]);
    ipClaims.applyPod(pod('b', { ips: [X], inject: 'enabled' }));
    assert.deepEqual(take(), [`+ ${X} app/b`]);
    assert.deepEqual(entries(), [`${X} app/b`]);
  });

  it('a sandbox whose pod was not found claims its IPs but is never enrolled, even in an opted-in namespace', () => {
    const { ipClaims, take, entries } = harness();
    ipClaims.applyNamespace(ns('app', 'enabled'));
    ipClaims.applyPod(pod('a', { ips: [X] }));
    assert.deepEqual(take(), [`+ ${X} app/a`]);
    add(ipClaims, 'g1', 'ghost', [X], claimOnlyRecord('app', 'ghost', NODE));
    assert.deepEqual(take(), [`- ${X} app/a`]);
    assert.deepEqual(entries(), []);
  });

  it('an API record the projection refused still lets the sandbox claim its IPs, enrolling nothing', () => {
    const { ipClaims, take, entries } = harness();
    ipClaims.applyPod(pod('a', { inject: 'enabled', ips: [X] }));
    ipClaims.applyPod(pod('b', { inject: 'enabled', invalid: 'spec: not a map' }));
    add(ipClaims, 'b1', 'b', [X], pod('b', { inject: 'enabled', invalid: 'spec: not a map' }));
    assert.deepEqual(take(), [`+ ${X} app/a`, `- ${X} app/a`]);
    assert.deepEqual(entries(), []);
  });
});

describe('CniIpClaims: namespaces and lookups', () => {
  it('tells what the informer delivered, and learns a namespace from a GET only until the informer delivers it', () => {
    const { ipClaims, take } = harness();
    assert.equal(ipClaims.namespaceSetting('app'), undefined);
    add(ipClaims, 'c1', 'a', ['10.0.0.1'], pod('a', { phase: 'Pending' }));
    ipClaims.learnNamespace(ns('app', 'enabled'));
    assert.equal(ipClaims.namespaceSetting('app'), 'enabled');
    assert.deepEqual(take(), ['+ 10.0.0.1 app/a']);
    ipClaims.learnNamespace(ns('app', 'disabled'));
    assert.equal(ipClaims.namespaceSetting('app'), 'enabled', 'a second GET does not overrule what is known');
    ipClaims.applyNamespace(ns('app', null));
    assert.equal(ipClaims.namespaceSetting('app'), null);
    assert.deepEqual(take(), ['- 10.0.0.1 app/a']);
    ipClaims.applyNamespace(ns('app', 'enabled', 'metadata.annotations: not a map'));
    assert.equal(ipClaims.namespaceSetting('app'), null, 'an invalid namespace has no setting, as in the index');
    ipClaims.deleteNamespace(ns('app', null));
    assert.equal(ipClaims.namespaceSetting('app'), undefined);
  });

  it('gives the informer’s record and the container’s IPs', () => {
    const { ipClaims } = harness();
    const record = pod('a', { inject: 'enabled', phase: 'Pending' });
    add(ipClaims, 'c1', 'a', ['10.0.0.1'], record);
    assert.equal(ipClaims.apiPod('app', 'a'), undefined, 'a record from the ADD is not the informer’s');
    ipClaims.applyPod(record);
    assert.equal(ipClaims.apiPod('app', 'a'), record);
    assert.deepEqual(ipClaims.containerIps('app', 'a', 'c1'), ['10.0.0.1']);
    assert.equal(ipClaims.containerIps('app', 'a', 'c0'), undefined);
  });
});

describe('CniIpClaims: static pods', () => {
  const spec = (name: string, ip: string, inject: 'enabled' | 'disabled') => ({ namespace: 'app', name, ip, inject });

  it('feeds complete sets through, keeps pods with a live ADD that the file does not list, and refuses a pod listed twice', () => {
    const { ipClaims, take, entries } = harness();
    ipClaims.replacePods(staticPodRecords([spec('a', '10.0.0.1', 'enabled'), spec('b', '10.0.0.2', 'disabled')], NODE));
    assert.deepEqual(take(), ['+ 10.0.0.1 app/a']);
    add(ipClaims, 'c1', 'a', ['10.0.0.5'], ipClaims.apiPod('app', 'a')!);
    assert.deepEqual(take(), ['- 10.0.0.1 app/a', '+ 10.0.0.5 app/a'], 'the sandbox’s IP, not the file’s');
    add(ipClaims, 'u1', 'unlisted', ['10.0.0.2'], claimOnlyRecord('app', 'unlisted', NODE));
    ipClaims.replacePods(staticPodRecords([spec('b', '10.0.0.2', 'enabled')], NODE));
    assert.deepEqual(take(), [], 'b opts in, but the unlisted sandbox holds its IP; a keeps its sandbox’s IP');
    assert.deepEqual(entries(), ['10.0.0.5 app/a']);
    const twice = staticPodRecords([spec('b', '10.0.0.2', 'enabled'), spec('b', '10.0.0.3', 'enabled')], NODE);
    assert.throws(() => ipClaims.replacePods(twice), /pod app\/b is listed twice/);
    assert.deepEqual(take(), []);
    ipClaims.del('app', 'a', 'c1');
    assert.deepEqual(take(), ['- 10.0.0.5 app/a'], 'the file no longer lists a: nothing is left of it');
  });
});
