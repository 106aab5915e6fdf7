// Bad input from the runtime: each case gets the specification's error JSON, its well-known code and a non-zero exit.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { attachmentEnv, pluginConfig, prevResultFor, runPlugin, stdoutJson } from './support/plugin-process.ts';

const NO_AGENT = '/nonexistent/meshlite-test/cni.sock';
const goodStdin = JSON.stringify(pluginConfig('1.0.0', { agentSocket: NO_AGENT, prevResult: prevResultFor('1.0.0') }));

interface Case {
  name: string;
  env: Record<string, string>;
  stdin: string;
  code: number;
  msg: RegExp;
  /** The error's cniVersion when the case's stdin is not goodStdin (1.0.0) and names one. */
  cniVersion?: string;
}

const cases: Case[] = [
  { name: 'stdin that is not JSON', env: attachmentEnv('ADD'), stdin: '{"cniVersion": "1.0.0",', code: 6, msg: /failed to decode/ },
  { name: 'empty stdin', env: attachmentEnv('ADD'), stdin: '', code: 6, msg: /failed to decode/ },
  { name: 'JSON that is not an object', env: attachmentEnv('ADD'), stdin: '[1,2]', code: 7, msg: /expected a JSON object/ },
  { name: 'missing CNI_COMMAND', env: attachmentEnv('ADD', { CNI_COMMAND: undefined }), stdin: goodStdin, code: 4, msg: /CNI_COMMAND/ },
  { name: 'unknown CNI_COMMAND', env: attachmentEnv('UPDATE'), stdin: goodStdin, code: 4, msg: /unknown CNI_COMMAND "UPDATE"/ },
  { name: 'lower-case command', env: attachmentEnv('add'), stdin: goodStdin, code: 4, msg: /unknown CNI_COMMAND "add"/ },
  { name: 'ADD without CNI_CONTAINERID', env: attachmentEnv('ADD', { CNI_CONTAINERID: undefined }), stdin: goodStdin, code: 4, msg: /CNI_CONTAINERID/ },
  { name: 'ADD with an invalid container id', env: attachmentEnv('ADD', { CNI_CONTAINERID: '-abc' }), stdin: goodStdin, code: 4, msg: /CNI_CONTAINERID/ },
  { name: 'ADD without CNI_NETNS', env: attachmentEnv('ADD', { CNI_NETNS: undefined }), stdin: goodStdin, code: 4, msg: /CNI_NETNS/ },
  { name: 'ADD without CNI_IFNAME', env: attachmentEnv('ADD', { CNI_IFNAME: undefined }), stdin: goodStdin, code: 4, msg: /CNI_IFNAME/ },
  { name: 'ADD with a 16-byte interface name', env: attachmentEnv('ADD', { CNI_IFNAME: 'eth0123456789abc' }), stdin: goodStdin, code: 4, msg: /CNI_IFNAME/ },
  { name: 'CHECK without CNI_NETNS', env: attachmentEnv('CHECK', { CNI_NETNS: undefined }), stdin: goodStdin, code: 4, msg: /CNI_NETNS/ },
  { name: 'DEL without CNI_CONTAINERID', env: attachmentEnv('DEL', { CNI_CONTAINERID: undefined }), stdin: goodStdin, code: 4, msg: /CNI_CONTAINERID/ },
  { name: 'DEL without CNI_IFNAME', env: attachmentEnv('DEL', { CNI_IFNAME: undefined }), stdin: goodStdin, code: 4, msg: /CNI_IFNAME/ },
  {
    name: 'ADD without the pod in CNI_ARGS',
    env: attachmentEnv('ADD', { CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=shop' }),
    stdin: goodStdin,
    code: 4,
    msg: /K8S_POD_NAMESPACE and K8S_POD_NAME/,
  },
  { name: 'malformed CNI_ARGS', env: attachmentEnv('ADD', { CNI_ARGS: 'IgnoreUnknown=1;oops' }), stdin: goodStdin, code: 4, msg: /invalid CNI_ARGS/ },
  {
    name: 'a version before 0.4.0',
    env: attachmentEnv('ADD'),
    stdin: JSON.stringify({ ...pluginConfig('1.0.0'), cniVersion: '0.3.1', prevResult: prevResultFor('1.0.0') }),
    code: 1,
    msg: /incompatible CNI version/,
    cniVersion: '0.3.1',
  },
  {
    name: 'a version from the future',
    env: attachmentEnv('DEL'),
    stdin: JSON.stringify({ ...pluginConfig('1.0.0'), cniVersion: '2.0.0' }),
    code: 1,
    msg: /incompatible CNI version/,
    cniVersion: '2.0.0',
  },
  { name: 'no cniVersion', env: attachmentEnv('ADD'), stdin: JSON.stringify({ name: 'n', type: 'meshlite' }), code: 1, msg: /incompatible CNI version/ },
  { name: 'no network name', env: attachmentEnv('ADD'), stdin: JSON.stringify({ cniVersion: '1.0.0', type: 'meshlite' }), code: 7, msg: /missing "name"/, cniVersion: '1.0.0' },
  {
    name: 'ADD without prevResult (meshlite is chained)',
    env: attachmentEnv('ADD'),
    stdin: JSON.stringify(pluginConfig('1.0.0', { agentSocket: NO_AGENT })),
    code: 7,
    msg: /chained plugin: ADD needs prevResult/,
    cniVersion: '1.0.0',
  },
  {
    name: 'CHECK without prevResult',
    env: attachmentEnv('CHECK'),
    stdin: JSON.stringify(pluginConfig('1.1.0', { agentSocket: NO_AGENT })),
    code: 7,
    msg: /CHECK needs prevResult/,
    cniVersion: '1.1.0',
  },
  {
    name: 'prevResult with an address that is not an IP',
    env: attachmentEnv('ADD'),
    stdin: JSON.stringify(pluginConfig('1.0.0', { prevResult: { cniVersion: '1.0.0', ips: [{ address: 'ten/8' }] } })),
    code: 7,
    msg: /invalid prevResult/,
    cniVersion: '1.0.0',
  },
  {
    name: 'an unknown failPolicy',
    env: attachmentEnv('ADD'),
    stdin: JSON.stringify(pluginConfig('1.0.0', { failPolicy: 'sometimes', prevResult: prevResultFor('1.0.0') })),
    code: 7,
    msg: /failPolicy/,
    cniVersion: '1.0.0',
  },
  {
    name: 'a timeout that is not a positive integer',
    env: attachmentEnv('ADD'),
    stdin: JSON.stringify(pluginConfig('1.0.0', { timeoutMs: '5s', prevResult: prevResultFor('1.0.0') })),
    code: 7,
    msg: /timeoutMs/,
    cniVersion: '1.0.0',
  },
];

for (const c of cases) {
  test(`${c.name} → code ${c.code}`, async () => {
    const run = await runPlugin({ env: c.env, stdin: c.stdin });
    assert.equal(run.code, 1, run.stdout);
    const error = stdoutJson(run);
    assert.deepEqual(Object.keys(error), ['cniVersion', 'code', 'msg', 'details']);
    assert.equal(error.code, c.code);
    assert.match(String(error.msg), c.msg);
    // Errors speak the version the runtime asked in; with no readable version, the latest.
    assert.equal(error.cniVersion, c.cniVersion ?? (c.stdin === goodStdin ? '1.0.0' : '1.1.0'));
    assert.equal(typeof error.details, 'string');
  });
}

test('bad runtime input is an error even with failPolicy open and no agent', async () => {
  const stdin = JSON.stringify(pluginConfig('1.0.0', { failPolicy: 'open', agentSocket: NO_AGENT, prevResult: prevResultFor('1.0.0') }));
  const run = await runPlugin({ env: attachmentEnv('ADD', { CNI_ARGS: 'IgnoreUnknown=1' }), stdin });
  assert.equal(run.code, 1);
  assert.equal(stdoutJson(run).code, 4);
});
