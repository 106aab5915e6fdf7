// The installer on temporary directories: binary and configuration in place, idempotent, re-applied, watched, uninstalled.

import assert from 'node:assert/strict';
import { type CommandResult, runCommand } from '../../agent/intercept/command-runner.ts';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createInstaller, type InstallerOptions } from '../../cni/install.ts';
import { waitFor } from '../../lab/wait-for.ts';

const root = mkdtempSync(join(tmpdir(), 'ml-cni-install-'));
after(() => rmSync(root, { recursive: true, force: true }));

const INSTALL_MAIN = fileURLToPath(new URL('../../cni/install-main.ts', import.meta.url));
const bridge = { type: 'bridge', bridge: 'cni0', isDefaultGateway: true, ipam: { type: 'host-local', subnet: '10.78.0.0/24' } };
const settings = { agentSocket: '/run/meshlite/cni.sock', failPolicy: 'open', timeoutMs: 5000 };
const meshlite = { ...settings, type: 'meshlite' };

let serial = 0;

interface Host {
  binDir: string;
  confDir: string;
  source: string;
  options: InstallerOptions;
  lines: string[];
}

function host(): Host {
  serial += 1;
  const dir = join(root, `host-${serial}`);
  const binDir = join(dir, 'opt', 'cni', 'bin');
  const confDir = join(dir, 'etc', 'cni', 'net.d');
  mkdirSync(binDir, { recursive: true });
  mkdirSync(confDir, { recursive: true });
  const source = join(dir, 'meshlite-cni');
  writeFileSync(source, '#!/bin/sh\necho plugin\n');
  writeFileSync(join(binDir, 'bridge'), 'a binary the installer must not touch');
  const lines: string[] = [];
  return { binDir, confDir, source, lines, options: { pluginSource: source, binDir, confDir, settings, log: (line) => lines.push(line) } };
}

/** Every file of a directory with its content, mode and modification time: what "nothing changed" compares. */
function snapshot(dir: string): Record<string, { text: string; mode: number; mtimeMs: number }> {
  return Object.fromEntries(
    readdirSync(dir)
      .sort()
      .map((name) => {
        const stats = statSync(join(dir, name));
        return [name, { text: readFileSync(join(dir, name), 'utf8'), mode: stats.mode & 0o777, mtimeMs: stats.mtimeMs }];
      }),
  );
}

function readJson(path: string): unknown {
  return JSON.parse(readFileSync(path, 'utf8'));
}

const list = (plugins: unknown[]) => ({ cniVersion: '1.0.0', name: 'k8s-pod-network', plugins });

test('install puts the executable and meshlite last in the primary list; a second run changes nothing', async () => {
  const h = host();
  writeFileSync(join(h.confDir, '10-net.conflist'), JSON.stringify(list([bridge])));
  writeFileSync(join(h.confDir, '20-other.conflist'), JSON.stringify(list([bridge])));
  const installer = createInstaller(h.options);
  assert.deepEqual(await installer.reconcileOnce(), { binary: 'copied', config: { kind: 'changed', summary: 'meshlite added to 10-net.conflist' } });
  assert.equal(readFileSync(join(h.binDir, 'meshlite'), 'utf8'), readFileSync(h.source, 'utf8'));
  assert.equal(statSync(join(h.binDir, 'meshlite')).mode & 0o777, 0o755);
  assert.deepEqual(readJson(join(h.confDir, '10-net.conflist')), list([bridge, meshlite]));
  assert.deepEqual(readJson(join(h.confDir, '20-other.conflist')), list([bridge]));
  const bins = snapshot(h.binDir);
  const confs = snapshot(h.confDir);
  assert.deepEqual(await createInstaller(h.options).reconcileOnce(), { binary: 'unchanged', config: { kind: 'unchanged', file: '10-net.conflist' } });
  assert.deepEqual(snapshot(h.binDir), bins);
  assert.deepEqual(snapshot(h.confDir), confs);
  assert.deepEqual(h.lines, [`installed ${join(h.binDir, 'meshlite')}`, 'meshlite added to 10-net.conflist']);
});

