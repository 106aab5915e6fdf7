// Service, Pod and Namespace JSON → records: exact records from realistic objects, and a reason (never a throw) for bad ones.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { projectNamespace, projectPod, projectService } from '../../agent/discovery/kube-projection.ts';
import {
  CLIENT_POD,
  copy,
  DUAL_STACK_SERVICE,
  EXTERNAL_NAME_SERVICE,
  HEADLESS_SERVICE,
  HOST_NETWORK_POD,
  NAMESPACE,
  PENDING_POD,
  WEB_SERVICE,
} from './kube-fixtures.ts';

const IDENTITY_NONE = { name: '', namespace: '', resourceVersion: '' };

function invalidService(metadata: object, invalid: string) {
  return { kind: 'Service', metadata, invalid, warnings: [], clusterIPs: [], ports: [], balancer: null };
}

describe('projectService', () => {
  it('keeps the gRPC port of a dual-stack Service, both ClusterIPs normalised, and its balancer', () => {
    assert.deepEqual(projectService(DUAL_STACK_SERVICE), {
      kind: 'Service',
      metadata: { name: 'greeter', namespace: 'shop', resourceVersion: '48213' },
      invalid: null,
      warnings: [],
      clusterIPs: ['10.96.12.34', 'fd00:10:96::1a2b'],
      ports: [{ name: 'api', port: 50051 }],
      balancer: 'round-robin',
    });
  });

  it('gives a headless Service no ClusterIP and keeps the ports named grpc*/h2c*', () => {
    assert.deepEqual(projectService(HEADLESS_SERVICE), {
      kind: 'Service',
      metadata: { name: 'ledger', namespace: 'bank', resourceVersion: '901' },
      invalid: null,
      warnings: [],
      clusterIPs: [],
      ports: [
        { name: 'grpc', port: 7000 },
        { name: 'h2c-internal', port: 7001 },
      ],
      balancer: null,
    });
  });

  it('keeps nothing but the identity of an ExternalName Service, or of one without a gRPC port', () => {
    const external = projectService(EXTERNAL_NAME_SERVICE);
    const web = projectService(WEB_SERVICE);
    assert.deepEqual(external, {
      kind: 'Service',
      metadata: { name: 'payments', namespace: 'shop', resourceVersion: '77' },
      invalid: null,
      warnings: [],
      clusterIPs: [],
      ports: [],
      balancer: null,
    });
    assert.deepEqual(web, {
      kind: 'Service',
      metadata: { name: 'frontend', namespace: 'shop', resourceVersion: '555' },
      invalid: null,
      warnings: [],
      clusterIPs: [],
      ports: [],
      balancer: null,
    });
    // The empty lists are shared, so ten thousand such Services cost their identities only.
    assert.equal(web.ports, external.ports);
    assert.equal(web.clusterIPs, external.clusterIPs);
    assert.equal(web.warnings, external.warnings);
  });

  it('makes every TCP port gRPC when annotated meshlite.io/protocol: grpc, and takes a single unnamed port', () => {
    const service = copy(WEB_SERVICE);
    Object.assign(service.metadata.annotations, { 'meshlite.io/protocol': 'grpc' });
    assert.deepEqual(projectService(service).ports, [
      { name: 'http', port: 80 },
      { name: 'https', port: 443 },
    ]);
    const single = { metadata: { name: 's', namespace: 'n' }, spec: { clusterIP: '10.0.0.9', ports: [{ port: 50051, appProtocol: 'grpc', targetPort: 9000 }] } };
    assert.deepEqual(projectService(single), {
      kind: 'Service',
      metadata: { name: 's', namespace: 'n', resourceVersion: '' },
      invalid: null,
      warnings: [],
      clusterIPs: ['10.0.0.9'],
      ports: [{ name: '', port: 50051 }],
      balancer: null,
    });
  });

  it('ignores an unknown balancer or protocol annotation but says so, and keeps balancing', () => {
    const service = copy(DUAL_STACK_SERVICE);
    Object.assign(service.metadata.annotations, { 'meshlite.io/balancer': 'fastest', 'meshlite.io/protocol': 'GRPC' });
    const record = projectService(service);
    assert.equal(record.invalid, null);
    assert.equal(record.balancer, null);
    assert.deepEqual(record.ports, [{ name: 'api', port: 50051 }]);
    assert.deepEqual(record.warnings, [
      'metadata.annotations["meshlite.io/protocol"]: "GRPC" is not grpc; ignored',
      `metadata.annotations["meshlite.io/balancer"]: "fastest" is not one of p2c-ewma, least-request, round-robin; ignored, the agent's default balancer applies`,
    ]);
  });

  it('falls back to spec.clusterIP when clusterIPs is absent (objects written before dual-stack)', () => {
    const service = copy(DUAL_STACK_SERVICE) as { spec: Record<string, unknown> };
    delete service.spec.clusterIPs;
    assert.deepEqual(projectService(service).clusterIPs, ['10.96.12.34']);
    service.spec.clusterIP = '';
    assert.deepEqual(projectService(service).clusterIPs, []);
  });

  const spec = DUAL_STACK_SERVICE.spec;
  const withSpec = (changes: Record<string, unknown>) => ({ ...copy(DUAL_STACK_SERVICE), spec: { ...copy(spec), ...changes } });
  const greeter = { name: 'greeter', namespace: 'shop', resourceVersion: '48213' };
  const bad: Array<[string, unknown, object, string]> = [
    ['null', null, IDENTITY_NONE, 'the object is null, not a map'],
    ['a list', [], IDENTITY_NONE, 'the object is a list, not a map'],
    ['a string', 'greeter', IDENTITY_NONE, 'the object is "greeter", not a map'],
    ['a number', 42, IDENTITY_NONE, 'the object is 42, not a map'],
    ['no metadata', { spec }, IDENTITY_NONE, 'metadata: not a map (got missing)'],
    ['a numeric name', { metadata: { name: 7, namespace: 'shop' }, spec }, { ...IDENTITY_NONE, namespace: 'shop' }, 'metadata.name: not a non-empty string (got 7)'],
    ['no namespace', { metadata: { name: 'greeter', resourceVersion: 9 }, spec }, { ...IDENTITY_NONE, name: 'greeter' }, 'metadata.namespace: not a non-empty string (got missing)'],
    ['no spec', { metadata: DUAL_STACK_SERVICE.metadata }, greeter, 'spec: not a map (got missing)'],
    ['ports not a list', withSpec({ ports: { name: 'grpc' } }), greeter, 'spec.ports: not a list (got a map)'],
    ['a port that is a string', withSpec({ ports: [spec.ports[0], 'grpc'] }), greeter, 'spec.ports[1]: not a map (got "grpc")'],
    [
      'a gRPC port without a number',
      withSpec({ ports: [spec.ports[1], { name: 'grpc-b', targetPort: 9 }] }),
      greeter,
      'spec.ports[1].port: not an integer 1..65535 (got missing)',
    ],
    ['a gRPC port out of range', withSpec({ ports: [{ name: 'grpc', port: 70000 }] }), greeter, 'spec.ports[0].port: not an integer 1..65535 (got 70000)'],
    ['a gRPC port as a string', withSpec({ ports: [{ name: 'grpc', port: '50051' }] }), greeter, 'spec.ports[0].port: not an integer 1..65535 (got "50051")'],
    ['a fractional gRPC port', withSpec({ ports: [{ name: 'grpc', port: 50051.5 }] }), greeter, 'spec.ports[0].port: not an integer 1..65535 (got 50051.5)'],
    [
      'two gRPC ports with one name',
      withSpec({ ports: [{ name: 'grpc', port: 1 }, { name: 'grpc', port: 2 }] }),
      greeter,
      'spec.ports[1].name: "grpc" is also the name of spec.ports[0]',
    ],
    [
      'two unnamed gRPC ports',
      withSpec({ ports: [{ port: 1, appProtocol: 'grpc' }, { port: 2, appProtocol: 'grpc' }] }),
      greeter,
      'spec.ports[1].name: "" is also the name of spec.ports[0]',
    ],
    [
      'two gRPC ports with one number',
      withSpec({ ports: [{ name: 'grpc-a', port: 5 }, { name: 'http' }, { name: 'grpc-b', port: 5 }] }),
      greeter,
      'spec.ports[2].port: 5 is also the port of spec.ports[0]',
    ],
    ['a mistyped port name', withSpec({ ports: [{ name: ['grpc'], port: 5, appProtocol: 'grpc' }] }), greeter, 'spec.ports[0].name: not a string (got a list)'],
    ['an unparsable ClusterIP', withSpec({ clusterIPs: ['10.96.12.34', 'fd00::zz'] }), greeter, 'spec.clusterIPs[1]: not an IP address (got "fd00::zz")'],
    ['clusterIPs not a list', withSpec({ clusterIPs: '10.96.12.34' }), greeter, 'spec.clusterIPs: not a list (got "10.96.12.34")'],
    ['a numeric clusterIP', withSpec({ clusterIPs: null, clusterIP: 167772161 }), greeter, 'spec.clusterIP: not an IP address (got 167772161)'],
  ];
  for (const [what, raw, metadata, reason] of bad) {
    it(`is invalid, with its reason and identity, for ${what}`, () => {
      assert.deepEqual(projectService(raw), invalidService(metadata, reason));
    });
  }

  it('does not examine ports it does not keep', () => {
    const service = withSpec({ ports: [spec.ports[0], { name: 'metrics', port: 'nine' }, { name: 'dns', protocol: 'UDP', port: 0 }] });
    assert.equal(projectService(service).invalid, null);
  });

  it('reports a mistyped annotations map and a mistyped annotation, and reads them as absent', () => {
    const service = copy(DUAL_STACK_SERVICE) as { metadata: Record<string, unknown> };
    service.metadata.annotations = 'meshlite.io/balancer=round-robin';
    assert.deepEqual(projectService(service).warnings, ['metadata.annotations: not a map (got "meshlite.io/balancer=round-robin"); read as none']);
    service.metadata.annotations = { 'meshlite.io/balancer': 3 };
    const record = projectService(service);
    assert.equal(record.balancer, null);
    assert.deepEqual(record.warnings, ['metadata.annotations["meshlite.io/balancer"]: not a string (got 3); ignored']);
  });
});

