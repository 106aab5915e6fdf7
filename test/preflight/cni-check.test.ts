// The CNI preflight on temp directories: the configuration directory, the primary network, meshlite in it, the plugin.

import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { checkCni, cniDirectoriesFrom } from '../../agent/preflight/cni-check.ts';
import { nodeFiles } from '../../agent/preflight/node-access.ts';

const BRIDGE = { type: 'bridge', bridge: 'cni0' };

describe('checkCni', () => {
  let root: string;
  let n = 0;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'meshlite-preflight-cni-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /** A fresh conf and bin directory with these files ({ name: content }); a plugin file is made executable. */
  async function node(conf: Record<string, unknown> | null, plugin: 'executable' | 'plain' | 'none' = 'none') {
    const dir = join(root, String(n++));
    const confDir = join(dir, 'net.d');
    const binDir = join(dir, 'bin');
    await mkdir(binDir, { recursive: true });
    if (conf !== null) {
      await mkdir(confDir);
      for (const [name, content] of Object.entries(conf)) await writeFile(join(confDir, name), typeof content === 'string' ? content : JSON.stringify(content));
    }
    if (plugin !== 'none') {
      await writeFile(join(binDir, 'meshlite'), '#!/bin/sh\n');
      await chmod(join(binDir, 'meshlite'), plugin === 'executable' ? 0o755 : 0o644);
    }
    return { confDir, binDir, pluginName: 'meshlite' };
  }

  it('is all ok when meshlite is chained last in the primary network and its plugin is installed', async () => {
    const dirs = await node(
      {
        '10-k8s.conflist': { cniVersion: '1.0.0', name: 'k8s', plugins: [BRIDGE, { type: 'portmap' }, { type: 'meshlite', agentSocket: '/run/meshlite/cni.sock' }] },
        '20-other.conflist': { cniVersion: '1.0.0', name: 'other', plugins: [BRIDGE] },
      },
      'executable',
    );
    assert.deepEqual(await checkCni(nodeFiles, dirs), [
      { status: 'ok', what: `CNI configuration directory ${dirs.confDir}` },
      { status: 'ok', what: 'CNI primary network 10-k8s.conflist: meshlite is chained, last of 3 plugins' },
      { status: 'ok', what: `CNI bin directory ${dirs.binDir}: the meshlite plugin is installed` },
    ]);
  });

  it('says what the installer would change before it ran: a list gets meshlite last, a single file is converted', async () => {
    const list = await node({ '10-k8s.conflist': { cniVersion: '1.0.0', name: 'k8s', plugins: [BRIDGE] }, 'notes.txt': 'not a network' });
    assert.deepEqual(await checkCni(nodeFiles, list), [
      { status: 'ok', what: `CNI configuration directory ${list.confDir}` },
      { status: 'ok', what: 'CNI primary network 10-k8s.conflist: meshlite not chained yet; the installer would change it (meshlite added to 10-k8s.conflist)' },
      { status: 'ok', what: `CNI bin directory ${list.binDir}: the installer copies the meshlite plugin there` },
    ]);
    const single = await node({ '10-bridge.conf': { cniVersion: '0.4.0', name: 'k8s', ...BRIDGE } });
    assert.deepEqual((await checkCni(nodeFiles, single))[1], {
      status: 'ok',
      what: 'CNI primary network 10-bridge.conf: meshlite not chained yet; the installer would change it (10-bridge.conf converted to 10-bridge.conflist with meshlite)',
    });
  });

  it('is a problem when the installer would refuse the primary network, naming its reason', async () => {
    const dirs = await node({ '10-k8s.conflist': { cniVersion: '9.9.9', name: 'k8s', plugins: [BRIDGE] } });
    const [, primary] = await checkCni(nodeFiles, dirs);
    assert.deepEqual(primary, {
      status: 'fail',
      what: 'CNI primary network 10-k8s.conflist',
      problem: 'the network declares cniVersion "9.9.9"; meshlite supports 0.4.0, 1.0.0, 1.1.0, so it is not added',
      fix: 'meshlite cannot enroll pods on this node; see cni/README.md for the networks it chains into',
    });
  });

  it('is a problem when meshlite is chained but its plugin is missing: every new pod would fail', async () => {
    const dirs = await node({ '10-k8s.conflist': { cniVersion: '1.0.0', name: 'k8s', plugins: [BRIDGE, { type: 'meshlite' }] } }, 'plain');
    assert.deepEqual((await checkCni(nodeFiles, dirs))[2], {
      status: 'fail',
      what: `CNI bin directory ${dirs.binDir}`,
      problem: `meshlite is chained in 10-k8s.conflist but ${dirs.binDir}/meshlite is not an executable file, so every new pod's network setup fails`,
      fix: "start the DaemonSet's cni-installer container (it copies the plugin), or take meshlite out of the network: node cni/install-main.ts uninstall",
    });
  });

  it('is a problem when the directory is not there or holds no loadable network', async () => {
    const missing = await node(null);
    assert.deepEqual((await checkCni(nodeFiles, missing))[0], {
      status: 'fail',
      what: `CNI configuration directory ${missing.confDir}`,
      problem: 'not found',
      fix: "mount the host's CNI configuration directory (/etc/cni/net.d; k3s: /var/lib/rancher/k3s/agent/etc/cni/net.d) here, or set MESHLITE_CNI_CONF_DIR to where it is",
    });
    const empty = await node({ '10-broken.conflist': '{ not json' });
    assert.deepEqual((await checkCni(nodeFiles, empty))[1], {
      status: 'fail',
      what: `CNI primary network in ${empty.confDir}`,
      problem: 'no loadable network configuration yet',
      fix: "install the cluster's network plugin first: meshlite chains itself into the network it configures",
    });
    const noBin = { ...empty, binDir: join(root, 'nowhere') };
    assert.deepEqual((await checkCni(nodeFiles, noBin))[2], {
      status: 'fail',
      what: `CNI bin directory ${noBin.binDir}`,
      problem: 'not found',
      fix: "mount the host's CNI bin directory (/opt/cni/bin; GKE: /home/kubernetes/bin) here, or set MESHLITE_CNI_BIN_DIR to where it is",
    });
  });
});

describe('cniDirectoriesFrom', () => {
  it("reads the installer's variables, an empty one counting as unset, with the installer's defaults", () => {
    assert.deepEqual(cniDirectoriesFrom({}), { confDir: '/host/etc/cni/net.d', binDir: '/host/opt/cni/bin', pluginName: 'meshlite' });
    assert.deepEqual(cniDirectoriesFrom({ MESHLITE_CNI_CONF_DIR: '/c', MESHLITE_CNI_BIN_DIR: '', MESHLITE_CNI_PLUGIN_NAME: 'ml' }), {
      confDir: '/c',
      binDir: '/host/opt/cni/bin',
      pluginName: 'ml',
    });
  });
});