test('a new plugin executable replaces the installed one; the file mode of a configuration is kept', async () => {
  const h = host();
  const path = join(h.confDir, '10-net.conflist');
  writeFileSync(path, JSON.stringify(list([bridge])));
  chmodSync(path, 0o600);
  const installer = createInstaller(h.options);
  await installer.reconcileOnce();
  assert.equal(statSync(path).mode & 0o777, 0o600);
  writeFileSync(h.source, '#!/bin/sh\necho plugin v2\n');
  assert.equal(await installer.installBinary(), 'copied');
  assert.equal(readFileSync(join(h.binDir, 'meshlite'), 'utf8'), '#!/bin/sh\necho plugin v2\n');
  assert.deepEqual(readdirSync(h.binDir).sort(), ['bridge', 'meshlite'], 'no temporary file is left behind');
});

test('a .conf becomes a .conflist (one network for the runtime); uninstall restores the .conf', async () => {
  const h = host();
  const conf = { cniVersion: '0.4.0', name: 'mynet', ...bridge };
  writeFileSync(join(h.confDir, '10-mynet.conf'), JSON.stringify(conf));
  const installer = createInstaller(h.options);
  const result = await installer.reconcileOnce();
  assert.deepEqual(result.config, { kind: 'changed', summary: '10-mynet.conf converted to 10-mynet.conflist with meshlite' });
  assert.deepEqual(readdirSync(h.confDir), ['10-mynet.conflist']);
  assert.deepEqual(readJson(join(h.confDir, '10-mynet.conflist')), {
    cniVersion: '0.4.0',
    name: 'mynet',
    plugins: [conf, { ...meshlite, convertedFrom: '10-mynet.conf' }],
  });
  assert.deepEqual((await installer.reconcileOnce()).config, { kind: 'unchanged', file: '10-mynet.conflist' });

  assert.deepEqual(await installer.uninstall(), { changes: ['10-mynet.conflist restored to 10-mynet.conf'], refusals: [], binaryRemoved: true });
  assert.deepEqual(readdirSync(h.confDir), ['10-mynet.conf']);
  assert.deepEqual(readJson(join(h.confDir, '10-mynet.conf')), conf);
  assert.deepEqual(readdirSync(h.binDir), ['bridge']);
  assert.deepEqual(await installer.uninstall(), { changes: [], refusals: [], binaryRemoved: false });
});

test('meshlite is re-applied when the network plugin rewrites its file, list or single', async () => {
  const h = host();
  const installer = createInstaller(h.options);
  writeFileSync(join(h.confDir, '10-net.conflist'), JSON.stringify(list([bridge])));
  await installer.reconcileOnce();
  writeFileSync(join(h.confDir, '10-net.conflist'), JSON.stringify(list([bridge, { type: 'portmap' }])));
  assert.deepEqual((await installer.reconcileOnce()).config, { kind: 'changed', summary: 'meshlite added to 10-net.conflist' });
  assert.deepEqual(readJson(join(h.confDir, '10-net.conflist')), list([bridge, { type: 'portmap' }, meshlite]));

  const single = { cniVersion: '1.0.0', name: 'mynet', ...bridge };
  writeFileSync(join(h.confDir, '05-mynet.conf'), JSON.stringify(single));
  await installer.reconcileOnce();
  // The plugin writes its .conf again, beside the list made from the last one: converted again, still one file.
  writeFileSync(join(h.confDir, '05-mynet.conf'), JSON.stringify({ ...single, bridge: 'cni1' }));
  assert.deepEqual((await installer.reconcileOnce()).config, { kind: 'changed', summary: '05-mynet.conf converted to 05-mynet.conflist with meshlite' });
  assert.deepEqual(readdirSync(h.confDir).sort(), ['05-mynet.conflist', '10-net.conflist']);
  assert.equal((readJson(join(h.confDir, '05-mynet.conflist')) as { plugins: { bridge?: string }[] }).plugins[0]?.bridge, 'cni1');
});

