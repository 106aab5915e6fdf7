// Debian's real bridge + host-local plugins chained with meshlite, run as a runtime runs them, in throwaway network namespaces.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { createInstaller } from '../../cni/install.ts';
import { type FakeAgent, startFakeAgent } from './support/fake-agent.ts';
import { PLUGIN_MAIN } from './support/plugin-process.ts';
import { type Attachment, runList } from './support/mini-runtime.ts';

const run = promisify(execFile);
const DEBIAN_CNI = '/usr/lib/cni';
const PREFIX = 'ml-cni-';
const SUBNET = '10.78.0.0/24';
const id = `${PREFIX}${process.pid}-${randomBytes(3).toString('hex')}`;
const NODE = `${id}-node`;

function unavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces';
  try {
    accessSync(join(DEBIAN_CNI, 'bridge'), constants.X_OK);
    accessSync(join(DEBIAN_CNI, 'host-local'), constants.X_OK);
  } catch {
    return `Debian's containernetworking-plugins are not in ${DEBIAN_CNI}`;
  }
  return null;
}

const skip = unavailable();
const dir = mkdtempSync(join(tmpdir(), 'ml-cni-chain-'));
let agent: FakeAgent;

async function netns(...args: string[]): Promise<string> {
  return (await run('ip', ['netns', ...args])).stdout;
}

/** Namespaces of this test left by a run that was killed: ml-cni-<pid>-… whose process is gone. Never anyone else's. */
async function removeLeftovers(): Promise<void> {
  for (const line of (await netns('list')).split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const owner = /^ml-cni-(\d+)-/.exec(name)?.[1];
    if (owner === undefined || Number(owner) === process.pid) continue;
    try {
      process.kill(Number(owner), 0);
    } catch {
      await netns('delete', name).catch(() => {});
    }
  }
}

before(async () => {
  if (skip !== null) return;
  await removeLeftovers();
  await netns('add', NODE);
  await run('ip', ['-n', NODE, 'link', 'set', 'lo', 'up']);
  agent = await startFakeAgent(join(dir, 'agent.sock'));
});

after(async () => {
  await agent?.close();
  await netns('delete', NODE).catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

for (const cniVersion of ['0.4.0', '1.0.0']) {
  test(`bridge + host-local + meshlite at ${cniVersion}: prevResult flows through meshlite unchanged, the agent gets the pod's IP`, async (t) => {
    if (skip !== null) return t.skip(skip);
    const confDir = join(dir, `net.d-${cniVersion}`);
    const binDir = join(dir, `bin-${cniVersion}`);
    const source = join(dir, `meshlite-${cniVersion}`);
    // The plugin as the runtime will exec it: one file in the bin directory (here a launcher for cni/main.ts).
    writeFileSync(source, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(PLUGIN_MAIN)}\n`, { mode: 0o755 });
    mkdirSync(confDir);
    mkdirSync(binDir);
    const bridge = {
      cniVersion,
      name: 'ml-cni-test',
      type: 'bridge',
      bridge: 'mlcni0',
      isGateway: true,
      isDefaultGateway: true,
      ipMasq: false,
      ipam: { type: 'host-local', subnet: SUBNET, dataDir: join(dir, 'ipam') },
    };
    writeFileSync(join(confDir, '10-ml-cni-test.conf'), JSON.stringify(bridge));
    const installer = createInstaller({ pluginSource: source, binDir, confDir, settings: { agentSocket: agent.socketPath, failPolicy: 'closed', timeoutMs: 3000 } });
    assert.equal((await installer.reconcileOnce()).config.kind, 'changed');
    const list = JSON.parse(readFileSync(join(confDir, '10-ml-cni-test.conflist'), 'utf8'));
    assert.deepEqual(list.plugins.map((plugin: { type: string }) => plugin.type), ['bridge', 'meshlite']);

    const pod = `${id}-pod-${cniVersion.replaceAll('.', '')}`;
    await netns('add', pod);
    try {
      await attachAndDetach(list, pod, cniVersion, binDir);
    } finally {
      await netns('delete', pod).catch(() => {});
    }
  });
}

/** ADD, CHECK, DEL and DEL again of one pod through the whole list, with what each step must leave behind. */
async function attachAndDetach(list: { cniVersion: string; name: string; plugins: Record<string, unknown>[] }, pod: string, cniVersion: string, binDir: string): Promise<void> {
  const containerId = randomBytes(32).toString('hex');
  const attachment: Attachment = {
    containerId,
    netnsPath: `/var/run/netns/${pod}`,
    ifName: 'eth0',
    cniArgs: `IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=client-${cniVersion};K8S_POD_INFRA_CONTAINER_ID=${containerId}`,
    path: [binDir, DEBIAN_CNI],
    nodeNamespace: NODE,
  };
  agent.requests.length = 0;

  const added = await runList(list, 'ADD', attachment, null);
  assert.ok(added.ok, JSON.stringify(added.calls));
  const [bridgeCall, meshliteCall] = added.calls;
  assert.deepEqual(added.calls.map((call) => call.type), ['bridge', 'meshlite']);
  // The bridge prints its result indented; meshlite prints the same document, key for key, on one line.
  const bridgeResult = JSON.parse(bridgeCall?.stdout ?? '');
  assert.equal(meshliteCall?.stdout, `${JSON.stringify(bridgeResult)}\n`);
  assert.deepEqual(added.result, bridgeResult);
  const result = added.result as { cniVersion: string; ips: { address: string }[] };
  assert.equal(result.cniVersion, cniVersion);
  const address = result.ips[0]?.address ?? '';
  assert.match(address, /^10\.78\.0\.\d+\/24$/);
  const ip = address.split('/')[0];
  const inPod = JSON.parse((await run('ip', ['-n', pod, '-j', 'addr', 'show', 'eth0'])).stdout) as { addr_info: { local: string }[] }[];
  assert.ok(inPod[0]?.addr_info.some((info) => info.local === ip), `eth0 in ${pod} has ${ip}`);
  assert.deepEqual(agent.requests, [
    {
      method: 'POST',
      path: '/v1/cni/add',
      contentType: 'application/json',
      body: { containerId, netns: attachment.netnsPath, ifName: 'eth0', namespace: 'shop', name: `client-${cniVersion}`, ips: [ip] },
    },
  ]);

  const checked = await runList(list, 'CHECK', attachment, added.result);
  assert.ok(checked.ok, JSON.stringify(checked.calls));
  assert.deepEqual(agent.requests.map((request) => request.path), ['/v1/cni/add', '/v1/cni/check']);

  const deleted = await runList(list, 'DEL', attachment, added.result);
  assert.ok(deleted.ok, JSON.stringify(deleted.calls));
  assert.deepEqual(deleted.calls.map((call) => call.type), ['meshlite', 'bridge']);
  assert.deepEqual(agent.requests.at(-1), {
    method: 'POST',
    path: '/v1/cni/del',
    contentType: 'application/json',
    body: { containerId, namespace: 'shop', name: `client-${cniVersion}` },
  });
  // A repeated DEL, after the agent has gone and without prevResult: every plugin still succeeds.
  const silent = { ...list, plugins: list.plugins.map((plugin) => (plugin.type === 'meshlite' ? { ...plugin, agentSocket: join(dir, 'gone.sock') } : plugin)) };
  const again = await runList(silent, 'DEL', attachment, null);
  assert.ok(again.ok, JSON.stringify(again.calls));
}
