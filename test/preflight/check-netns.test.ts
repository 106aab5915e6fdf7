// `node agent/main.ts check` run for real in a throwaway network namespace: real iptables and ipset, the test API server,
// temp CNI directories. All ok → exit 0; ipset not on PATH, or one permission denied → that FAIL line, exit 1.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { CommandRunner } from '../../agent/intercept/command-runner.ts';
import type { AccessDenial } from '../support/kube-api-server.ts';
import { addNamespace, checked, deleteNamespace, namespaceName, netfilterSkipReason, snapshot, sweepLeftovers } from '../intercept/throwaway-netns.ts';

const skip = netfilterSkipReason();
const MAIN = fileURLToPath(new URL('../../agent/main.ts', import.meta.url));
const API_HELPER = fileURLToPath(new URL('./kube-api-in-netns.ts', import.meta.url));
const NODE_IP = '10.77.31.1';
const APPLY_RBAC =
  "apply manifests/rbac.yaml (ClusterRole meshlite: get, list, watch on services, pods, namespaces and discovery.k8s.io endpointslices) and check that its ClusterRoleBinding names the agent's ServiceAccount";

interface CheckRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('meshlite check in a network namespace', { skip }, () => {
  let ns = '';
  let inNs: CommandRunner;
  let dir = '';
  let confDir = '';
  let binDir = '';
  const apiServers: ChildProcess[] = [];

  before(async () => {
    await sweepLeftovers();
    ns = namespaceName('check');
    inNs = await addNamespace(ns);
    // The node IP on an interface of the namespace: the agent listens there, and --metrics node:PORT binds it.
    await checked('ip', ['-n', ns, 'link', 'add', 'mlck0', 'type', 'veth', 'peer', 'name', 'mlck1']);
    await checked('ip', ['-n', ns, 'addr', 'add', `${NODE_IP}/24`, 'dev', 'mlck0']);
    for (const link of ['mlck0', 'mlck1']) await checked('ip', ['-n', ns, 'link', 'set', link, 'up']);
    // As README's Upgrade asks of a node.
    await checked('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.tcp_migrate_req=1']);
    dir = await mkdtemp(join(tmpdir(), 'meshlite-check-netns-'));
    confDir = join(dir, 'net.d');
    binDir = join(dir, 'bin');
    await mkdir(confDir);
    await mkdir(binDir);
    // What the installer leaves: meshlite last in the primary network, its plugin in the bin directory.
    const network = { cniVersion: '1.0.0', name: 'k8s', plugins: [{ type: 'bridge', bridge: 'cni0' }, { type: 'meshlite', agentSocket: '/run/meshlite/cni.sock' }] };
    await writeFile(join(confDir, '10-k8s.conflist'), JSON.stringify(network));
    await writeFile(join(binDir, 'meshlite'), '#!/bin/sh\n');
    await chmod(join(binDir, 'meshlite'), 0o755);
  });

  after(async () => {
    for (const server of apiServers) if (server.exitCode === null) server.kill('SIGTERM');
    if (ns !== '') await deleteNamespace(ns);
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  /** The test API server inside the namespace (the agent reaches it on the namespace's loopback); its kubeconfig path. */
  async function apiServer(denials: AccessDenial[] = []): Promise<{ kubeconfig: string; url: string }> {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, API_HELPER, JSON.stringify(denials)], { stdio: ['ignore', 'pipe', 'inherit'] });
    apiServers.push(child);
    let text = '';
    child.stdout?.setEncoding('utf8');
    for await (const chunk of child.stdout ?? []) {
      text += chunk as string;
      if (text.includes('\n')) break;
    }
    const match = /^kubeconfig (\S+)/.exec(text);
    assert.ok(match !== null, `the API server did not start: ${text}`);
    const { readFile } = await import('node:fs/promises');
    const server = /server: (\S+)/.exec(await readFile(match[1], 'utf8'));
    return { kubeconfig: match[1], url: server?.[1] ?? '' };
  }

  async function stopApiServer(): Promise<void> {
    const server = apiServers.at(-1);
    if (server === undefined || server.exitCode !== null) return;
    server.kill('SIGTERM');
    await once(server, 'exit');
  }

  /** The agent's own command, with the DaemonSet's kind of settings, in the namespace. */
  async function check(kubeconfig: string, path = process.env.PATH ?? ''): Promise<CheckRun> {
    const args = [
      ...['netns', 'exec', ns, process.execPath, MAIN, 'check'],
      ...['--discovery', 'kubernetes', '--kubeconfig', kubeconfig, '--node-name', 'node-a'],
      ...['--intercept', 'on', '--node-ip', NODE_IP, '--listen', '127.0.0.1:15101', '--admin', '127.0.0.1:15100', '--metrics', 'node:15190'],
    ];
    const child = spawn('ip', args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PATH: path, MESHLITE_CNI_CONF_DIR: confDir, MESHLITE_CNI_BIN_DIR: binDir },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const [code] = (await once(child, 'exit')) as [number | null];
    return { code, stdout, stderr };
  }

  function expectedLines(url: string): string[] {
    return [
      'ok    iptables backend: nft (no kube-proxy rules yet; the default, looked at again once the agent runs)',
      'ok    iptables nft IPv4: iptables-nft-save and iptables-nft-restore run',
      'ipset',
      'ok    ipset IPv4: the kernel supports hash:ip and hash:ip,port sets with timeout',
      `ok    CNI configuration directory ${confDir}`,
      'ok    CNI primary network 10-k8s.conflist: meshlite is chained, last of 2 plugins',
      `ok    CNI bin directory ${binDir}: the meshlite plugin is installed`,
      `ok    Kubernetes API ${url}: reachable, v1.33.0-meshlite-test`,
      'ok    RBAC services: get, list, watch',
      'ok    RBAC pods: get, list, watch',
      'ok    RBAC namespaces: get, list, watch',
      'ok    RBAC endpointslices.discovery.k8s.io: get, list, watch',
      'ok    proxy 127.0.0.1:15101: free',
      `ok    proxy on the node IP ${NODE_IP}:15101: free`,
      'ok    admin 127.0.0.1:15100: free',
      `ok    metrics ${NODE_IP}:15190: free`,
      'ok    upgrade hand-over (net.ipv4.tcp_migrate_req): 1, connections queued on a closing agent go to the next',
    ];
  }

  it('reports every line ok and exits 0, and leaves the namespace as it was', async () => {
    const before = await snapshot(inNs);
    const { kubeconfig, url } = await apiServer();
    try {
      const run = await check(kubeconfig);
      const lines = run.stdout.trimEnd().split('\n');
      assert.match(lines[2], /^ok {4}ipset: ipset v\d+\.\d+, protocol version: \d+$/);
      assert.deepEqual(lines.map((line, i) => (i === 2 ? 'ipset' : line)), expectedLines(url));
      assert.deepEqual({ code: run.code, stderr: run.stderr }, { code: 0, stderr: '' });
      assert.deepEqual(await snapshot(inNs), before, 'no rule and no set changed: the throwaway sets are gone');
      process.stdout.write(`# meshlite check (all ok):\n${run.stdout.replace(/^/gm, '#   ')}\n`);
    } finally {
      await stopApiServer();
    }
  });

  it('says ipset cannot be run and what to do when it is not on PATH, and exits 1', async () => {
    // A PATH of links to every command but ipset.
    const bin = join(dir, 'path-without-ipset');
    await mkdir(bin);
    const seen = new Set<string>(['ipset']);
    for (const each of (process.env.PATH ?? '').split(delimiter)) {
      for (const name of await readdir(each).catch(() => [] as string[])) {
        if (seen.has(name)) continue;
        seen.add(name);
        await symlink(join(each, name), join(bin, name));
      }
    }
    const { kubeconfig, url } = await apiServer();
    try {
      const run = await check(kubeconfig, bin);
      const lines = run.stdout.trimEnd().split('\n');
      const expected = expectedLines(url).filter((line) => !line.startsWith('ok    ipset IPv4'));
      expected[2] =
        'FAIL  ipset: the ipset command is not installed or not on PATH (spawn ipset ENOENT) — ' +
        'install ipset (Debian and Ubuntu: apt-get install ipset) or run the check in the meshlite image, which has it';
      assert.deepEqual(lines, expected);
      assert.equal(run.code, 1);
      process.stdout.write(`# meshlite check (ipset missing):\n${run.stdout.replace(/^/gm, '#   ')}\n`);
    } finally {
      await stopApiServer();
    }
  });

  it('names the permission RBAC denies, and exits 1', async () => {
    const { kubeconfig } = await apiServer([{ verb: 'watch', resource: 'services' }]);
    try {
      const run = await check(kubeconfig);
      const failures = run.stdout.split('\n').filter((line) => line.startsWith('FAIL'));
      assert.deepEqual(failures, [`FAIL  RBAC services: the agent may not watch services in every namespace — ${APPLY_RBAC}`]);
      assert.equal(run.code, 1);
    } finally {
      await stopApiServer();
    }
  });
});
