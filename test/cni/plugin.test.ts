// The plugin's decisions with an injected agent and log: what it asks, what it prints, and what a bug inside it does.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AgentClient, AgentExchange } from '../../cni/agent-client.ts';
import { handleInvocation, type PluginDependencies } from '../../cni/plugin.ts';
import type { PluginSettings } from '../../cni/plugin-config.ts';
import { attachmentEnv, CONTAINER_ID, NETNS, pluginConfig, prevResultFor } from './support/plugin-process.ts';

interface Recorder {
  deps: PluginDependencies;
  calls: { socketPath: string; timeoutMs: number; path: string; body: unknown }[];
  lines: string[];
}

function recorder(answer: (path: string) => AgentExchange | Error): Recorder {
  const calls: Recorder['calls'] = [];
  const lines: string[] = [];
  const deps: PluginDependencies = {
    agentFor: (settings: PluginSettings): AgentClient => ({
      request: async (path, body) => {
        calls.push({ socketPath: settings.agentSocket, timeoutMs: settings.timeoutMs, path, body });
        const result = answer(path);
        if (result instanceof Error) throw result;
        return result;
      },
    }),
    logFor: () => (line) => lines.push(line),
  };
  return { deps, calls, lines };
}

const enrolled: AgentExchange = { kind: 'answered', status: 200, body: '{"enrolled":true,"reason":"annotated"}' };
const prevResult = prevResultFor('1.0.0');

/**
 * What ADD must print for that prevResult, written out here rather than computed by the code under test: every key
 * of prevResult (interfaces, ips, routes, dns), in its order, and nothing else.
 */
const PASSED_ON = {
  exitCode: 0,
  stdout:
    '{"cniVersion":"1.0.0",' +
    '"interfaces":[{"name":"cni0","mac":"0a:58:0a:4e:00:01"},{"name":"veth1a2b3c4d","mac":"6e:3a:51:aa:01:02"},' +
    '{"name":"eth0","mac":"0a:58:0a:4e:00:05","sandbox":"/var/run/netns/cni-1234"}],' +
    '"ips":[{"interface":2,"address":"10.78.0.5/24","gateway":"10.78.0.1"},{"interface":2,"address":"fd78::5/64","gateway":"fd78::1"}],' +
    '"routes":[{"dst":"0.0.0.0/0","gw":"10.78.0.1"}],' +
    '"dns":{"nameservers":["10.96.0.10"],"search":["shop.svc.cluster.local"]}}\n',
};
const addStdin = (extra: Record<string, unknown> = {}) => JSON.stringify(pluginConfig('1.0.0', { prevResult, agentSocket: '/run/x.sock', timeoutMs: 700, ...extra }));

test('ADD asks the configured socket once, with the configured timeout, and logs nothing on success', async () => {
  const r = recorder(() => enrolled);
  const outcome = await handleInvocation(attachmentEnv('ADD'), addStdin(), r.deps);
  assert.deepEqual(outcome, PASSED_ON);
  assert.deepEqual(r.calls, [
    {
      socketPath: '/run/x.sock',
      timeoutMs: 700,
      path: '/v1/cni/add',
      body: { containerId: CONTAINER_ID, netns: NETNS, ifName: 'eth0', namespace: 'shop', name: 'checkout-7d9f', ips: ['10.78.0.5', 'fd78::5'] },
    },
  ]);
  assert.deepEqual(r.lines, []);
});

test('a bug inside the plugin on a fail-open ADD passes the pod through and logs the failure', async () => {
  const r = recorder(() => new TypeError('boom'));
  const outcome = await handleInvocation(attachmentEnv('ADD'), addStdin(), r.deps);
  assert.deepEqual(outcome, PASSED_ON);
  assert.equal(r.lines.length, 1);
  assert.match(r.lines[0] ?? '', /^ADD: meshlite plugin failed unexpectedly \(TypeError: boom/);
});

test('a bug inside the plugin on a fail-closed ADD is error 199; on DEL it is still a success', async () => {
  const r = recorder(() => new TypeError('boom'));
  const closed = await handleInvocation(attachmentEnv('ADD'), addStdin({ failPolicy: 'closed' }), r.deps);
  assert.equal(closed.exitCode, 1);
  assert.equal(JSON.parse(closed.stdout).code, 199);
  const del = await handleInvocation(attachmentEnv('DEL'), addStdin({ failPolicy: 'closed' }), r.deps);
  assert.deepEqual(del, { exitCode: 0, stdout: '' });
});

test('GC and fail-open STATUS never ask the agent', async () => {
  const r = recorder(() => enrolled);
  for (const command of ['GC', 'STATUS']) {
    const outcome = await handleInvocation({ CNI_COMMAND: command }, JSON.stringify(pluginConfig('1.1.0')), r.deps);
    assert.deepEqual(outcome, { exitCode: 0, stdout: '' });
  }
  assert.deepEqual(r.calls, []);
});

test('a DEL the agent answers with 404 (it never saw the pod) is a success with a log line', async () => {
  const r = recorder(() => ({ kind: 'answered', status: 404, body: 'unknown container' }));
  const outcome = await handleInvocation(attachmentEnv('DEL'), addStdin(), r.deps);
  assert.deepEqual(outcome, { exitCode: 0, stdout: '' });
  assert.deepEqual(r.lines, [
    `DEL ${CONTAINER_ID} shop/checkout-7d9f: meshlite agent answered HTTP 404 (unknown container); DEL succeeds anyway and the agent's pod watch removes the pod`,
  ]);
});

test('input errors are logged once, with the command, before the error is returned', async () => {
  const r = recorder(() => enrolled);
  const outcome = await handleInvocation(attachmentEnv('ADD'), '{', r.deps);
  assert.equal(outcome.exitCode, 1);
  assert.equal(r.lines.length, 1);
  assert.match(r.lines[0] ?? '', /^ADD: failed to decode/);
  assert.deepEqual(r.calls, []);
});

test('a prevResult without IPs is passed on without asking the agent, even fail-closed; CHECK succeeds too', async () => {
  const r = recorder(() => enrolled);
  const noIps = { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: NETNS }] };
  const stdin = JSON.stringify(pluginConfig('1.0.0', { prevResult: noIps, failPolicy: 'closed' }));
  assert.deepEqual(await handleInvocation(attachmentEnv('ADD'), stdin, r.deps), {
    exitCode: 0,
    stdout: '{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/var/run/netns/cni-1234"}]}\n',
  });
  assert.deepEqual(await handleInvocation(attachmentEnv('CHECK'), stdin, r.deps), { exitCode: 0, stdout: '' });
  assert.deepEqual(r.calls, []);
  assert.deepEqual(r.lines, [`ADD ${CONTAINER_ID} shop/checkout-7d9f: prevResult lists no IP address; nothing to enroll`]);
});

