// The state file's format: a view survives the round trip exactly; every kind of bad file is refused whole, with its code.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decodePersistedView,
  encodePersistedView,
  type PersistedView,
  persistedPodRecords,
} from '../../agent/discovery/persisted-view.ts';
import { endpointSpec, serviceSpec } from '../support/service-records.ts';

const SAVED_AT = Date.parse('2026-05-04T03:02:01.000Z');

function sampleView(): PersistedView {
  return {
    savedAtMs: SAVED_AT,
    nodeName: 'node-a',
    services: [
      serviceSpec('greeter', [endpointSpec('10.244.1.5'), endpointSpec('10.244.2.6', 50051, 'terminating')], { balancer: 'round-robin' }),
      serviceSpec('v6', [endpointSpec('fd00::7', 8080, 'not-ready')], { namespace: 'shop', port: 8080, clusterIPs: ['fd00:96::10'] }),
      serviceSpec('headless', [], { clusterIPs: [] }),
    ],
    pods: [
      { namespace: 'default', name: 'client-1', ips: ['10.244.0.7', 'fd00::7'] },
      { namespace: 'shop', name: 'client-2', ips: ['10.244.0.8'] },
    ],
  };
}

/** The sample as JSON, changed by `edit`, back to text. */
function edited(edit: (json: Record<string, unknown> & { services: Array<Record<string, unknown>>; pods: Array<Record<string, unknown>> }) => void): string {
  const json = JSON.parse(encodePersistedView(sampleView()));
  edit(json);
  return JSON.stringify(json);
}

function rejection(text: string, nodeName = 'node-a'): { code: string; reason: string } {
  const result = decodePersistedView(text, nodeName);
  assert.equal(result.ok, false, 'rejected');
  return result.ok ? { code: '', reason: '' } : result.rejection;
}

