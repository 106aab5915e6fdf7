// The plugin as a runtime sees it, per cniVersion: VERSION, ADD (prevResult passed on, IPs sent), CHECK, DEL, STATUS, GC.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SUPPORTED_VERSIONS } from '../../cni/cni-version.ts';
import { type FakeAgent, startFakeAgent } from './support/fake-agent.ts';
import { attachmentEnv, CONTAINER_ID, NETNS, pluginConfig, prevResultFor, runPlugin, stdoutJson } from './support/plugin-process.ts';

const dir = mkdtempSync(join(tmpdir(), 'ml-cni-conf-'));
const socket = join(dir, 'agent.sock');
let agent: FakeAgent;

before(async () => {
  agent = await startFakeAgent(socket);
});

after(async () => {
  await agent.close();
  rmSync(dir, { recursive: true, force: true });
});

const expectedAdd = {
  containerId: CONTAINER_ID,
  netns: NETNS,
  ifName: 'eth0',
  namespace: 'shop',
  name: 'checkout-7d9f',
  ips: ['10.78.0.5', 'fd78::5'],
};

for (const cniVersion of SUPPORTED_VERSIONS) {
  describe(`cniVersion ${cniVersion}`, () => {
    const config = (extra: Record<string, unknown> = {}) => pluginConfig(cniVersion, { agentSocket: socket, ...extra });

    test('VERSION answers in the requested version with every supported version', async () => {
      const run = await runPlugin({ env: { CNI_COMMAND: 'VERSION' }, stdin: JSON.stringify({ cniVersion }) });
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(stdoutJson(run), { cniVersion, supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
      assert.equal(run.stderr, '');
    });

    test('ADD prints prevResult unchanged and sends the pod and every IP to the agent', async () => {
      agent.requests.length = 0;
      const prevResult = prevResultFor(cniVersion);
      const run = await runPlugin({ env: attachmentEnv('ADD'), stdin: JSON.stringify(config({ prevResult })) });
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.deepEqual(stdoutJson(run), prevResult);
      // Key order too: the result is the previous plugin's, not a rebuilt one.
      assert.equal(run.stdout, `${JSON.stringify(prevResult)}\n`);
      assert.deepEqual(agent.requests, [{ method: 'POST', path: '/v1/cni/add', contentType: 'application/json', body: expectedAdd }]);
      assert.equal(run.stderr, '');
    });

    test('ADD sets the result to the request cniVersion when prevResult carries none', async () => {
      const { cniVersion: _omitted, ...prevResult } = prevResultFor(cniVersion);
      const run = await runPlugin({ env: attachmentEnv('ADD'), stdin: JSON.stringify(config({ prevResult })) });
      assert.equal(run.code, 0, run.stdout);
      assert.deepEqual(stdoutJson(run), { cniVersion, ...prevResult });
    });

    test('CHECK asks the agent with the attachment and prints nothing when it agrees', async () => {
      agent.requests.length = 0;
      const run = await runPlugin({ env: attachmentEnv('CHECK'), stdin: JSON.stringify(config({ prevResult: prevResultFor(cniVersion) })) });
      assert.equal(run.code, 0, run.stdout);
      assert.equal(run.stdout, '');
      assert.deepEqual(agent.requests, [{ method: 'POST', path: '/v1/cni/check', contentType: 'application/json', body: expectedAdd }]);
    });

    test('DEL tells the agent, prints nothing, and succeeds again when repeated', async () => {
      agent.requests.length = 0;
      const stdin = JSON.stringify(config({ prevResult: prevResultFor(cniVersion) }));
      for (let i = 0; i < 2; i++) {
        const run = await runPlugin({ env: attachmentEnv('DEL'), stdin });
        assert.equal(run.code, 0, run.stdout);
        assert.equal(run.stdout, '');
      }
      const body = { containerId: CONTAINER_ID, namespace: 'shop', name: 'checkout-7d9f' };
      assert.deepEqual(agent.requests, [
        { method: 'POST', path: '/v1/cni/del', contentType: 'application/json', body },
        { method: 'POST', path: '/v1/cni/del', contentType: 'application/json', body },
      ]);
    });

    test('DEL without prevResult, network namespace, pod identity or agent succeeds', async () => {
      const run = await runPlugin({
        env: attachmentEnv('DEL', { CNI_NETNS: undefined, CNI_ARGS: undefined }),
        stdin: JSON.stringify(pluginConfig(cniVersion, { agentSocket: join(dir, 'no-agent.sock') })),
      });
      assert.equal(run.code, 0, run.stdout);
      assert.equal(run.stdout, '');
      assert.match(run.stderr, /meshlite agent unreachable .*DEL succeeds anyway/);
    });

    if (cniVersion === '1.1.0') {
      test('STATUS succeeds when the agent is ready, fail-closed', async () => {
        agent.requests.length = 0;
        const run = await runPlugin({ env: { CNI_COMMAND: 'STATUS', CNI_PATH: '/opt/cni/bin' }, stdin: JSON.stringify(config({ failPolicy: 'closed' })) });
        assert.equal(run.code, 0, run.stdout);
        assert.equal(run.stdout, '');
        assert.deepEqual(agent.requests, [{ method: 'GET', path: '/v1/cni/status', contentType: undefined, body: '' }]);
      });

      test('GC succeeds without output and without asking the agent', async () => {
        agent.requests.length = 0;
        const attachments = [{ containerID: CONTAINER_ID, ifname: 'eth0' }];
        const stdin = JSON.stringify(config({ 'cni.dev/valid-attachments': attachments, 'cni.dev/attachments': attachments }));
        const run = await runPlugin({ env: { CNI_COMMAND: 'GC', CNI_PATH: '/opt/cni/bin' }, stdin });
        assert.equal(run.code, 0, run.stdout);
        assert.equal(run.stdout, '');
        assert.deepEqual(agent.requests, []);
      });
    } else {
      for (const command of ['STATUS', 'GC']) {
        test(`${command} is refused with code 1: it needs cniVersion 1.1.0`, async () => {
          const run = await runPlugin({ env: { CNI_COMMAND: command, CNI_PATH: '/opt/cni/bin' }, stdin: JSON.stringify(config()) });
          assert.equal(run.code, 1);
          const error = stdoutJson(run);
          assert.deepEqual({ cniVersion: error.cniVersion, code: error.code, msg: error.msg }, {
            cniVersion,
            code: 1,
            msg: `${command} needs cniVersion 1.1.0 or later`,
          });
        });
      }
    }
  });
}

test('VERSION without any input answers in the latest version', async () => {
  const run = await runPlugin({ env: { CNI_COMMAND: 'VERSION' }, stdin: '' });
  assert.equal(run.code, 0);
  assert.deepEqual(stdoutJson(run), { cniVersion: '1.1.0', supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
});

test('VERSION asked in a version the plugin does not speak still answers, in the latest', async () => {
  const run = await runPlugin({ env: { CNI_COMMAND: 'VERSION' }, stdin: '{"cniVersion":"0.3.1"}' });
  assert.equal(run.code, 0);
  assert.deepEqual(stdoutJson(run), { cniVersion: '1.1.0', supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
});