test('STATUS fail-closed asks with a GET (no body) and is ready only on ready: true', async () => {
  const stdin = JSON.stringify(pluginConfig('1.1.0', { failPolicy: 'closed' }));
  const ready = recorder(() => ({ kind: 'answered', status: 200, body: '{"ready":true}' }));
  assert.deepEqual(await handleInvocation({ CNI_COMMAND: 'STATUS' }, stdin, ready.deps), { exitCode: 0, stdout: '' });
  assert.deepEqual(ready.calls.map((call) => [call.path, call.body]), [['/v1/cni/status', undefined]]);
  const wrongShape = recorder(() => ({ kind: 'answered', status: 200, body: '{"ready":"yes"}' }));
  const outcome = await handleInvocation({ CNI_COMMAND: 'STATUS' }, stdin, wrongShape.deps);
  assert.equal(JSON.parse(outcome.stdout).code, 50);
});

test('ADD passes prevResult on key for key in the version asked for, whatever else it holds', async () => {
  const r = recorder(() => enrolled);
  const mine = {
    interfaces: [{ name: 'eth0', sandbox: NETNS }],
    ips: [{ address: '10.78.0.9/24', gateway: '10.78.0.1', interface: 0 }],
    routes: [{ dst: '0.0.0.0/0' }, { dst: '10.96.0.0/12', gw: '10.78.0.1' }],
    dns: { nameservers: ['10.96.0.10'], domain: 'cluster.local', search: ['a', 'b'], options: ['ndots:5'] },
    'example.com/extra': { kept: true },
  };
  // With cniVersion in prevResult it stays where it is and takes the request's value.
  const withVersion = JSON.stringify(pluginConfig('1.1.0', { prevResult: { cniVersion: '1.0.0', ...mine } }));
  assert.deepEqual(await handleInvocation(attachmentEnv('ADD'), withVersion, r.deps), {
    exitCode: 0,
    stdout:
      '{"cniVersion":"1.1.0","interfaces":[{"name":"eth0","sandbox":"/var/run/netns/cni-1234"}],' +
      '"ips":[{"address":"10.78.0.9/24","gateway":"10.78.0.1","interface":0}],' +
      '"routes":[{"dst":"0.0.0.0/0"},{"dst":"10.96.0.0/12","gw":"10.78.0.1"}],' +
      '"dns":{"nameservers":["10.96.0.10"],"domain":"cluster.local","search":["a","b"],"options":["ndots:5"]},' +
      '"example.com/extra":{"kept":true}}\n',
  });
  // Without it, cniVersion comes first.
  const withoutVersion = JSON.stringify(pluginConfig('1.0.0', { prevResult: mine }));
  assert.deepEqual(await handleInvocation(attachmentEnv('ADD'), withoutVersion, r.deps), {
    exitCode: 0,
    stdout:
      '{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/var/run/netns/cni-1234"}],' +
      '"ips":[{"address":"10.78.0.9/24","gateway":"10.78.0.1","interface":0}],' +
      '"routes":[{"dst":"0.0.0.0/0"},{"dst":"10.96.0.0/12","gw":"10.78.0.1"}],' +
      '"dns":{"nameservers":["10.96.0.10"],"domain":"cluster.local","search":["a","b"],"options":["ndots:5"]},' +
      '"example.com/extra":{"kept":true}}\n',
  });
  assert.deepEqual(
    r.calls.map((call) => (call.body as { ips: string[] }).ips),
    [['10.78.0.9'], ['10.78.0.9']],
  );
});