test('no configuration yet, or one in an old version: the executable is installed, the configuration left alone', async () => {
  const h = host();
  const installer = createInstaller(h.options);
  assert.deepEqual(await installer.reconcileOnce(), { binary: 'copied', config: { kind: 'no-config', reason: `no loadable CNI network configuration in ${h.confDir} yet` } });
  const old = JSON.stringify({ cniVersion: '0.3.1', name: 'old', plugins: [bridge] });
  writeFileSync(join(h.confDir, '10-old.conflist'), old);
  const { config } = await installer.reconcileOnce();
  assert.equal(config.kind, 'refused');
  assert.equal(readFileSync(join(h.confDir, '10-old.conflist'), 'utf8'), old);
});

test('uninstall takes meshlite out of every list, primary or not, and deletes the executable', async () => {
  const h = host();
  writeFileSync(join(h.confDir, '10-net.conflist'), JSON.stringify(list([bridge, meshlite])));
  writeFileSync(join(h.confDir, '20-old.conflist'), JSON.stringify(list([bridge, { type: 'portmap' }, meshlite])));
  writeFileSync(join(h.binDir, 'meshlite'), 'old plugin');
  const result = await createInstaller(h.options).uninstall();
  assert.deepEqual(result, { changes: ['meshlite removed from 10-net.conflist', 'meshlite removed from 20-old.conflist'], refusals: [], binaryRemoved: true });
  assert.deepEqual(readJson(join(h.confDir, '10-net.conflist')), list([bridge]));
  assert.deepEqual(readJson(join(h.confDir, '20-old.conflist')), list([bridge, { type: 'portmap' }]));
  assert.deepEqual(readdirSync(h.binDir), ['bridge']);
});

test('watch puts meshlite back soon after the network plugin drops it, and stops on abort', async () => {
  const h = host();
  const path = join(h.confDir, '10-net.conflist');
  writeFileSync(path, JSON.stringify(list([bridge])));
  const stop = new AbortController();
  const watching = createInstaller(h.options).watch({ signal: stop.signal, debounceMs: 20, resyncMs: 60_000 });
  try {
    await waitFor(() => JSON.stringify(readJson(path)) === JSON.stringify(list([bridge, meshlite])), { message: 'meshlite added', timeoutMs: 5000 });
    writeFileSync(path, JSON.stringify(list([bridge, { type: 'tuning' }])));
    await waitFor(() => JSON.stringify(readJson(path)) === JSON.stringify(list([bridge, { type: 'tuning' }, meshlite])), {
      message: 'meshlite re-added after the rewrite',
      timeoutMs: 5000,
    });
  } finally {
    stop.abort();
    await watching;
  }
  assert.deepEqual(h.lines, [`installed ${join(h.binDir, 'meshlite')}`, 'meshlite added to 10-net.conflist', 'meshlite added to 10-net.conflist']);
});

function runCli(args: string[], env: Record<string, string> = {}): Promise<CommandResult> {
  return runCommand(process.execPath, [INSTALL_MAIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env } });
}

test('the command line: install from flags and environment, exit 1 without a configuration, 2 on bad usage', async () => {
  const h = host();
  const base = ['--plugin-source', h.source, '--bin-dir', h.binDir];
  const none = await runCli(['install', ...base, '--conf-dir', h.confDir]);
  assert.equal(none.code, 1, none.stderr);
  assert.match(none.stdout, /no loadable CNI network configuration/);
  writeFileSync(join(h.confDir, '10-net.conflist'), JSON.stringify(list([bridge])));
  const done = await runCli(['install', ...base, '--fail-policy', 'closed', '--timeout-ms', '800'], { MESHLITE_CNI_CONF_DIR: h.confDir, MESHLITE_CNI_LOG_FILE: '/var/log/meshlite-cni.log' });
  assert.equal(done.code, 0, done.stderr);
  assert.deepEqual(readJson(join(h.confDir, '10-net.conflist')), list([bridge, { failPolicy: 'closed', timeoutMs: 800, logFile: '/var/log/meshlite-cni.log', type: 'meshlite' }]));
  assert.equal((await runCli(['install', ...base, '--fail-policy', 'sometimes', '--conf-dir', h.confDir])).code, 2);
  assert.equal((await runCli(['reinstall'])).code, 2);
  const removed = await runCli(['uninstall', ...base, '--conf-dir', h.confDir]);
  assert.equal(removed.code, 0, removed.stderr);
  assert.deepEqual(readJson(join(h.confDir, '10-net.conflist')), list([bridge]));
});
