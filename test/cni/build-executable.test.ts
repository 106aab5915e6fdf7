// The plugin bundled into one script behaves as cni/main.ts does; built as a single executable it runs with no Node on PATH.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildExecutable, bundlePlugin, findPostject } from '../../cni/build-executable.ts';
import { SUPPORTED_VERSIONS } from '../../cni/cni-version.ts';
import { type FakeAgent, startFakeAgent } from './support/fake-agent.ts';
import { attachmentEnv, pluginConfig, prevResultFor, runPlugin } from './support/plugin-process.ts';

const dir = mkdtempSync(join(tmpdir(), 'ml-cni-build-'));
let agent: FakeAgent;

before(async () => {
  agent = await startFakeAgent(join(dir, 'agent.sock'));
});

after(async () => {
  await agent.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A few invocations that cover every path through main.ts: answers, errors, agent calls, fail-open logging. */
function invocations(): { env: Record<string, string>; stdin: string }[] {
  const prevResult = prevResultFor('1.0.0');
  return [
    { env: { CNI_COMMAND: 'VERSION' }, stdin: '{"cniVersion":"0.4.0"}' },
    { env: attachmentEnv('ADD'), stdin: JSON.stringify(pluginConfig('1.0.0', { agentSocket: agent.socketPath, prevResult })) },
    { env: attachmentEnv('ADD'), stdin: JSON.stringify(pluginConfig('1.0.0', { agentSocket: join(dir, 'none.sock'), prevResult })) },
    { env: attachmentEnv('DEL'), stdin: JSON.stringify(pluginConfig('1.1.0', { agentSocket: agent.socketPath })) },
    { env: attachmentEnv('ADD'), stdin: '{' },
    { env: attachmentEnv('NOPE'), stdin: '{}' },
  ];
}

test('the bundle answers every invocation exactly as cni/main.ts does, and the agent sees the same requests', async () => {
  const bundle = join(dir, 'meshlite-cni.cjs');
  writeFileSync(bundle, bundlePlugin());
  for (const { env, stdin } of invocations()) {
    agent.requests.length = 0;
    const direct = await runPlugin({ env, stdin });
    const directRequests = structuredClone(agent.requests);
    agent.requests.length = 0;
    const bundled = await runPlugin({ env, stdin, executable: process.execPath, args: [bundle] });
    assert.deepEqual({ code: bundled.code, stdout: bundled.stdout }, { code: direct.code, stdout: direct.stdout }, `${env.CNI_COMMAND} ${stdin}`);
    assert.deepEqual(agent.requests, directRequests);
    assert.equal(bundled.stderr.replace(/\S+Z meshlite-cni\[\d+\]/g, 'T'), direct.stderr.replace(/\S+Z meshlite-cni\[\d+\]/g, 'T'));
  }
});

test('the bundler admits only node: built-ins and files of its own folder', () => {
  const src = join(dir, 'bad');
  mkdirSync(join(src, 'inner'), { recursive: true });
  writeFileSync(join(src, 'inner', 'main.ts'), "import pino from 'pino';\nexport const x = pino;\n");
  assert.throws(() => bundlePlugin(join(src, 'inner', 'main.ts')), /imports "pino": the plugin may import only node: built-ins/);
  writeFileSync(join(src, 'inner', 'up.ts'), "import { y } from '../outside.ts';\nexport const x = y;\n");
  writeFileSync(join(src, 'outside.ts'), 'export const y = 1;\n');
  assert.throws(() => bundlePlugin(join(src, 'inner', 'up.ts')), /outside .*inner: the plugin bundles only its own folder/);
});

test('a build without postject fails with what to do about it', () => {
  assert.throws(() => buildExecutable({ postject: join(dir, 'no-postject'), output: join(dir, 'never') }), /postject is not installed: .*devDependency/);
});

describe('the single executable', () => {
  const postject = findPostject();
  const executable = join(dir, 'exe', 'meshlite-cni');

  before(() => {
    // One build per run: it copies the whole Node binary.
    if (postject !== null) buildExecutable({ postject, output: executable });
  });

  for (const cniVersion of SUPPORTED_VERSIONS) {
    test(`answers VERSION ${cniVersion} with an empty environment (env -i: no PATH, no node)`, (t) => {
      if (postject === null) return t.skip('postject is not installed (devDependency postject, or MESHLITE_POSTJECT)');
      const run = spawnSync('/usr/bin/env', ['-i', 'CNI_COMMAND=VERSION', executable], { input: JSON.stringify({ cniVersion }), encoding: 'utf8' });
      assert.equal(run.status, 0, run.stderr);
      assert.equal(run.stdout, `${JSON.stringify({ cniVersion, supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] })}\n`);
      assert.equal(run.stderr, '');
    });
  }

  test('enrolls a pod with the agent and passes prevResult on, with an empty environment', async (t) => {
    if (postject === null) return t.skip('postject is not installed (devDependency postject, or MESHLITE_POSTJECT)');
    agent.requests.length = 0;
    const prevResult = prevResultFor('1.1.0');
    const env = Object.entries(attachmentEnv('ADD')).map(([key, value]) => `${key}=${value}`);
    // spawnSync would block the event loop the fake agent answers on; the asynchronous runner does not.
    const stdin = JSON.stringify(pluginConfig('1.1.0', { agentSocket: agent.socketPath, prevResult }));
    const run = await runPlugin({ env: {}, stdin, executable: '/usr/bin/env', args: ['-i', ...env, executable] });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, `${JSON.stringify(prevResult)}\n`);
    assert.deepEqual(agent.requests.map((request) => request.path), ['/v1/cni/add']);
    assert.ok(statSync(executable).size > 50 * 1024 * 1024);
  });
});
