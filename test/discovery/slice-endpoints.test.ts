// Slice endpoints → EndpointSpecs: port by name, one spec per address, duplicates keep the most usable state.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { endpointRank, mergeSliceEndpoints, slicePortNamed } from '../../agent/discovery/slice-endpoints.ts';
import type { EndpointSpec } from '../../agent/registry/endpoint.ts';
import { endpointSpec, sliceEndpoint, sliceRecord } from '../support/service-records.ts';

test('endpointRank: active 2, serving-terminating 1, not serving 0', () => {
  assert.deepEqual(
    (['active', 'terminating', 'dark', 'not-ready'] as const).map((state) => endpointRank(endpointSpec('10.0.0.1', 1, state))),
    [2, 1, 0, 0],
  );
  // Ready yet not serving contradicts the API; it is not counted as active (never an endpoint whose serving is false).
  assert.equal(endpointRank({ ...endpointSpec('10.0.0.1'), serving: false }), 0);
});

test('slicePortNamed finds the port by name, the unnamed one by ""', () => {
  const slice = sliceRecord('s', 'svc', [], {
    ports: [
      { name: '', port: 80 },
      { name: 'grpc', port: 8443 },
    ],
  });
  assert.deepEqual(slicePortNamed(slice, 'grpc'), { name: 'grpc', port: 8443 });
  assert.deepEqual(slicePortNamed(slice, ''), { name: '', port: 80 });
  assert.equal(slicePortNamed(slice, 'grpc-admin'), undefined);
});

test('mergeSliceEndpoints: one spec per address, IPv6 bracketed, first listing kept on a tie, better state wins', () => {
  const into = new Map<string, EndpointSpec>();
  const twoAddresses = { ...sliceEndpoint('fd00::1'), addresses: ['fd00::1', 'fd00::2'] };
  const a = [twoAddresses, sliceEndpoint('fd00::3', 'dark'), sliceEndpoint('fd00::4', 'dark')];
  mergeSliceEndpoints(into, sliceRecord('a', 'svc', a), 9000);
  mergeSliceEndpoints(
    into,
    sliceRecord('b', 'svc', [sliceEndpoint('fd00::3', 'terminating'), { ...sliceEndpoint('fd00::1'), serving: true }, sliceEndpoint('fd00::2', 'not-ready'), sliceEndpoint('fd00::4', 'not-ready')]),
    9000,
  );
  assert.deepEqual(
    [...into.values()],
    [endpointSpec('fd00::1', 9000), endpointSpec('fd00::2', 9000), endpointSpec('fd00::3', 9000, 'terminating'), endpointSpec('fd00::4', 9000, 'dark')],
  );
  assert.deepEqual([...into.keys()], ['[fd00::1]:9000', '[fd00::2]:9000', '[fd00::3]:9000', '[fd00::4]:9000']);
});