describe('persisted view format', () => {
  it('round-trips a view exactly: services with keys and addresses derived, pods, the time it was saved', () => {
    const text = encodePersistedView(sampleView());
    assert.deepEqual(decodePersistedView(text, 'node-a'), { ok: true, view: sampleView() });
    const json = JSON.parse(text);
    assert.equal(json.version, 1);
    assert.equal(json.savedAt, '2026-05-04T03:02:01.000Z');
    assert.equal(json.services[0].key, undefined, 'keys are not written');
    assert.deepEqual(Object.keys(json.services[0].endpoints[0]), ['host', 'port', 'ready', 'serving', 'terminating']);
  });

  it('round-trips an empty view (a synced cluster with nothing in it)', () => {
    const empty: PersistedView = { savedAtMs: SAVED_AT, nodeName: 'node-a', services: [], pods: [] };
    assert.deepEqual(decodePersistedView(encodePersistedView(empty), 'node-a'), { ok: true, view: empty });
  });

  it('turns pods into records the opt-in index takes, each opted in by its own annotation', () => {
    assert.deepEqual(persistedPodRecords([{ namespace: 'default', name: 'client-1', ips: ['10.244.0.7'] }], 'node-a'), [
      {
        kind: 'Pod',
        metadata: { namespace: 'default', name: 'client-1', resourceVersion: '' },
        invalid: null,
        nodeName: 'node-a',
        ips: ['10.244.0.7'],
        hostNetwork: false,
        phase: 'Running',
        inject: 'enabled',
      },
    ]);
  });

  it('refuses a truncated or non-JSON file with ML_STATE_FILE_MALFORMED', () => {
    const text = encodePersistedView(sampleView());
    assert.equal(rejection(text.slice(0, text.length - 7)).code, 'ML_STATE_FILE_MALFORMED');
    assert.equal(rejection('').code, 'ML_STATE_FILE_MALFORMED');
    assert.equal(rejection('[1,2]').code, 'ML_STATE_FILE_MALFORMED');
    assert.equal(rejection('null').code, 'ML_STATE_FILE_MALFORMED');
  });

  it('refuses another version, or none, with ML_STATE_FILE_VERSION', () => {
    assert.deepEqual(rejection(edited((j) => (j.version = 2))), { code: 'ML_STATE_FILE_VERSION', reason: 'version 2, this agent reads version 1' });
    assert.deepEqual(rejection(edited((j) => delete j.version)), { code: 'ML_STATE_FILE_VERSION', reason: 'version missing, this agent reads version 1' });
    assert.equal(rejection(edited((j) => (j.version = '1'))).code, 'ML_STATE_FILE_VERSION');
  });

  it('refuses wrong types and values with ML_STATE_FILE_INVALID, naming the field', () => {
    const cases: Array<[string, (j: Parameters<Parameters<typeof edited>[0]>[0]) => void, string]> = [
      ['savedAt', (j) => (j.savedAt = 'yesterday'), 'savedAt: expected a date-time'],
      ['nodeName', (j) => (j.nodeName = 'node-b'), "nodeName: expected this node's name (node-a), not node-b"],
      ['services', (j) => (j.services = {} as never), 'services: expected an array'],
      ['service', (j) => (j.services[1] = 'greeter' as never), 'services[1]: expected an object'],
      ['port', (j) => (j.services[0].port = 70000), 'services[0].port: expected a port, 1 to 65535'],
      ['name', (j) => (j.services[0].name = 'a/b'), 'services[0].name: expected a Kubernetes name'],
      ['clusterIP', (j) => (j.services[0].clusterIPs = ['10.96.0.300']), 'services[0].clusterIPs[0]: expected an IP address in normal form'],
      ['balancer', (j) => (j.services[0].balancer = 'random'), 'services[0].balancer: expected null or a balancer name'],
      ['endpoints', (j) => (j.services[0].endpoints = null), 'services[0].endpoints: expected an array'],
      ['ready', (j) => ((j.services[0].endpoints as Array<Record<string, unknown>>)[1].ready = 'yes'), 'services[0].endpoints[1].ready: expected true or false'],
      ['host', (j) => ((j.services[1].endpoints as Array<Record<string, unknown>>)[0].host = 'FD00::7'), 'services[1].endpoints[0].host: expected an IP address in normal form'],
      ['duplicate service', (j) => j.services.push(j.services[0]), 'services: expected each service once (default/greeter:50051 is listed twice)'],
      ['pods', (j) => (j.pods = null as never), 'pods: expected an array'],
      ['pod ips', (j) => (j.pods[0].ips = []), 'pods[0].ips: expected at least one IP'],
      ['pod ip', (j) => (j.pods[1].ips = [7]), 'pods[1].ips[0]: expected an IP address in normal form'],
      ['duplicate pod', (j) => j.pods.push(j.pods[1]), 'pods: expected each pod once (shop/client-2 is listed twice)'],
    ];
    for (const [what, edit, reason] of cases) {
      assert.deepEqual(rejection(edited(edit)), { code: 'ML_STATE_FILE_INVALID', reason }, what);
    }
  });

  it('refuses a hostile file (deep nesting, huge numbers, prototype keys) without loading any of it', () => {
    assert.equal(rejection(edited((j) => (j.services[0].port = 1e308))).code, 'ML_STATE_FILE_INVALID');
    assert.equal(rejection(edited((j) => (j.services[0].endpoints = [[[[[[]]]]]]))).code, 'ML_STATE_FILE_INVALID');
    const proto = edited((j) => (j.pods[0] = JSON.parse('{"__proto__": {"ips": ["10.0.0.1"]}, "namespace": "default", "name": "x"}')));
    assert.deepEqual(rejection(proto), { code: 'ML_STATE_FILE_INVALID', reason: 'pods[0].ips: expected an array' });
    const long = edited((j) => (j.services[0].namespace = 'n'.repeat(254)));
    assert.deepEqual(rejection(long), { code: 'ML_STATE_FILE_INVALID', reason: 'services[0].namespace: expected a Kubernetes name' });
  });
});
