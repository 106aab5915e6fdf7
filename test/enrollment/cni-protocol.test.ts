// The plugin's request bodies: what is accepted (addresses normalised, unknown fields ignored) and the message for each refusal.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAddRequest, parseCheckRequest, parseDelRequest } from '../../agent/enrollment/cni-protocol.ts';

const ADD = { containerId: 'f00d', netns: '/var/run/netns/cni-1', ifName: 'eth0', namespace: 'shop', name: 'client-6c9f8-xk2pq', ips: ['10.79.2.5', 'fd79:2::5'] };

describe('CNI request bodies', () => {
  it('ADD: normalises and deduplicates the addresses, and ignores fields it does not know', () => {
    assert.deepEqual(parseAddRequest({ ...ADD, ips: ['10.79.2.5', '::ffff:10.79.2.5', 'FD79:2:0::5'], uid: 'later-versions-may-send-it' }), {
      ...ADD,
      ips: ['10.79.2.5', 'fd79:2::5'],
    });
  });

  it('ADD: names the field that is wrong', () => {
    const refusals: Array<[unknown, string]> = [
      [null, 'the body must be a JSON object'],
      ['text', 'the body must be a JSON object'],
      [{ ...ADD, netns: '' }, '"netns" must be a non-empty string'],
      [{ ...ADD, ifName: undefined }, '"ifName" is missing'],
      [{ ...ADD, ifName: 'a-very-long-interface' }, '"ifName" is longer than 15 characters'],
      [{ ...ADD, name: 'Client_1' }, '"name" "Client_1" is not a Kubernetes pod name'],
      [{ ...ADD, namespace: 'a.b' }, '"namespace" "a.b" is not a Kubernetes namespace name'],
      [{ ...ADD, ips: '10.0.0.1' }, '"ips" must be a list of IP addresses'],
      [{ ...ADD, ips: ['10.0.0.1', 7] }, '"ips[1]" 7 is not an IP address'],
      [{ ...ADD, ips: ['fe80::1%eth0'] }, '"ips[0]" "fe80::1%eth0" is not an IP address'],
      [{ ...ADD, ips: Array(9).fill('10.0.0.1') }, '"ips" lists more than 8 addresses'],
      [{ ...ADD, containerId: 'x'.repeat(257) }, '"containerId" is longer than 256 characters'],
    ];
    for (const [body, message] of refusals) assert.throws(() => parseAddRequest(body), { name: 'CniRequestError', message }, message);
  });

  it('DEL needs only the sandbox and the pod; CHECK takes the addresses when the plugin has them', () => {
    assert.deepEqual(parseDelRequest({ containerId: 'f00d', namespace: 'shop', name: 'p', netns: '' }), { containerId: 'f00d', namespace: 'shop', name: 'p' });
    // A runtime may leave CNI_ARGS out of a DEL: the container id alone is then enough; half a pod name is not.
    assert.deepEqual(parseDelRequest({ containerId: 'f00d', namespace: null, name: null }), { containerId: 'f00d', namespace: null, name: null });
    assert.throws(() => parseDelRequest({ containerId: 'f00d', namespace: 'shop', name: null }), /"name" is missing/);
    assert.deepEqual(parseCheckRequest({ containerId: 'f00d', namespace: 'shop', name: 'p' }), { containerId: 'f00d', namespace: 'shop', name: 'p', ips: null });
    assert.deepEqual(parseCheckRequest({ containerId: 'f00d', namespace: 'shop', name: 'p', ips: ['::ffff:10.0.0.1'] }), {
      containerId: 'f00d',
      namespace: 'shop',
      name: 'p',
      ips: ['10.0.0.1'],
    });
    assert.throws(() => parseCheckRequest({ containerId: 'f00d', namespace: 'shop', name: 'p', ips: [] }), { message: '"ips" must list at least one address' });
  });
});
