// Parsing one invocation (CNI_* environment and stdin) into a request: every field, every command, every refusal.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCniArgs, podIdentityOf } from '../../cni/cni-args.ts';
import { CniError } from '../../cni/cni-errors.ts';
import { parseRequest } from '../../cni/cni-request.ts';
import { ipsOf, prevResultOf } from '../../cni/prev-result.ts';
import { DEFAULT_SETTINGS, pluginSettingsOf } from '../../cni/plugin-config.ts';
import { attachmentEnv, CONTAINER_ID, NETNS, pluginConfig, prevResultFor } from './support/plugin-process.ts';

function codeOf(run: () => unknown): number {
  try {
    run();
  } catch (err) {
    assert.ok(err instanceof CniError, `expected a CniError, got ${String(err)}`);
    return err.code;
  }
  assert.fail('expected a CniError');
}

test('ADD becomes an attachment with the pod, prevResult, settings and IPs', () => {
  const prevResult = prevResultFor('1.1.0');
  const request = parseRequest(attachmentEnv('ADD'), JSON.stringify(pluginConfig('1.1.0', { prevResult, failPolicy: 'closed', timeoutMs: 800 })));
  assert.deepEqual(request, {
    command: 'ADD',
    cniVersion: '1.1.0',
    network: 'k8s-pod-network',
    settings: { ...DEFAULT_SETTINGS, failPolicy: 'closed', timeoutMs: 800 },
    attachment: { containerId: CONTAINER_ID, ifName: 'eth0', netns: NETNS },
    pod: { namespace: 'shop', name: 'checkout-7d9f' },
    prevResult,
    ips: ['10.78.0.5', 'fd78::5'],
  });
});

test('DEL needs no namespace, prevResult or pod identity', () => {
  const request = parseRequest(attachmentEnv('DEL', { CNI_NETNS: undefined, CNI_ARGS: undefined }), JSON.stringify(pluginConfig('0.4.0')));
  assert.deepEqual(request, {
    command: 'DEL',
    cniVersion: '0.4.0',
    network: 'k8s-pod-network',
    settings: DEFAULT_SETTINGS,
    attachment: { containerId: CONTAINER_ID, ifName: 'eth0', netns: '' },
    pod: null,
  });
});

