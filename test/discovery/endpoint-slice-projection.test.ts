// EndpointSlice JSON → records: exact records from controller-written slices, skipped entries reported, unusable slices invalid.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { projectEndpointSlice } from '../../agent/discovery/endpoint-slice-projection.ts';
import { projectEndpointSlice as reExported } from '../../agent/discovery/kube-projection.ts';
import { CONTROLLER_SLICE, copy, SPARSE_IPV6_SLICE } from './kube-fixtures.ts';

const SLICE_ID = { name: 'greeter-7x2kq', namespace: 'shop', resourceVersion: '48377' };
const TRIGGER_MS = Date.UTC(2024, 4, 1, 10, 2, 3, 456);

type Json = Record<string, unknown>;

/** CONTROLLER_SLICE with top-level fields replaced. */
function slice(changes: Json): Json {
  return { ...copy(CONTROLLER_SLICE), ...changes };
}

/** CONTROLLER_SLICE with one endpoint, the given one. */
function withEndpoint(endpoint: unknown): Json {
  return slice({ endpoints: [endpoint] });
}

const READY = { ready: true, serving: true, terminating: false };

describe('projectEndpointSlice', () => {
  it('is the one kube-projection.ts exports', () => {
    assert.equal(reExported, projectEndpointSlice);
  });

  it("keeps a controller slice's TCP ports and its endpoints with their conditions, and nothing else", () => {
    assert.deepEqual(projectEndpointSlice(CONTROLLER_SLICE), {
      kind: 'EndpointSlice',
      metadata: SLICE_ID,
      invalid: null,
      warnings: [],
      serviceName: 'greeter',
      addressType: 'IPv4',
      ports: [
        { name: 'api', port: 8443 },
        { name: 'metrics', port: 9090 },
      ],
      endpoints: [
        { addresses: ['10.244.1.17'], ready: true, serving: true, terminating: false },
        { addresses: ['10.244.2.9'], ready: false, serving: true, terminating: true },
        { addresses: ['10.244.3.4'], ready: false, serving: false, terminating: false },
      ],
      lastChangeTriggerTimeMs: TRIGGER_MS,
    });
  });

  it('normalises IPv6 and resolves absent conditions as the API documents (ready → true, serving → ready, terminating → false)', () => {
    assert.deepEqual(projectEndpointSlice(SPARSE_IPV6_SLICE), {
      kind: 'EndpointSlice',
      metadata: { name: 'greeter-v6', namespace: 'shop', resourceVersion: '48380' },
      invalid: null,
      warnings: [],
      serviceName: 'greeter',
      addressType: 'IPv6',
      ports: [{ name: 'api', port: 8443 }],
      endpoints: [
        { addresses: ['fd00:10:244:1::11'], ready: true, serving: true, terminating: false },
        { addresses: ['fd00:10:244:2::9'], ready: false, serving: false, terminating: true },
      ],
      lastChangeTriggerTimeMs: null,
    });
  });

  const conditionCases: Array<[string, unknown, object]> = [
    ['conditions absent', undefined, READY],
    ['conditions null', null, READY],
    ['every condition null', { ready: null, serving: null, terminating: null }, READY],
    ['ready false only', { ready: false }, { ready: false, serving: false, terminating: false }],
    ['serving true, ready nil', { serving: true }, READY],
    ['terminating, still serving', { serving: true, terminating: true }, { ready: true, serving: true, terminating: true }],
  ];
  for (const [what, conditions, expected] of conditionCases) {
    it(`resolves ${what}`, () => {
      const endpoint = conditions === undefined ? { addresses: ['10.0.0.1'] } : { addresses: ['10.0.0.1'], conditions };
      const record = projectEndpointSlice(withEndpoint(endpoint));
      assert.deepEqual(record.endpoints, [{ addresses: ['10.0.0.1'], ...expected }]);
      assert.deepEqual(record.warnings, []);
    });
  }

  // Usable slices with something skipped: [what, raw, expected ports, expected endpoint addresses, expected warnings].
  const skips: Array<[string, Json, object[], string[][], string[]]> = [
    ['ports null', slice({ ports: null }), [], [['10.244.1.17'], ['10.244.2.9'], ['10.244.3.4']], []],
    ['no ports field', slice({ ports: undefined }), [], [['10.244.1.17'], ['10.244.2.9'], ['10.244.3.4']], []],
    ['UDP ports only', slice({ ports: [{ name: 'dns', protocol: 'UDP', port: 53 }] }), [], [['10.244.1.17'], ['10.244.2.9'], ['10.244.3.4']], []],
    [
      'a port without a number ("all ports")',
      slice({ ports: [{ name: 'all', protocol: 'TCP' }, { name: 'api', port: 8443 }], endpoints: null }),
      [{ name: 'api', port: 8443 }],
      [],
      ['ports[0].port: missing ("all ports" gives no number to dial); skipped'],
    ],
    [
      'bad port entries',
      slice({ ports: ['api', { port: 0 }, { name: 5, port: 1 }, { protocol: 6, port: 2 }, { port: 3 }, { name: '', port: 4 }], endpoints: [] }),
      [{ name: '', port: 3 }],
      [],
      [
        'ports[0]: not a map (got "api"); skipped',
        'ports[1].port: not an integer 1..65535 (got 0); skipped',
        'ports[2].name: not a string (got 5); skipped',
        'ports[3].protocol: not a string (got 6); skipped',
        'ports[5].name: "" is the name of an earlier TCP port too; skipped',
      ],
    ],
    ['endpoints null', slice({ endpoints: null }), [{ name: 'api', port: 8443 }, { name: 'metrics', port: 9090 }], [], []],
    [
      'endpoints without usable addresses',
      slice({
        ports: [],
        endpoints: [
          { conditions: READY },
          { addresses: [] },
          { addresses: '10.0.0.1' },
          { addresses: ['10.0.0.2'] },
          { addresses: Array.from({ length: 101 }, (_, i) => `10.1.0.${i}`) },
        ],
      }),
      [],
      [['10.0.0.2']],
      [
        'endpoints[0].addresses: not a list of 1 to 100 addresses (got missing); endpoint skipped',
        'endpoints[1].addresses: not a list of 1 to 100 addresses (got 0 addresses); endpoint skipped',
        'endpoints[2].addresses: not a list of 1 to 100 addresses (got "10.0.0.1"); endpoint skipped',
        'endpoints[4].addresses: not a list of 1 to 100 addresses (got 101 addresses); endpoint skipped',
      ],
    ],
    [
      'addresses that are not IPs of the slice family',
      slice({
        ports: [],
        endpoints: [
          { addresses: ['pod.example'] },
          { addresses: ['10.0.0.3', 'fd00::3'] },
          { addresses: [42] },
          { addresses: ['::ffff:10.0.0.4'] },
          { addresses: ['10.0.0.5', '10.0.0.5'] },
        ],
      }),
      [],
      [['10.0.0.4'], ['10.0.0.5']],
      [
        'endpoints[0].addresses[0]: not an IP address (got "pod.example"); endpoint skipped',
        `endpoints[1].addresses[1]: not an IPv4 address, as the slice's addressType says (got "fd00::3"); endpoint skipped`,
        'endpoints[2].addresses[0]: not an IP address (got 42); endpoint skipped',
      ],
    ],
    [
      'garbage conditions',
      slice({
        ports: [],
        endpoints: [
          'endpoint',
          { addresses: ['10.0.0.1'], conditions: 'ready' },
          { addresses: ['10.0.0.2'], conditions: { ready: 'yes' } },
          { addresses: ['10.0.0.3'], conditions: { ready: true, serving: 1 } },
          { addresses: ['10.0.0.4'], conditions: { terminating: [] } },
        ],
      }),
      [],
      [],
      [
        'endpoints[0]: not a map (got "endpoint"); skipped',
        'endpoints[1].conditions: not a map (got "ready"); endpoint skipped',
        'endpoints[2].conditions.ready: not a boolean (got "yes"); endpoint skipped',
        'endpoints[3].conditions.serving: not a boolean (got 1); endpoint skipped',
        'endpoints[4].conditions.terminating: not a boolean (got a list); endpoint skipped',
      ],
    ],
    [
      'an unparsable trigger time',
      slice({ metadata: { ...copy(CONTROLLER_SLICE.metadata), annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': 'yesterday' } }, endpoints: [] }),
      [{ name: 'api', port: 8443 }, { name: 'metrics', port: 9090 }],
      [],
      ['metadata.annotations["endpoints.kubernetes.io/last-change-trigger-time"]: not an RFC 3339 time (got "yesterday"); ignored'],
    ],
  ];
  for (const [what, raw, ports, addresses, warnings] of skips) {
    it(`skips and reports: ${what}`, () => {
      const record = projectEndpointSlice(raw);
      assert.equal(record.invalid, null);
      assert.deepEqual(record.ports, ports);
      assert.deepEqual(
        record.endpoints.map((endpoint) => endpoint.addresses),
        addresses,
      );
      assert.deepEqual(record.warnings, warnings);
    });
  }

  it('keeps only the identity of a slice that belongs to no Service', () => {
    const noLabel = slice({ metadata: { name: 'custom', namespace: 'shop', resourceVersion: '3', labels: { app: 'x' } } });
    assert.deepEqual(projectEndpointSlice(noLabel), {
      kind: 'EndpointSlice',
      metadata: { name: 'custom', namespace: 'shop', resourceVersion: '3' },
      invalid: null,
      warnings: [],
      serviceName: null,
      addressType: 'IPv4',
      ports: [],
      endpoints: [],
      lastChangeTriggerTimeMs: null,
    });
    const mistyped = projectEndpointSlice(slice({ metadata: { name: 'custom', namespace: 'shop', labels: { 'kubernetes.io/service-name': ['greeter'] } } }));
    assert.equal(mistyped.serviceName, null);
    assert.deepEqual(mistyped.warnings, ['metadata.labels["kubernetes.io/service-name"]: not a string (got a list); the slice belongs to no Service']);
  });

  it('projects a full 1000-endpoint slice, and reports a 1000-endpoint slice of garbage in six lines', () => {
    const endpoints = Array.from({ length: 1000 }, (_, i) => ({ addresses: [`10.8.${i >> 8}.${i & 255}`], conditions: { ready: i % 2 === 0 }, nodeName: `node-${i % 7}` }));
    const record = projectEndpointSlice(slice({ endpoints }));
    assert.equal(record.endpoints.length, 1000);
    assert.deepEqual(record.endpoints[999], { addresses: ['10.8.3.231'], ready: false, serving: false, terminating: false });
    const garbage = projectEndpointSlice(slice({ endpoints: endpoints.map((_, i) => ({ addresses: [`node-${i}`] })) }));
    assert.equal(garbage.invalid, null);
    assert.deepEqual(garbage.endpoints, []);
    assert.deepEqual(garbage.warnings, [
      'endpoints[0].addresses[0]: not an IP address (got "node-0"); endpoint skipped',
      'endpoints[1].addresses[0]: not an IP address (got "node-1"); endpoint skipped',
      'endpoints[2].addresses[0]: not an IP address (got "node-2"); endpoint skipped',
      'endpoints[3].addresses[0]: not an IP address (got "node-3"); endpoint skipped',
      'endpoints[4].addresses[0]: not an IP address (got "node-4"); endpoint skipped',
      'and 995 more like these',
    ]);
  });

  const invalid: Array<[string, unknown, object, string]> = [
    ['null', null, { name: '', namespace: '', resourceVersion: '' }, 'the object is null, not a map'],
    ['a string', 'greeter-7x2kq', { name: '', namespace: '', resourceVersion: '' }, 'the object is "greeter-7x2kq", not a map'],
    ['an FQDN slice', slice({ addressType: 'FQDN', endpoints: [{ addresses: ['db.example.com'] }] }), SLICE_ID, 'addressType: FQDN slices are not used: meshlite dials IP addresses only'],
    ['an unknown address type', slice({ addressType: 'IPv5' }), SLICE_ID, 'addressType: not IPv4 or IPv6 (got "IPv5")'],
    ['no address type', slice({ addressType: undefined }), SLICE_ID, 'addressType: not IPv4 or IPv6 (got missing)'],
    ['ports not a list', slice({ ports: 'api' }), SLICE_ID, 'ports: not a list (got "api")'],
    ['endpoints not a list', slice({ endpoints: { addresses: ['10.0.0.1'] } }), SLICE_ID, 'endpoints: not a list (got a map)'],
    ['no namespace', slice({ metadata: { name: 'greeter-7x2kq' } }), { name: 'greeter-7x2kq', namespace: '', resourceVersion: '' }, 'metadata.namespace: not a non-empty string (got missing)'],
  ];
  for (const [what, raw, metadata, reason] of invalid) {
    it(`is invalid, with its reason and identity, for ${what}`, () => {
      assert.deepEqual(projectEndpointSlice(raw), {
        kind: 'EndpointSlice',
        metadata,
        invalid: reason,
        warnings: [],
        serviceName: null,
        addressType: 'IPv4',
        ports: [],
        endpoints: [],
        lastChangeTriggerTimeMs: null,
      });
    });
  }
});
