// Which Service ports are gRPC: appProtocol, name prefix, the Service annotation; TCP only; exact case.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isGrpcServicePort, isTcp, type RawServicePortFields } from '../../agent/discovery/grpc-ports.ts';

describe('isGrpcServicePort', () => {
  const cases: Array<[string, RawServicePortFields, boolean, boolean]> = [
    // [what, port fields, annotated, expected]
    ['appProtocol grpc', { name: 'api', appProtocol: 'grpc' }, false, true],
    ['appProtocol kubernetes.io/h2c', { name: 'api', protocol: 'TCP', appProtocol: 'kubernetes.io/h2c' }, false, true],
    ['appProtocol http2', { appProtocol: 'http2' }, false, true],
    ['appProtocol kubernetes.io/grpc', { appProtocol: 'kubernetes.io/grpc' }, false, true],
    ['GKE HTTP2 (HTTP/2 over TLS)', { name: 'api', appProtocol: 'HTTP2' }, false, false],
    ['appProtocol GRPC in upper case', { appProtocol: 'GRPC' }, false, false],
    ['appProtocol http', { name: 'web', appProtocol: 'http' }, false, false],
    ['name grpc', { name: 'grpc' }, false, true],
    ['name grpc-api', { name: 'grpc-api', protocol: 'TCP' }, false, true],
    ['name h2c-internal', { name: 'h2c-internal' }, false, true],
    ['name grpcs (the prefix rule)', { name: 'grpcs' }, false, true],
    ['name http', { name: 'http' }, false, false],
    ['name my-grpc (prefix, not substring)', { name: 'my-grpc' }, false, false],
    ['no name, no appProtocol', {}, false, false],
    ['empty appProtocol falls back to the name', { name: 'grpc', appProtocol: '' }, false, true],
    ['a declared appProtocol wins over the name', { name: 'grpc-tls', appProtocol: 'https' }, false, false],
    ['a mistyped appProtocol falls back to the name', { name: 'grpc', appProtocol: 7 }, false, true],
    ['UDP named grpc', { name: 'grpc', protocol: 'UDP' }, false, false],
    ['SCTP with appProtocol grpc', { protocol: 'SCTP', appProtocol: 'grpc' }, false, false],
    ['lower-case tcp is not a protocol the API knows', { name: 'grpc', protocol: 'tcp' }, false, false],
    ['null protocol means TCP', { name: 'grpc', protocol: null }, false, true],
    ['annotated: any TCP port', { name: 'http', appProtocol: 'http' }, true, true],
    ['annotated: an unnamed port', {}, true, true],
    ['annotated: not UDP', { name: 'grpc', protocol: 'UDP' }, true, false],
    ['mistyped name', { name: 42 }, false, false],
  ];
  for (const [what, port, annotated, expected] of cases) {
    it(`${what} → ${expected}`, () => {
      assert.equal(isGrpcServicePort(port, annotated), expected);
    });
  }
});

describe('isTcp', () => {
  it('is TCP when absent or exactly TCP', () => {
    assert.deepEqual([undefined, null, 'TCP', 'UDP', 'SCTP', 'tcp', 6].map(isTcp), [true, true, true, false, false, false, false]);
  });
});