test('STATUS and GC need only the command (1.1.0), VERSION not even a configuration', () => {
  assert.equal(parseRequest({ CNI_COMMAND: 'STATUS' }, JSON.stringify(pluginConfig('1.1.0'))).command, 'STATUS');
  assert.equal(parseRequest({ CNI_COMMAND: 'GC' }, JSON.stringify(pluginConfig('1.1.0'))).command, 'GC');
  assert.deepEqual(parseRequest({ CNI_COMMAND: 'VERSION' }, ''), { command: 'VERSION', cniVersion: '1.1.0' });
  assert.deepEqual(parseRequest({ CNI_COMMAND: 'VERSION' }, 'not json'), { command: 'VERSION', cniVersion: '1.1.0' });
  assert.deepEqual(parseRequest({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.4.0"}'), { command: 'VERSION', cniVersion: '0.4.0' });
});

test('the checks come in order: command, decoding, version, configuration, environment, pod, prevResult', () => {
  const good = JSON.stringify(pluginConfig('1.0.0', { prevResult: prevResultFor('1.0.0') }));
  assert.equal(codeOf(() => parseRequest({}, good)), 4);
  assert.equal(codeOf(() => parseRequest(attachmentEnv('ADD', { CNI_NETNS: undefined }), '{')), 6);
  assert.equal(codeOf(() => parseRequest(attachmentEnv('ADD', { CNI_NETNS: undefined }), '{"cniVersion":"0.3.0"}')), 1);
  assert.equal(codeOf(() => parseRequest(attachmentEnv('ADD', { CNI_NETNS: undefined }), '{"cniVersion":"1.0.0"}')), 7);
  assert.equal(codeOf(() => parseRequest(attachmentEnv('ADD', { CNI_NETNS: undefined }), good)), 4);
  assert.equal(codeOf(() => parseRequest(attachmentEnv('ADD', { CNI_ARGS: '' }), good)), 4);
  assert.equal(codeOf(() => parseRequest(attachmentEnv('ADD'), JSON.stringify(pluginConfig('1.0.0')))), 7);
  assert.equal(codeOf(() => parseRequest(attachmentEnv('ADD'), JSON.stringify(pluginConfig('1.0.0', { prevResult: [] })))), 7);
});

test('container ids and interface names follow the specification', () => {
  const good = JSON.stringify(pluginConfig('1.0.0', { prevResult: prevResultFor('1.0.0') }));
  for (const id of ['a', 'A_b.c-d', '0123']) assert.equal(parseRequest(attachmentEnv('ADD', { CNI_CONTAINERID: id }), good).command, 'ADD');
  for (const id of ['_a', '.a', 'a b', 'a/b', 'é']) assert.equal(codeOf(() => parseRequest(attachmentEnv('ADD', { CNI_CONTAINERID: id }), good)), 4, id);
  for (const name of ['eth0', 'net1', 'a'.repeat(15)]) assert.equal(parseRequest(attachmentEnv('ADD', { CNI_IFNAME: name }), good).command, 'ADD');
  for (const name of ['.', '..', 'a'.repeat(16), 'eth/0', 'eth:0', 'eth 0', 'ééééééééé']) {
    assert.equal(codeOf(() => parseRequest(attachmentEnv('ADD', { CNI_IFNAME: name }), good)), 4, name);
  }
});

test('CNI_ARGS: pairs split at the first "=", empty segments skipped, the pod read from K8S_POD_*', () => {
  const args = parseCniArgs('IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;;K8S_POD_NAME=a=b;EMPTY=');
  assert.deepEqual([...args], [
    ['IgnoreUnknown', '1'],
    ['K8S_POD_NAMESPACE', 'shop'],
    ['K8S_POD_NAME', 'a=b'],
    ['EMPTY', ''],
  ]);
  assert.deepEqual(podIdentityOf(args), { namespace: 'shop', name: 'a=b' });
  assert.equal(podIdentityOf(parseCniArgs('K8S_POD_NAMESPACE=shop;K8S_POD_NAME=')), null);
  assert.equal(podIdentityOf(parseCniArgs(undefined)), null);
  assert.equal(codeOf(() => parseCniArgs('K8S_POD_NAME')), 4);
  assert.equal(codeOf(() => parseCniArgs('=value')), 4);
});

test('settings: defaults, every key, and a bad value is code 7', () => {
  assert.deepEqual(pluginSettingsOf({}), { agentSocket: '/run/meshlite/cni.sock', timeoutMs: 5000, failPolicy: 'open', logFile: null });
  assert.deepEqual(pluginSettingsOf({ agentSocket: '/s', timeoutMs: 1, failPolicy: 'closed', logFile: '/l', convertedFrom: '10-x.conf' }), {
    agentSocket: '/s',
    timeoutMs: 1,
    failPolicy: 'closed',
    logFile: '/l',
  });
  assert.equal(pluginSettingsOf({ logFile: null }).logFile, null);
  for (const bad of [{ agentSocket: '' }, { agentSocket: 3 }, { timeoutMs: 0 }, { timeoutMs: 1.5 }, { timeoutMs: 120_001 }, { failPolicy: 'Open' }, { logFile: '' }]) {
    assert.equal(codeOf(() => pluginSettingsOf(bad)), 7, JSON.stringify(bad));
  }
});

test('prevResult: absent is null, IPs lose their prefix, duplicates collapse, no ips is an empty list', () => {
  assert.equal(prevResultOf({}), null);
  assert.equal(prevResultOf({ prevResult: null }), null);
  assert.deepEqual(ipsOf({ ips: [{ address: '10.0.0.1/32' }, { address: '10.0.0.1/24' }, { address: '2001:db8::1/128' }, { address: '10.0.0.2' }] }), [
    '10.0.0.1',
    '2001:db8::1',
    '10.0.0.2',
  ]);
  assert.deepEqual(ipsOf({}), []);
  assert.deepEqual(ipsOf({ ips: [] }), []);
  for (const bad of [{ ips: {} }, { ips: ['10.0.0.1/8'] }, { ips: [{ address: 'x/8' }] }, { ips: [{}] }]) {
    assert.equal(codeOf(() => ipsOf(bad)), 7, JSON.stringify(bad));
  }
});