function invalidPod(metadata: object, invalid: string) {
  return { kind: 'Pod', metadata, invalid, warnings: [], nodeName: '', ips: [], hostNetwork: false, phase: '', inject: null };
}

describe('projectPod', () => {
  it('keeps node, both pod IPs (normalised), phase and the inject annotation', () => {
    assert.deepEqual(projectPod(CLIENT_POD), {
      kind: 'Pod',
      metadata: { name: 'client-6c9f8-xk2pq', namespace: 'shop', resourceVersion: '50111' },
      invalid: null,
      warnings: [],
      nodeName: 'node-a',
      ips: ['10.244.1.30', 'fd00:10:244:1::1e'],
      hostNetwork: false,
      phase: 'Running',
      inject: 'enabled',
    });
  });

  it('marks a host-network pod and falls back to status.podIP', () => {
    assert.deepEqual(projectPod(HOST_NETWORK_POD), {
      kind: 'Pod',
      metadata: { name: 'kube-proxy-7h2kd', namespace: 'kube-system', resourceVersion: '880' },
      invalid: null,
      warnings: [],
      nodeName: 'node-a',
      ips: ['192.168.1.10'],
      hostNetwork: true,
      phase: 'Running',
      inject: null,
    });
  });

  it('gives a pending pod no node and no IP, and reads disabled', () => {
    assert.deepEqual(projectPod(PENDING_POD), {
      kind: 'Pod',
      metadata: { name: 'batch-1', namespace: 'jobs', resourceVersion: '12' },
      invalid: null,
      warnings: [],
      nodeName: '',
      ips: [],
      hostNetwork: false,
      phase: 'Pending',
      inject: 'disabled',
    });
    const noStatus = copy(PENDING_POD) as Record<string, unknown>;
    delete noStatus.status;
    assert.deepEqual(projectPod(noStatus).ips, []);
  });

  it('ignores an inject value other than enabled/disabled, and says so', () => {
    const pod = copy(CLIENT_POD);
    pod.metadata.annotations['meshlite.io/inject'] = 'true';
    const record = projectPod(pod);
    assert.equal(record.inject, null);
    assert.deepEqual(record.warnings, ['metadata.annotations["meshlite.io/inject"]: "true" is not enabled or disabled; ignored']);
  });

  const client = { name: 'client-6c9f8-xk2pq', namespace: 'shop', resourceVersion: '50111' };
  const withStatus = (changes: Record<string, unknown>) => ({ ...copy(CLIENT_POD), status: { ...copy(CLIENT_POD.status), ...changes } });
  const withSpec = (changes: Record<string, unknown>) => ({ ...copy(CLIENT_POD), spec: { ...copy(CLIENT_POD.spec), ...changes } });
  const bad: Array<[string, unknown, object, string]> = [
    ['null', null, IDENTITY_NONE, 'the object is null, not a map'],
    ['no spec', { metadata: CLIENT_POD.metadata, status: CLIENT_POD.status }, client, 'spec: not a map (got missing)'],
    ['status not a map', { ...copy(CLIENT_POD), status: 'Running' }, client, 'status: not a map (got "Running")'],
    ['hostNetwork as a string', withSpec({ hostNetwork: 'true' }), client, 'spec.hostNetwork: not a boolean (got "true")'],
    ['a numeric nodeName', withSpec({ nodeName: 1 }), client, 'spec.nodeName: not a string (got 1)'],
    ['a mistyped phase', withStatus({ phase: { running: true } }), client, 'status.phase: not a string (got a map)'],
    ['podIPs not a list', withStatus({ podIPs: '10.244.1.30' }), client, 'status.podIPs: not a list (got "10.244.1.30")'],
    ['a podIPs entry that is a string', withStatus({ podIPs: ['10.244.1.30'] }), client, 'status.podIPs[0]: not a map (got "10.244.1.30")'],
    ['an unparsable pod IP', withStatus({ podIPs: [{ ip: '10.244.1.30' }, { ip: 'fd00::1::2' }] }), client, 'status.podIPs[1].ip: not an IP address (got "fd00::1::2")'],
    ['an unparsable podIP', withStatus({ podIPs: [], podIP: 'pending' }), client, 'status.podIP: not an IP address (got "pending")'],
  ];
  for (const [what, raw, metadata, reason] of bad) {
    it(`is invalid, with its reason and identity, for ${what}`, () => {
      assert.deepEqual(projectPod(raw), invalidPod(metadata, reason));
    });
  }
});

describe('projectNamespace', () => {
  it('keeps the name (namespace is always empty) and the inject annotation', () => {
    assert.deepEqual(projectNamespace(NAMESPACE), {
      kind: 'Namespace',
      metadata: { name: 'shop', namespace: '', resourceVersion: '312' },
      invalid: null,
      warnings: [],
      inject: 'enabled',
    });
    assert.deepEqual(projectNamespace({ metadata: { name: 'default', namespace: 'ignored', resourceVersion: '1' } }), {
      kind: 'Namespace',
      metadata: { name: 'default', namespace: '', resourceVersion: '1' },
      invalid: null,
      warnings: [],
      inject: null,
    });
  });

  it('is invalid without a name', () => {
    for (const raw of [undefined, 'shop', { metadata: { uid: 'x' } }, { metadata: [] }]) {
      const record = projectNamespace(raw);
      assert.equal(record.kind, 'Namespace');
      assert.deepEqual(record.metadata, IDENTITY_NONE);
      assert.equal(typeof record.invalid, 'string');
      assert.equal(record.inject, null);
    }
    assert.equal(projectNamespace({ metadata: { uid: 'x' } }).invalid, 'metadata.name: not a non-empty string (got missing)');
  });
});
