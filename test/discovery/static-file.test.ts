// The static discovery file: the issue's example parses to exact specs; each malformed case names its field and line.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatPath, parseStaticFile, StaticFileError } from '../../agent/discovery/static-file.ts';

const ISSUE_EXAMPLE = `services:
  - name: greeter
    namespace: default
    port: 50051              # the port clients dial
    clusterIP: 10.96.0.10    # optional; used by transparent interception
    balancer: round-robin    # optional, overrides the agent default
    endpoints:
      - address: 127.0.0.11:50051
      - address: 127.0.0.12:50051
        terminating: true    # optional
`;

/** Asserts a StaticFileError whose message is exactly `expected` (file:line:col: path: what). */
function rejects(text: string, expected: string | RegExp): void {
  assert.throws(
    () => parseStaticFile(text, 'mesh.yaml'),
    (error: unknown) => {
      assert.ok(error instanceof StaticFileError, `a StaticFileError, got ${String(error)}`);
      assert.equal(error.code, 'ML_STATIC_FILE_INVALID');
      if (typeof expected === 'string') assert.equal(error.message, expected);
      else assert.match(error.message, expected);
      return true;
    },
  );
}

/** One service with the given extra lines (indented as service fields) and endpoint lines. */
function service(fields: string, endpoints = '      - address: 10.0.0.1:50051\n'): string {
  return `services:\n  - name: greeter\n    port: 50051\n${fields}    endpoints:\n${endpoints}`;
}

