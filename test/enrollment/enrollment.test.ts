// CNI enrollment: the opt-in decision, the informer's cache before the API, GETs against the test API server, static pods, and the wait for the rules.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CniIpClaims } from '../../agent/enrollment/cni-ip-claims.ts';
import type { CniAddRequest } from '../../agent/enrollment/cni-protocol.ts';
import { CniEnrollment, decideOptIn, kubePodLookup, type PodLookup } from '../../agent/enrollment/enrollment.ts';
import { createKubeApi, loadKubeConfig } from '../../agent/discovery/kube-api.ts';
import { OptInIndex, staticPodRecords } from '../../agent/discovery/opt-in-index.ts';
import { createLogger } from '../../agent/telemetry/logger.ts';
import { FakeTimers } from '../support/fake-timers.ts';
import { type KubeApiServer, type KubeObject, startKubeApiServer } from '../support/kube-api-server.ts';
import { NODE, ns, pod } from '../support/opt-in-records.ts';
import { waitFor } from '../../lab/wait-for.ts';

/** The interception manager's promise, held or settled by the test; notes what the index held when it was asked. */
class FakeInterception {
  mode: 'applied' | 'held' | 'failing' = 'applied';
  /** The enrolled IPs at each whenApplied() call: the claim must come before the wait. */
  readonly asked: string[][] = [];
  private readonly index: OptInIndex;

  constructor(index: OptInIndex) {
    this.index = index;
  }

  whenApplied(): Promise<void> {
    this.asked.push([...this.index.enrolled.keys()].sort());
    if (this.mode === 'applied') return Promise.resolve();
    if (this.mode === 'failing') return Promise.reject(new Error('ipset restore: exit 1'));
    return new Promise(() => {});
  }
}

interface Setup {
  index: OptInIndex;
  ipClaims: CniIpClaims;
  enrollment: CniEnrollment;
  interception: FakeInterception;
  timers: FakeTimers;
  errors: string[];
}

function setup(lookup: PodLookup | null): Setup {
  const index = new OptInIndex(NODE);
  const ipClaims = new CniIpClaims(index);
  const interception = new FakeInterception(index);
  const timers = new FakeTimers();
  const errors: string[] = [];
  const enrollment = new CniEnrollment({
    ipClaims,
    index,
    lookup,
    interception,
    timers,
    applyTimeoutMs: 3000,
    lookupTimeoutMs: 2000,
    logger: createLogger('silent'),
    countError: (code) => errors.push(code),
  });
  return { index, ipClaims, enrollment, interception, timers, errors };
}

function addRequest(name: string, ips: string[], containerId = `c-${name}`, namespace = 'app'): CniAddRequest {
  return { containerId, netns: `/var/run/netns/${containerId}`, ifName: 'eth0', namespace, name, ips };
}

function podObject(name: string, fields: { namespace?: string; inject?: string; nodeName?: string } = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: fields.namespace ?? 'app', annotations: fields.inject === undefined ? {} : { 'meshlite.io/inject': fields.inject } },
    spec: { nodeName: fields.nodeName ?? NODE, containers: [{ name: 'main', image: 'client:1' }] },
    // At CNI ADD time the kubelet has not written the pod's IPs yet.
    status: { phase: 'Pending' },
  };
}

function namespaceObject(name: string, inject?: string): KubeObject {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, annotations: inject === undefined ? {} : { 'meshlite.io/inject': inject } } };
}

const ENABLED_BY_POD = { enrolled: true, reason: 'pod annotation meshlite.io/inject=enabled' };

