// The plugin's decisions with an injected agent and log: what it asks, what it prints, and what a bug inside it does.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AgentClient, AgentExchange } from '../../cni/agent-client.ts';
import { passThroughOutcome } from '../../cni/cni-result.ts';
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
const addStdin = (extra: Record<string, unknown> = {}) => JSON.stringify(pluginConfig('1.0.0', { prevResult, agentSocket: '/run/x.sock', timeoutMs: 700, ...extra }));

test('ADD asks the configured socket once, with the configured timeout, and logs nothing on success', async () => {
  const r = recorder(() => enrolled);
  const outcome = await handleInvocation(attachmentEnv('ADD'), addStdin(), r.deps);
  assert.deepEqual(outcome, passThroughOutcome(prevResult, '1.0.0'));
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
  assert.deepEqual(outcome, passThroughOutcome(prevResult, '1.0.0'));
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
  assert.deepEqual(await handleInvocation(attachmentEnv('ADD'), stdin, r.deps), passThroughOutcome(noIps, '1.0.0'));
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