describe('parseStaticFile', () => {
  it("parses the issue's example to the exact ServiceSpecs", () => {
    assert.deepEqual(parseStaticFile(ISSUE_EXAMPLE, 'mesh.yaml'), {
      services: [
        {
          key: 'default/greeter:50051',
          namespace: 'default',
          name: 'greeter',
          port: 50051,
          clusterIPs: ['10.96.0.10'],
          balancer: 'round-robin',
          endpoints: [
            { address: '127.0.0.11:50051', host: '127.0.0.11', port: 50051, ready: true, serving: true, terminating: false },
            { address: '127.0.0.12:50051', host: '127.0.0.12', port: 50051, ready: false, serving: true, terminating: true },
          ],
        },
      ],
      pods: [],
    });
  });

  it('defaults namespace, clusterIP and balancer; accepts IPv6 endpoints in canonical form', () => {
    const { services } = parseStaticFile(service('', '      - address: "[FD00:0::7]:50051"\n      - address: 10.0.0.8:50051\n        terminating: false\n'), 'mesh.yaml');
    assert.equal(services[0].key, 'default/greeter:50051');
    assert.deepEqual(services[0].clusterIPs, []);
    assert.equal(services[0].balancer, null);
    assert.deepEqual(services[0].endpoints, [
      { address: '[fd00::7]:50051', host: 'fd00::7', port: 50051, ready: true, serving: true, terminating: false },
      { address: '10.0.0.8:50051', host: '10.0.0.8', port: 50051, ready: true, serving: true, terminating: false },
    ]);
  });

  it('accepts a dual-stack service: clusterIPs, one per family, primary first, IPv6 canonical; clusterIP may repeat the primary', () => {
    const dual = parseStaticFile(service('    clusterIPs: ["10.96.0.10", "FD00:0::10"]\n'), 'mesh.yaml');
    assert.deepEqual(dual.services[0].clusterIPs, ['10.96.0.10', 'fd00::10']);
    const v6First = parseStaticFile(service('    clusterIP: fd00::10\n    clusterIPs: [fd00::10, 10.96.0.10]\n'), 'mesh.yaml');
    assert.deepEqual(v6First.services[0].clusterIPs, ['fd00::10', '10.96.0.10']);
    assert.deepEqual(parseStaticFile(service('    clusterIPs: [10.96.0.10]\n'), 'mesh.yaml').services[0].clusterIPs, ['10.96.0.10']);
  });

  it('rejects clusterIPs that Kubernetes would reject, pointing at the field', () => {
    rejects(service('    clusterIPs: []\n'), 'mesh.yaml:4:5: services[0].clusterIPs: 0 addresses; expected one, or one IPv4 and one IPv6 (primary first)');
    rejects(service('    clusterIPs: [10.96.0.1, fd00::1, 10.96.0.2]\n'), /services\[0\]\.clusterIPs: 3 addresses; expected one/);
    rejects(service('    clusterIPs: 10.96.0.1\n'), 'mesh.yaml:4:5: services[0].clusterIPs: "10.96.0.1" is not a list');
    rejects(service('    clusterIPs: [10.96.0.1, None]\n'), /services\[0\]\.clusterIPs\[1\]: "None" is not an IP address/);
    rejects(service('    clusterIPs: [10.96.0.1, 10.96.0.2]\n'), /services\[0\]\.clusterIPs\[1\]: 10\.96\.0\.2 is of the same family as 10\.96\.0\.1; expected one IPv4 and one IPv6$/);
    rejects(
      service('    clusterIP: fd00::1\n    clusterIPs: [10.96.0.1, fd00::1]\n'),
      'mesh.yaml:4:5: services[0].clusterIP: fd00::1 is not clusterIPs[0] (10.96.0.1); when both are given, clusterIP is the primary',
    );
  });

  it('accepts an explicit empty list of services and of endpoints', () => {
    assert.deepEqual(parseStaticFile('services: []\n', 'mesh.yaml'), { services: [], pods: [] });
    assert.deepEqual(parseStaticFile(service('', '      []\n'), 'mesh.yaml').services[0].endpoints, []);
  });

  it('keeps two ports of one service apart', () => {
    const text = `services:
  - { name: greeter, port: 50051, endpoints: [{ address: 10.0.0.1:50051 }] }
  - { name: greeter, port: 50052, endpoints: [{ address: 10.0.0.1:50052 }] }
`;
    assert.deepEqual(
      parseStaticFile(text, 'mesh.yaml').services.map((s) => s.key),
      ['default/greeter:50051', 'default/greeter:50052'],
    );
  });

  it('returns the optional pods list', () => {
    const text = `services: []
pods:
  - { name: client-7d9f, namespace: shop, ip: 10.244.1.5, inject: enabled }
  - { name: batch-0, ip: "fd00::0:9", inject: disabled }
  - { name: new-pod, inject: enabled }
  - { name: other-new-pod, inject: enabled }
`;
    // A pod without an IP gets one from the CNI plugin when it starts; two such pods do not clash.
    assert.deepEqual(parseStaticFile(text, 'mesh.yaml').pods, [
      { namespace: 'shop', name: 'client-7d9f', ip: '10.244.1.5', inject: 'enabled' },
      { namespace: 'default', name: 'batch-0', ip: 'fd00::9', inject: 'disabled' },
      { namespace: 'default', name: 'new-pod', ip: null, inject: 'enabled' },
      { namespace: 'default', name: 'other-new-pod', ip: null, inject: 'enabled' },
    ]);
  });

  it('rejects an empty file and one that is not a mapping', () => {
    rejects('', 'mesh.yaml: the file is empty; expected a mapping with a "services" list');
    rejects('# only a comment\n', 'mesh.yaml: the file is empty; expected a mapping with a "services" list');
    rejects('- a\n', 'mesh.yaml:1:1: a list is not a mapping; expected keys services, pods');
  });

  it('rejects text that is not YAML, with its line', () => {
    rejects('services: [\n', /^mesh\.yaml:2:1: not valid YAML: Flow sequence/);
    rejects('services: []\nservices: []\n', /^mesh\.yaml:2:1: not valid YAML: Map keys must be unique/);
  });

  it('rejects unknown keys at every level, pointing at the key', () => {
    rejects('services: []\nendpoints: []\n', 'mesh.yaml:2:1: endpoints: unknown key; expected one of services, pods');
    rejects(service('    balancr: round-robin\n'), 'mesh.yaml:4:5: services[0].balancr: unknown key; expected one of name, namespace, port, clusterIP, clusterIPs, balancer, endpoints');
    rejects(
      service('', '      - address: 10.0.0.1:50051\n        terminatng: true\n'),
      'mesh.yaml:6:9: services[0].endpoints[0].terminatng: unknown key; expected one of address, terminating',
    );
  });

  it('rejects missing required fields, naming them', () => {
    rejects('pods: []\n', 'mesh.yaml:1:1: "services" is missing');
    rejects('services:\n  - name: greeter\n    endpoints: []\n', 'mesh.yaml:2:5: services[0]: "port" is missing');
    rejects('services:\n  - name: greeter\n    port: 50051\n', 'mesh.yaml:2:5: services[0]: "endpoints" is missing');
    rejects(service('', '      - terminating: true\n'), 'mesh.yaml:5:9: services[0].endpoints[0]: "address" is missing');
    rejects('services:\n  - port: 1\n    endpoints: []\n', 'mesh.yaml:2:5: services[0]: "name" is missing');
  });

  it('rejects bad endpoint addresses', () => {
    const at = (address: string) => service('', `      - address: ${address}\n`);
    rejects(at('backend:50051'), /^mesh\.yaml:5:9: services\[0\]\.endpoints\[0\]\.address: "backend:50051" is not IP:port \("backend" is not an IP address\)/);
    rejects(at('10.0.0.1'), /services\[0\]\.endpoints\[0\]\.address: "10\.0\.0\.1" is not IP:port \(the port is missing\)/);
    rejects(at('10.0.0.1:0'), /services\[0\]\.endpoints\[0\]\.address: .* not in 1\.\.65535/);
    rejects(at('"::1:50051"'), /services\[0\]\.endpoints\[0\]\.address: .*must be in brackets/);
    rejects(at('50051'), /services\[0\]\.endpoints\[0\]\.address: 50051 is not a string; expected IP:port/);
    rejects(service('', '      - address: 10.0.0.1:50051\n      - address: 10.0.0.1:50051\n'), 'mesh.yaml:6:9: services[0].endpoints[1].address: 10.0.0.1:50051 is listed twice (also endpoints[0])');
  });

  it('rejects a bad balancer name, listing the valid ones', () => {
    rejects(service('    balancer: random\n'), 'mesh.yaml:4:5: services[0].balancer: "random" is not a balancer; expected one of p2c-ewma, least-request, round-robin');
  });

  it('rejects bad ports', () => {
    const withPort = (port: string) => `services:\n  - name: greeter\n    port: ${port}\n    endpoints: []\n`;
    for (const port of ['0', '65536', '"50051"', '50051.5', '-1']) {
      rejects(withPort(port), /^mesh\.yaml:3:5: services\[0\]\.port: .* is not a port; expected an integer from 1 to 65535$/);
    }
  });

  it('rejects bad names, namespaces, clusterIPs, terminating and inject values', () => {
    rejects(service('').replace('greeter', 'Greeter'), /services\[0\]\.name: "Greeter" is not a Service name/);
    rejects(service('').replace('greeter', 'greeter.default'), /services\[0\]\.name: "greeter\.default" is not a Service name/);
    rejects(service('    namespace: my_ns\n'), /services\[0\]\.namespace: "my_ns" is not a namespace/);
    rejects(service('    clusterIP: None\n'), 'mesh.yaml:4:5: services[0].clusterIP: "None" is not an IP address');
    rejects(service('', '      - address: 10.0.0.1:50051\n        terminating: "yes"\n'), /services\[0\]\.endpoints\[0\]\.terminating: "yes" is not true or false/);
    rejects('services: []\npods:\n  - { name: a, ip: 10.0.0.1, inject: true }\n', /pods\[0\]\.inject: true is not enabled or disabled/);
    rejects('services: []\npods:\n  - { name: a, ip: 10.0.0, inject: enabled }\n', /pods\[0\]\.ip: "10\.0\.0" is not an IP address/);
  });

  it('rejects a duplicate service (same namespace, name and port)', () => {
    const text = `services:
  - { name: greeter, port: 50051, endpoints: [] }
  - { name: other, port: 50051, endpoints: [] }
  - { name: greeter, namespace: default, port: 50051, endpoints: [] }
`;
    rejects(text, 'mesh.yaml:4:5: services[2]: duplicate of services[0] (default/greeter:50051)');
  });

  it('rejects two services on one clusterIP:port, and duplicate pods', () => {
    const text = `services:
  - { name: a, port: 80, clusterIP: 10.96.0.1, endpoints: [] }
  - { name: b, port: 80, clusterIP: 10.96.0.1, endpoints: [] }
`;
    rejects(text, /services\[1\]\.clusterIP: 10\.96\.0\.1:80 is also the address of services\[0\]/);
    const dual = `services:
  - { name: a, port: 80, clusterIPs: [10.96.0.1, "fd00::1"], endpoints: [] }
  - { name: b, port: 80, clusterIPs: [10.96.0.2, "fd00::1"], endpoints: [] }
`;
    rejects(dual, /^mesh\.yaml:3:\d+: services\[1\]\.clusterIPs\[1\]: \[fd00::1\]:80 is also the address of services\[0\]$/);
    rejects('services: []\npods:\n  - { name: a, ip: 10.0.0.1, inject: enabled }\n  - { name: b, ip: 10.0.0.1, inject: enabled }\n', /pods\[1\]\.ip: 10\.0\.0\.1 is also the IP of pods\[0\]/);
  });

  it('formats field paths the way the messages do', () => {
    assert.equal(formatPath(['services', 1, 'endpoints', 0, 'address']), 'services[1].endpoints[0].address');
    assert.equal(formatPath(['pods']), 'pods');
  });
});