describe('decideOptIn', () => {
  it('follows the pod’s annotation, else its namespace’s, and refuses pods that cannot be enrolled', () => {
    const cases: Array<[string, ReturnType<typeof pod>, 'enabled' | 'disabled' | null, boolean, string]> = [
      ['pod enabled', pod('a', { inject: 'enabled' }), null, true, 'pod annotation meshlite.io/inject=enabled'],
      ['pod disabled', pod('a', { inject: 'disabled' }), null, false, 'pod annotation meshlite.io/inject=disabled'],
      ['pod disabled wins', pod('a', { inject: 'disabled' }), 'enabled', false, 'pod annotation meshlite.io/inject=disabled'],
      ['pod enabled wins', pod('a', { inject: 'enabled' }), 'disabled', true, 'pod annotation meshlite.io/inject=enabled'],
      ['namespace enabled', pod('a'), 'enabled', true, 'namespace annotation meshlite.io/inject=enabled'],
      ['namespace disabled', pod('a'), 'disabled', false, 'namespace annotation meshlite.io/inject=disabled'],
      ['neither', pod('a'), null, false, 'no meshlite.io/inject annotation on the pod or its namespace'],
      ['other node', pod('a', { inject: 'enabled', nodeName: 'node-2' }), null, false, 'the pod is bound to node "node-2", not to this node "node-1"'],
      ['host network', pod('a', { inject: 'enabled', hostNetwork: true }), null, false, 'the pod uses the host network'],
      ['finished', pod('a', { inject: 'enabled', phase: 'Succeeded' }), null, false, 'the pod has finished (Succeeded)'],
      ['invalid', pod('a', { inject: 'enabled', invalid: 'spec: not a map' }), 'enabled', false, 'the pod object is not usable: spec: not a map'],
    ];
    for (const [what, record, namespaceInject, optIn, reason] of cases) {
      assert.deepEqual(decideOptIn(record, namespaceInject, NODE), { optIn, reason }, what);
    }
  });
});

