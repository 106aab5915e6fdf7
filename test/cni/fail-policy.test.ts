// When the agent cannot be asked: fail-open passes the pod through and logs, fail-closed fails with meshlite's codes.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { FailPolicy } from '../../cni/plugin-config.ts';
import { type AgentBehaviour, healthyAgent, startFakeAgent } from './support/fake-agent.ts';
import { attachmentEnv, type PluginRun, pluginConfig, prevResultFor, runPlugin, stdoutJson } from './support/plugin-process.ts';

const dir = mkdtempSync(join(tmpdir(), 'ml-cni-policy-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let serial = 0;
const prevResult = prevResultFor('1.0.0');

interface Scenario {
  command: 'ADD' | 'CHECK' | 'DEL' | 'STATUS';
  failPolicy: FailPolicy;
  /** null: no agent at all (no socket file). */
  agent: AgentBehaviour | null;
  timeoutMs?: number;
  logFile?: boolean;
}

async function scenario({ command, failPolicy, agent: behaviour, timeoutMs = 5000, logFile = false }: Scenario): Promise<{ run: PluginRun; log: string; elapsedMs: number }> {
  serial += 1;
  const socket = join(dir, `agent-${serial}.sock`);
  const logPath = join(dir, `cni-${serial}.log`);
  const agent = behaviour === null ? null : await startFakeAgent(socket, behaviour);
  const config = pluginConfig('1.1.0', {
    agentSocket: socket,
    failPolicy,
    timeoutMs,
    ...(logFile ? { logFile: logPath } : {}),
    ...(command === 'STATUS' ? {} : { prevResult }),
  });
  const env = command === 'STATUS' ? { CNI_COMMAND: 'STATUS', CNI_PATH: '/opt/cni/bin' } : attachmentEnv(command);
  const started = Date.now();
  try {
    const run = await runPlugin({ env, stdin: JSON.stringify(config) });
    let log = '';
    try {
      log = readFileSync(logPath, 'utf8');
    } catch {}
    return { run, log, elapsedMs: Date.now() - started };
  } finally {
    await agent?.close();
  }
}

const failing: AgentBehaviour = () => ({ status: 503, body: { code: 'ML_CNI_NOT_APPLIED', message: 'rules not applied in time' } });
const slow: AgentBehaviour = (request) => ({ ...(healthyAgent(request) as { status: number; body: unknown }), delayMs: 3000 });

function assertPassedThrough(run: PluginRun): void {
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.deepEqual(stdoutJson(run), { ...prevResult, cniVersion: '1.1.0' });
}

function assertError(run: PluginRun, code: number, msg: RegExp): void {
  assert.equal(run.code, 1, run.stdout);
  const error = stdoutJson(run);
  assert.equal(error.code, code);
  assert.match(String(error.msg), msg);
}

test('fail-open ADD with no agent passes prevResult through and logs to the log file, not stdout', async () => {
  const { run, log } = await scenario({ command: 'ADD', failPolicy: 'open', agent: null, logFile: true });
  assertPassedThrough(run);
  assert.equal(run.stderr, '');
  assert.match(log, /^\S+Z meshlite-cni\[\d+\] ADD 3f69\S+ shop\/checkout-7d9f: meshlite agent unreachable at \S+agent-\d+\.sock \(ENOENT .*fail-open/);
  assert.equal(log.split('\n').length, 2);
});

test('fail-open ADD with no agent and no log file logs to stderr', async () => {
  const { run } = await scenario({ command: 'ADD', failPolicy: 'open', agent: null });
  assertPassedThrough(run);
  assert.match(run.stderr, /meshlite agent unreachable.*fail-open/);
});

test('fail-closed ADD with no agent fails with code 100', async () => {
  const { run } = await scenario({ command: 'ADD', failPolicy: 'closed', agent: null });
  assertError(run, 100, /meshlite agent unreachable at /);
  assert.match(run.stderr, /fail-closed/);
});

test('a socket file nobody listens on is unreachable too (ECONNREFUSED)', async () => {
  serial += 1;
  const socket = join(dir, `stale-${serial}.sock`);
  const stale = await startFakeAgent(socket);
  await stale.close();
  writeFileSync(socket, ''); // what a crashed agent can leave behind: a path that refuses connections
  const config = pluginConfig('1.1.0', { agentSocket: socket, failPolicy: 'closed', prevResult });
  const run = await runPlugin({ env: attachmentEnv('ADD'), stdin: JSON.stringify(config) });
  assertError(run, 100, /unreachable/);
  assert.match(String(stdoutJson(run).details), /ECONNREFUSED/);
});

test('fail-open ADD with an agent answering 503 passes through; fail-closed fails with code 102', async () => {
  assertPassedThrough((await scenario({ command: 'ADD', failPolicy: 'open', agent: failing })).run);
  const { run } = await scenario({ command: 'ADD', failPolicy: 'closed', agent: failing });
  assertError(run, 102, /answered HTTP 503/);
  assert.equal(stdoutJson(run).details, 'ML_CNI_NOT_APPLIED: rules not applied in time');
});

test('an agent whose reply is not the protocol fails closed with code 102', async () => {
  const { run } = await scenario({ command: 'ADD', failPolicy: 'closed', agent: () => ({ status: 200, body: { enrolled: 'yes' } }) });
  assertError(run, 102, /cannot read/);
});

test('a slow agent: the plugin gives up at timeoutMs (fail-closed 101, fail-open passes through)', async () => {
  const closed = await scenario({ command: 'ADD', failPolicy: 'closed', agent: slow, timeoutMs: 300 });
  assertError(closed.run, 101, /did not answer within 300 ms/);
  assert.ok(closed.elapsedMs < 2500, `gave up after ${closed.elapsedMs} ms`);
  const open = await scenario({ command: 'ADD', failPolicy: 'open', agent: slow, timeoutMs: 300 });
  assertPassedThrough(open.run);
  assert.match(open.run.stderr, /did not answer within 300 ms.*fail-open/);
  assert.ok(open.elapsedMs < 2500, `gave up after ${open.elapsedMs} ms`);
});

test('an agent that drops the connection is unreachable', async () => {
  const { run } = await scenario({ command: 'ADD', failPolicy: 'closed', agent: () => ({ reset: true }) });
  assertError(run, 100, /unreachable/);
});

test('an agent that takes its time but answers within timeoutMs enrolls the pod', async () => {
  const late: AgentBehaviour = (request) => ({ ...(healthyAgent(request) as { status: number; body: unknown }), delayMs: 400 });
  const { run, elapsedMs } = await scenario({ command: 'ADD', failPolicy: 'closed', agent: late, timeoutMs: 3000 });
  assertPassedThrough(run);
  assert.ok(elapsedMs >= 400);
  assert.equal(run.stderr, '');
});

test('an agent that does not enroll the pod (not opted in) is a success, silently', async () => {
  const { run } = await scenario({ command: 'ADD', failPolicy: 'closed', agent: () => ({ status: 200, body: { enrolled: false, reason: 'not annotated' } }) });
  assertPassedThrough(run);
  assert.equal(run.stderr, '');
});

test('DEL succeeds with no agent, a failing agent or a hanging one, whatever the policy', async () => {
  for (const agent of [null, failing, (() => ({ hang: true })) as AgentBehaviour]) {
    const { run } = await scenario({ command: 'DEL', failPolicy: 'closed', agent, timeoutMs: 300 });
    assert.equal(run.code, 0, run.stdout);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /DEL succeeds anyway/);
  }
});

test('CHECK: fail-open succeeds without an agent, fail-closed fails, a disagreeing agent fails either way (103)', async () => {
  const open = await scenario({ command: 'CHECK', failPolicy: 'open', agent: null });
  assert.equal(open.run.code, 0);
  assert.equal(open.run.stdout, '');
  assertError((await scenario({ command: 'CHECK', failPolicy: 'closed', agent: null })).run, 100, /unreachable/);
  const disagrees: AgentBehaviour = () => ({ status: 200, body: { enrolled: false, expected: true, reason: '10.78.0.5 is not in meshlite-pods' } });
  for (const failPolicy of ['open', 'closed'] as const) {
    const { run } = await scenario({ command: 'CHECK', failPolicy, agent: disagrees });
    assertError(run, 103, /not enrolled but it should be/);
    assert.equal(stdoutJson(run).details, '10.78.0.5 is not in meshlite-pods');
  }
});

test('CHECK agrees when the agent says the pod is rightly not enrolled; fails when it is enrolled but should not be', async () => {
  const notOptedIn: AgentBehaviour = () => ({ status: 200, body: { enrolled: false, expected: false, reason: 'not annotated' } });
  const agrees = await scenario({ command: 'CHECK', failPolicy: 'closed', agent: notOptedIn });
  assert.equal(agrees.run.code, 0, agrees.run.stdout);
  const stale: AgentBehaviour = () => ({ status: 200, body: { enrolled: true, expected: false } });
  const { run } = await scenario({ command: 'CHECK', failPolicy: 'closed', agent: stale });
  assertError(run, 103, /enrolled but it should not be/);
  assert.equal(stdoutJson(run).details, '');
});

test('STATUS: fail-open is ready without asking; fail-closed reports 50 when the agent is missing or not ready', async () => {
  const open = await scenario({ command: 'STATUS', failPolicy: 'open', agent: null });
  assert.equal(open.run.code, 0);
  assert.equal(open.run.stdout, '');
  assertError((await scenario({ command: 'STATUS', failPolicy: 'closed', agent: null })).run, 50, /cannot service ADD/);
  const notReady: AgentBehaviour = () => ({ status: 200, body: { ready: false, reason: 'informers not synced' } });
  const { run } = await scenario({ command: 'STATUS', failPolicy: 'closed', agent: notReady });
  assertError(run, 50, /cannot service ADD/);
  assert.equal(stdoutJson(run).details, 'agent not ready: informers not synced');
});

test('a log file that cannot be written falls back to stderr', async () => {
  const config = pluginConfig('1.1.0', { agentSocket: join(dir, 'none.sock'), logFile: join(dir, 'missing-dir', 'cni.log'), prevResult });
  const run = await runPlugin({ env: attachmentEnv('ADD'), stdin: JSON.stringify(config) });
  assertPassedThrough(run);
  assert.match(run.stderr, /cannot write log file .*missing-dir/);
  assert.match(run.stderr, /meshlite agent unreachable/);
});
