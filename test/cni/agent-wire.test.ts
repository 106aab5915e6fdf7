// The plugin process against the agent's real enrollment server: the two sides of the protocol agree on every command.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CniIpClaims } from '../../agent/enrollment/cni-ip-claims.ts';
import { CniEnrollment } from '../../agent/enrollment/enrollment.ts';
import { EnrollmentServer } from '../../agent/enrollment/enrollment-server.ts';
import { OptInIndex } from '../../agent/discovery/opt-in-index.ts';
import { createLogger } from '../../agent/telemetry/logger.ts';
import { NODE, pod } from '../support/opt-in-records.ts';
import { attachmentEnv, CONTAINER_ID, type PluginRun, pluginConfig, runPlugin, stdoutJson } from './support/plugin-process.ts';
import { realClock } from '../../agent/vocabulary/clock.ts';

let directory: string;
let socketPath: string;
let server: EnrollmentServer;
let index: OptInIndex;
/** The interception manager stand-in: rules applied at once unless a test holds them back. */
let applied: () => Promise<void> = () => Promise.resolve();

before(async () => {
  directory = await mkdtemp(join(tmpdir(), 'ml-cni-wire-'));
  socketPath = join(directory, 'run', 'meshlite', 'cni.sock');
  index = new OptInIndex(NODE);
  const ipClaims = new CniIpClaims(index);
  const enrollment = new CniEnrollment({
    ipClaims,
    index,
    lookup: null,
    interception: { whenApplied: () => applied() },
    timers: realClock,
    applyTimeoutMs: 200,
    lookupTimeoutMs: 1000,
    logger: createLogger('silent'),
    countError: () => {},
  });
  server = new EnrollmentServer({ path: socketPath, enrollment, logger: createLogger('silent'), countError: () => {}, probeTimeoutMs: 500 });
  ipClaims.applyPod(pod('checkout-7d9f', { namespace: 'shop', inject: 'enabled', phase: 'Pending' }));
  ipClaims.applyPod(pod('plain', { namespace: 'shop', phase: 'Pending' }));
  await server.start();
});

after(async () => {
  await server.stop();
  await rm(directory, { recursive: true, force: true });
});

const prevResult = { cniVersion: '1.1.0', interfaces: [{ name: 'eth0', sandbox: '/var/run/netns/x' }], ips: [{ interface: 0, address: '10.78.0.5/24' }] };

function invoke(command: string, extra: Record<string, unknown>, env: Record<string, string | undefined> = {}): Promise<PluginRun> {
  const config = pluginConfig('1.1.0', { agentSocket: socketPath, failPolicy: 'closed', timeoutMs: 3000, ...extra });
  return runPlugin({ env: command === 'STATUS' ? { CNI_COMMAND: 'STATUS' } : attachmentEnv(command, env), stdin: JSON.stringify(config) });
}

test('ADD enrolls an opted-in pod through the real server and passes prevResult on', async () => {
  const run = await invoke('ADD', { prevResult });
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.deepEqual(stdoutJson(run), prevResult);
  assert.deepEqual([...index.enrolled.keys()], ['10.78.0.5']);
});

test('CHECK agrees; STATUS is ready; DEL releases, and a repeated DEL succeeds', async () => {
  assert.deepEqual(await invoke('CHECK', { prevResult }), { code: 0, stdout: '', stderr: '' });
  assert.deepEqual(await invoke('STATUS', {}), { code: 0, stdout: '', stderr: '' });
  assert.deepEqual(await invoke('DEL', {}), { code: 0, stdout: '', stderr: '' });
  assert.deepEqual([...index.enrolled.keys()], []);
  assert.deepEqual(await invoke('DEL', {}), { code: 0, stdout: '', stderr: '' });
});

test('a pod that did not opt in starts, and is not enrolled', async () => {
  const run = await invoke('ADD', { prevResult: { ...prevResult, ips: [{ address: '10.78.0.6/24' }] } }, { CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=plain' });
  assert.equal(run.code, 0, run.stdout);
  assert.deepEqual([...index.enrolled.keys()], []);
});

test("rules that lag past the agent's bound: fail-closed ADD fails with 102 and the agent's code in details", async () => {
  applied = () => new Promise(() => {});
  try {
    const run = await invoke('ADD', { prevResult: { ...prevResult, ips: [{ address: '10.78.0.7/24' }] } }, { CNI_CONTAINERID: `${CONTAINER_ID}7` });
    assert.equal(run.code, 1);
    const error = stdoutJson(run);
    assert.equal(error.code, 102);
    assert.match(String(error.details), /^ML_CNI_NOT_APPLIED: pod shop\/checkout-7d9f .*not applied within 200 ms/);
  } finally {
    applied = () => Promise.resolve();
  }
});

test('a DEL whose runtime did not name the pod: the agent finds the sandbox by its container id', async () => {
  const run = await invoke('DEL', {}, { CNI_ARGS: undefined });
  assert.deepEqual(run, { code: 0, stdout: '', stderr: '' });
});