describe('CniEnrollment: from the informer’s cache', () => {
  it('enrolls a pod annotated enabled, the IPs in the index before the wait for the rules', async () => {
    const { ipClaims, enrollment, interception, index } = setup(null);
    ipClaims.applyPod(pod('a', { inject: 'enabled', phase: 'Pending' }));
    const reply = await enrollment.add(addRequest('a', ['10.0.0.1', 'fd00::1']));
    assert.deepEqual(reply, { status: 200, body: ENABLED_BY_POD });
    assert.deepEqual(interception.asked, [['10.0.0.1', 'fd00::1']]);
    assert.deepEqual(index.podAt('fd00::1'), { namespace: 'app', name: 'a' });
  });

  it('uses the namespace’s annotation, and the pod’s own value wins over it', async () => {
    const { ipClaims, enrollment } = setup(null);
    ipClaims.applyNamespace(ns('app', 'enabled'));
    ipClaims.applyPod(pod('plain', { phase: 'Pending' }));
    ipClaims.applyPod(pod('out', { inject: 'disabled', phase: 'Pending' }));
    assert.deepEqual(await enrollment.add(addRequest('plain', ['10.0.0.1'])), {
      status: 200,
      body: { enrolled: true, reason: 'namespace annotation meshlite.io/inject=enabled' },
    });
    assert.deepEqual(await enrollment.add(addRequest('out', ['10.0.0.2'])), {
      status: 200,
      body: { enrolled: false, reason: 'pod annotation meshlite.io/inject=disabled' },
    });
  });

  it('waits for the rules when the pod does not opt in too: its IP may just have left a stale owner', async () => {
    const { ipClaims, enrollment, interception, index } = setup(null);
    ipClaims.applyPod(pod('old', { inject: 'enabled', ips: ['10.0.0.9'] }));
    ipClaims.applyPod(pod('new', { phase: 'Pending' }));
    const reply = await enrollment.add(addRequest('new', ['10.0.0.9']));
    assert.deepEqual(reply, { status: 200, body: { enrolled: false, reason: 'no meshlite.io/inject annotation on the pod or its namespace' } });
    assert.deepEqual(interception.asked, [[]], 'asked after the stale owner was unenrolled');
    assert.equal(index.podAt('10.0.0.9'), undefined);
  });

  it('answers 503 ML_CNI_NOT_APPLIED when the rules are not applied in time, or applying fails', async () => {
    const { ipClaims, enrollment, interception, timers, errors } = setup(null);
    ipClaims.applyPod(pod('a', { inject: 'enabled', phase: 'Pending' }));
    interception.mode = 'held';
    const pending = enrollment.add(addRequest('a', ['10.0.0.1']));
    await waitFor(() => timers.activeCount === 1, { message: 'the apply deadline is set' });
    timers.advance(2999);
    let settled = false;
    void pending.then(() => {
      settled = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(settled, false, 'not before the deadline');
    timers.advance(1);
    assert.deepEqual(await pending, {
      status: 503,
      body: {
        code: 'ML_CNI_NOT_APPLIED',
        message: 'pod app/a (pod annotation meshlite.io/inject=enabled): the interception rules were not applied within 3000 ms',
      },
    });
    interception.mode = 'failing';
    assert.deepEqual(await enrollment.add(addRequest('a', ['10.0.0.1'])), {
      status: 503,
      body: {
        code: 'ML_CNI_NOT_APPLIED',
        message: 'pod app/a (pod annotation meshlite.io/inject=enabled): applying the interception rules failed: ipset restore: exit 1',
      },
    });
    assert.deepEqual(errors, ['ML_CNI_NOT_APPLIED', 'ML_CNI_NOT_APPLIED']);
    assert.equal(timers.activeCount, 0, 'no deadline left behind');
  });

  it('DEL releases the sandbox’s IPs once, then answers with nothing released', async () => {
    const { ipClaims, enrollment, index } = setup(null);
    ipClaims.applyPod(pod('a', { inject: 'enabled', phase: 'Pending' }));
    await enrollment.add(addRequest('a', ['10.0.0.1'], 'c1'));
    assert.deepEqual(enrollment.del({ containerId: 'c1', namespace: 'app', name: 'a' }), { status: 200, body: { released: ['10.0.0.1'] } });
    assert.equal(index.podAt('10.0.0.1'), undefined);
    assert.deepEqual(enrollment.del({ containerId: 'c1', namespace: 'app', name: 'a' }), { status: 200, body: { released: [] } });
    assert.deepEqual(await enrollment.add(addRequest('a', ['10.0.0.1'], 'c1')), {
      status: 200,
      body: { enrolled: false, reason: 'the sandbox was deleted before its ADD finished' },
    });
  });

  it('CHECK says what is enrolled and what should be', async () => {
    const { ipClaims, enrollment } = setup(null);
    ipClaims.applyPod(pod('a', { inject: 'enabled', phase: 'Pending' }));
    const check = { containerId: 'c1', namespace: 'app', name: 'a' };
    assert.deepEqual(await enrollment.check({ ...check, ips: null }), {
      status: 200,
      body: { enrolled: false, expected: true, reason: 'pod annotation meshlite.io/inject=enabled; no IP is known for this sandbox' },
    });
    await enrollment.add(addRequest('a', ['10.0.0.1'], 'c1'));
    assert.deepEqual(await enrollment.check({ ...check, ips: null }), { status: 200, body: { enrolled: true, expected: true, reason: 'pod annotation meshlite.io/inject=enabled' } });
    ipClaims.applyPod(pod('a', { inject: 'disabled', phase: 'Pending' }));
    assert.deepEqual(await enrollment.check({ ...check, ips: ['10.0.0.1'] }), {
      status: 200,
      body: { enrolled: false, expected: false, reason: 'pod annotation meshlite.io/inject=disabled' },
    });
  });
});

describe('CniEnrollment: static discovery', () => {
  it('enrolls a pod the file lists as enabled and refuses one it does not list', async () => {
    const { ipClaims, enrollment, index } = setup(null);
    ipClaims.replacePods(staticPodRecords([{ namespace: 'app', name: 'listed', ip: '10.0.0.1', inject: 'enabled' }], NODE));
    assert.deepEqual(await enrollment.add(addRequest('listed', ['10.0.0.1'])), { status: 200, body: ENABLED_BY_POD });
    assert.deepEqual(await enrollment.add(addRequest('unlisted', ['10.0.0.2'])), {
      status: 200,
      body: { enrolled: false, reason: "the pod is not listed in the static file's pods" },
    });
    assert.deepEqual([...index.enrolled.keys()], ['10.0.0.1']);
  });
});

describe('CniEnrollment: pods the informer has not delivered, read from the API', () => {
  let server: KubeApiServer;
  let lookup: PodLookup;

  before(async () => {
    server = await startKubeApiServer();
    lookup = kubePodLookup(createKubeApi(loadKubeConfig(server.kubeconfigPath)));
    server.apply('namespaces', namespaceObject('app'));
    server.apply('namespaces', namespaceObject('opted', 'enabled'));
    server.apply('pods', podObject('annotated', { inject: 'enabled' }));
    server.apply('pods', podObject('plain', { namespace: 'opted' }));
    server.apply('pods', podObject('elsewhere', { inject: 'enabled', nodeName: 'node-2' }));
  });

  after(async () => {
    await server.close();
  });

  it('GETs the pod when the informer does not have it', async () => {
    const { enrollment, index } = setup(lookup);
    const gets = server.requestCount('pods', 'get');
    assert.deepEqual(await enrollment.add(addRequest('annotated', ['10.0.1.1'])), { status: 200, body: ENABLED_BY_POD });
    assert.equal(server.requestCount('pods', 'get'), gets + 1);
    assert.equal(server.requestCount('namespaces', 'get'), 0, 'the pod’s own value decides: no need for its namespace');
    assert.deepEqual(index.podAt('10.0.1.1'), { namespace: 'app', name: 'annotated' });
  });

  it('GETs the namespace too when the pod has no annotation and the informer does not know the namespace', async () => {
    const { enrollment, ipClaims } = setup(lookup);
    assert.deepEqual(await enrollment.add(addRequest('plain', ['10.0.1.2'], 'c-plain', 'opted')), {
      status: 200,
      body: { enrolled: true, reason: 'namespace annotation meshlite.io/inject=enabled' },
    });
    assert.equal(ipClaims.namespaceSetting('opted'), 'enabled', 'the index learned it as well');
  });

  it('GETs only the namespace when the informer has the pod but not yet its namespace', async () => {
    const { enrollment, ipClaims } = setup(lookup);
    ipClaims.applyPod(pod('plain', { namespace: 'opted', phase: 'Pending' }));
    const podGets = server.requestCount('pods', 'get');
    const namespaceGets = server.requestCount('namespaces', 'get');
    assert.deepEqual(await enrollment.add(addRequest('plain', ['10.0.1.8'], 'c-plain', 'opted')), {
      status: 200,
      body: { enrolled: true, reason: 'namespace annotation meshlite.io/inject=enabled' },
    });
    assert.equal(server.requestCount('pods', 'get'), podGets);
    assert.equal(server.requestCount('namespaces', 'get'), namespaceGets + 1);
    ipClaims.applyNamespace(ns('opted', 'disabled'));
    assert.deepEqual(await enrollment.add(addRequest('plain', ['10.0.1.8'], 'c-plain', 'opted')), {
      status: 200,
      body: { enrolled: false, reason: 'namespace annotation meshlite.io/inject=disabled' },
    });
    assert.equal(server.requestCount('namespaces', 'get'), namespaceGets + 1, 'the informer’s namespace from then on');
  });

  it('a failed namespace GET is a failed lookup too', async () => {
    const { enrollment, errors } = setup(lookup);
    server.failNext(1, { resource: 'namespaces', status: 403 });
    const reply = await enrollment.add(addRequest('plain', ['10.0.1.9'], 'c-plain', 'opted'));
    assert.equal(reply.status, 503);
    assert.match((reply.body as { message: string }).message, /^cannot read pod opted\/plain: GET namespace opted: GET \/api\/v1\/namespaces\/opted: HTTP 403/);
    assert.deepEqual(errors, ['ML_CNI_POD_LOOKUP_FAILED']);
  });

  it('prefers the informer’s record: no GET', async () => {
    const { enrollment, ipClaims } = setup(lookup);
    ipClaims.applyPod(pod('annotated', { inject: 'disabled', phase: 'Pending' }));
    const gets = server.requestCount('pods', 'get');
    assert.deepEqual(await enrollment.add(addRequest('annotated', ['10.0.1.3'])), {
      status: 200,
      body: { enrolled: false, reason: 'pod annotation meshlite.io/inject=disabled' },
    });
    assert.equal(server.requestCount('pods', 'get'), gets);
  });

  it('a pod the API does not have is not enrolled, and its IPs leave their stale owner', async () => {
    const { enrollment, ipClaims, index } = setup(lookup);
    ipClaims.applyPod(pod('stale', { inject: 'enabled', ips: ['10.0.1.4'] }));
    assert.deepEqual(await enrollment.add(addRequest('missing', ['10.0.1.4'])), {
      status: 200,
      body: { enrolled: false, reason: 'the pod does not exist in the Kubernetes API' },
    });
    assert.equal(index.podAt('10.0.1.4'), undefined);
  });

  it('a pod bound to another node is not enrolled', async () => {
    const { enrollment } = setup(lookup);
    assert.deepEqual(await enrollment.add(addRequest('elsewhere', ['10.0.1.5'])), {
      status: 200,
      body: { enrolled: false, reason: 'the pod is bound to node "node-2", not to this node "node-1"' },
    });
  });

  it('answers 503 ML_CNI_POD_LOOKUP_FAILED when the API fails, holding the IPs as not opted in', async () => {
    const { enrollment, ipClaims, index, errors } = setup(lookup);
    ipClaims.applyPod(pod('stale', { inject: 'enabled', ips: ['10.0.1.6'] }));
    server.failNext(1, { resource: 'pods', status: 500 });
    const reply = await enrollment.add(addRequest('annotated', ['10.0.1.6']));
    assert.equal(reply.status, 503);
    assert.deepEqual(Object.keys(reply.body), ['code', 'message']);
    assert.equal((reply.body as { code: string }).code, 'ML_CNI_POD_LOOKUP_FAILED');
    assert.match((reply.body as { message: string }).message, /^cannot read pod app\/annotated: GET pod app\/annotated: GET \/api\/v1\/namespaces\/app\/pods\/annotated: HTTP 500/);
    assert.deepEqual(errors, ['ML_CNI_POD_LOOKUP_FAILED']);
    assert.equal(index.podAt('10.0.1.6'), undefined);
    ipClaims.applyPod(pod('annotated', { inject: 'enabled', phase: 'Pending' }));
    assert.deepEqual(index.podAt('10.0.1.6'), { namespace: 'app', name: 'annotated' }, 'the pod watch decides once it has the pod');
  });

  it('gives up on a stalled API after the lookup timeout', async () => {
    const { enrollment, timers } = setup(lookup);
    server.stall(true);
    try {
      const pending = enrollment.add(addRequest('annotated', ['10.0.1.7']));
      await waitFor(() => server.stalledRequestCount() === 1, { message: 'the GET reached the server' });
      timers.advance(2000);
      assert.deepEqual(await pending, {
        status: 503,
        body: { code: 'ML_CNI_POD_LOOKUP_FAILED', message: 'cannot read pod app/annotated: GET pod app/annotated: timed out after 2000 ms' },
      });
    } finally {
      server.stall(false);
    }
  });
});
