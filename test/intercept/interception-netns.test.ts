// Interception with the real iptables and ipset inside throwaway network namespaces: install, repair, uninstall, traffic.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import type { CommandRunner } from '../../agent/intercept/command-runner.ts';
import { InterceptionManager, type InterceptionManagerOptions } from '../../agent/intercept/interception-manager.ts';
import { chainRules, parseIptablesSave } from '../../agent/intercept/iptables-dump.ts';
import { parseIpsetSave } from '../../agent/intercept/ipset-dump.ts';
import { uninstall } from '../../agent/intercept/uninstall.ts';
import { createLogger } from '../../agent/telemetry/logger.ts';
import { waitFor } from '../../lab/wait-for.ts';
import type { LogLine } from './manager-harness.ts';
import {
  addNamespace,
  checked,
  deleteNamespace,
  ipsetIsolationProblem,
  linkPodToNode,
  namespaceName,
  netfilterSkipReason,
  snapshot,
  sweepLeftovers,
  withNamespace,
} from './throwaway-netns.ts';

const skip = netfilterSkipReason();

/** kube-proxy (iptables mode) as far as it matters here, plus a rule whose comment merely mentions meshlite. */
const KUBE_PROXY = (clusterIP: string, podIP: string, host: string) => `*nat
:KUBE-SERVICES - [0:0]
:KUBE-POSTROUTING - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-SERVICES -d ${clusterIP}/${host} -p tcp -m comment --comment "default/greeter:grpc cluster IP" -m tcp --dport 8080 -j DNAT --to-destination ${podIP}
COMMIT
*filter
:KUBE-FIREWALL - [0:0]
-A INPUT -j KUBE-FIREWALL
-A INPUT -p tcp -m tcp --dport 22 -m comment --comment "not meshlite" -j ACCEPT
-A KUBE-FIREWALL -m comment --comment "kubernetes firewall for dropping marked packets" -m mark --mark 0x8000/0x8000 -j DROP
COMMIT
`;
const KUBE_PROXY_V4 = KUBE_PROXY('10.96.0.10', '10.1.1.7:8080', '32');
const KUBE_PROXY_V6 = KUBE_PROXY('fd00:96::a', '[fd00:1::7]:8080', '128');
/** Someone else's set (kube-proxy in IPVS mode keeps its addresses in ipsets): must stay as it is. */
const FOREIGN_SET = 'create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536\nadd KUBE-CLUSTER-IP 10.96.0.1,tcp:443\n';

/** Sets up kube-proxy's rules in one backend (and a foreign set), the way a node has them before meshlite. */
async function kubeProxyIn(runner: CommandRunner, backend: 'nft' | 'legacy'): Promise<void> {
  await checked(`iptables-${backend}-restore`, ['--noflush'], runner, KUBE_PROXY_V4);
  await checked(`ip6tables-${backend}-restore`, ['--noflush'], runner, KUBE_PROXY_V6);
  await checked('ipset', ['restore'], runner, FOREIGN_SET);
}

/** A dump's lines with meshlite's removed: what must equal the dump from before meshlite, line for line. */
function withoutMeshlite(dump: string): string {
  return dump
    .split('\n')
    .filter((line) => !/MESHLITE|--comment meshlite( |$)/.test(line))
    .join('\n');
}

function createManager(runner: CommandRunner, lines: LogLine[], options: Partial<InterceptionManagerOptions> = {}): InterceptionManager {
  return new InterceptionManager({
    runner,
    logger: createLogger('debug', { write: (line: string) => lines.push(JSON.parse(line) as LogLine) }),
    timers: {
      now: () => performance.now(),
      setTimeout: (callback, ms) => setTimeout(callback, ms),
      clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
    },
    nodeIPs: { v4: '10.0.0.1', v6: 'fd00::1' },
    proxyPort: 15001,
    backend: 'auto',
    reconcileIntervalMs: 60_000,
    ...options,
  });
}

const MESHLITE_V4 = {
  jump: { nat: '-m comment --comment meshlite -j MESHLITE-PREROUTING', filter: '-m comment --comment meshlite -j MESHLITE-INPUT' },
  nat: ['-p tcp -m set --match-set meshlite-pods-v4 src -m set --match-set meshlite-dsts-v4 dst,dst -j DNAT --to-destination 10.0.0.1:15001'],
  filter: [
    '-d 10.0.0.1/32 -p tcp -m tcp --dport 15001 -m conntrack --ctstate DNAT -j ACCEPT',
    '-d 10.0.0.1/32 -p tcp -m tcp --dport 15001 -j REJECT --reject-with tcp-reset',
  ],
};
const MESHLITE_V6 = {
  nat: ['-p tcp -m set --match-set meshlite-pods-v6 src -m set --match-set meshlite-dsts-v6 dst,dst -j DNAT --to-destination [fd00::1]:15001'],
  filter: [
    '-d fd00::1/128 -p tcp -m tcp --dport 15001 -m conntrack --ctstate DNAT -j ACCEPT',
    '-d fd00::1/128 -p tcp -m tcp --dport 15001 -j REJECT --reject-with tcp-reset',
  ],
};

/** Asserts the exact rules of meshlite's chains and of the built-in chains it jumps from, as the kernel prints them. */
function assertInstalled(dumpText: string, family: 4 | 6): void {
  const dump = parseIptablesSave(dumpText);
  const own = family === 4 ? MESHLITE_V4 : MESHLITE_V6;
  assert.deepEqual(chainRules(dump, 'nat', 'MESHLITE-PREROUTING'), own.nat);
  assert.deepEqual(chainRules(dump, 'filter', 'MESHLITE-INPUT'), own.filter);
  assert.deepEqual(chainRules(dump, 'nat', 'PREROUTING'), [MESHLITE_V4.jump.nat, '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES']);
  assert.deepEqual(chainRules(dump, 'filter', 'INPUT'), [
    MESHLITE_V4.jump.filter,
    '-j KUBE-FIREWALL',
    '-p tcp -m tcp --dport 22 -m comment --comment "not meshlite" -j ACCEPT',
  ]);
}

async function setMembers(runner: CommandRunner): Promise<Record<string, string[]>> {
  const sets = parseIpsetSave(await checked('ipset', ['save'], runner));
  return Object.fromEntries([...sets].map(([name, set]) => [name, [...set.members].sort()]));
}

describe('interception in a network namespace (real iptables and ipset)', { skip }, () => {
  let isolation: string | false = false;

  before(async () => {
    await sweepLeftovers();
    isolation = await ipsetIsolationProblem();
  });

  it('ipsets are per network namespace here (else every other test stops)', () => {
    assert.equal(isolation, false);
  });

  it('installs exactly its rules and sets, ahead of kube-proxy and touching nothing else; a restarted agent changes nothing', { timeout: 30_000 }, async (t) => {
    if (isolation !== false) return t.skip(isolation);
    await withNamespace(async (runner) => {
      await kubeProxyIn(runner, 'nft');
      const beforeStart = await snapshot(runner);
      const lines: LogLine[] = [];
      const manager = createManager(runner, lines);
      manager.setPods(['10.1.0.5', 'FD00:0:0:1::5', '10.1.0.6']);
      manager.setDestinations([
        { ip: '10.96.0.10', port: 8080 },
        { ip: '10.1.1.7', port: 8080 },
        { ip: 'fd00:96:0:0:0:0:0:a', port: 8080 },
        // Two equally long zero runs: the kernel's spelling must be meshlite's, or every reconcile would flap.
        { ip: '2001:DB8:0:0:1:0:0:1', port: 443 },
      ]);
      await manager.start();
      assert.deepEqual(manager.backend?.backend, 'nft');
      const installed = await snapshot(runner);
      assertInstalled(installed.nft4, 4);
      assertInstalled(installed.nft6, 6);
      assert.equal(withoutMeshlite(installed.nft4), beforeStart.nft4, 'every other IPv4 line as it was');
      assert.equal(withoutMeshlite(installed.nft6), beforeStart.nft6, 'every other IPv6 line as it was');
      assert.deepEqual({ legacy4: installed.legacy4, legacy6: installed.legacy6 }, { legacy4: beforeStart.legacy4, legacy6: beforeStart.legacy6 });
      assert.deepEqual(await setMembers(runner), {
        'KUBE-CLUSTER-IP': ['10.96.0.1,tcp:443'],
        'meshlite-pods-v4': ['10.1.0.5', '10.1.0.6'],
        'meshlite-dsts-v4': ['10.1.1.7,tcp:8080', '10.96.0.10,tcp:8080'],
        'meshlite-pods-v6': ['fd00:0:0:1::5'],
        'meshlite-dsts-v6': ['2001:db8::1:0:0:1,tcp:443', 'fd00:96::a,tcp:8080'],
      });
      manager.setPods(['10.1.0.6', 'fd00:0:0:1::6']);
      await manager.whenApplied();
      assert.deepEqual((await setMembers(runner))['meshlite-pods-v4'], ['10.1.0.6']);
      assert.deepEqual((await setMembers(runner))['meshlite-pods-v6'], ['fd00:0:0:1::6']);
      await manager.stop();
      const afterStop = await snapshot(runner);
      assert.deepEqual(afterStop, await snapshot(runner));

      const restartLines: LogLine[] = [];
      const restarted = createManager(runner, restartLines);
      restarted.setPods(['10.1.0.6', 'fd00:0:0:1::6']);
      restarted.setDestinations([
        { ip: '10.96.0.10', port: 8080 },
        { ip: '10.1.1.7', port: 8080 },
        { ip: 'fd00:96::a', port: 8080 },
        { ip: '2001:db8::1:0:0:1', port: 443 },
      ]);
      await restarted.start();
      await restarted.stop();
      assert.deepEqual(await snapshot(runner), afterStop, 'the same kernel state, not even re-applied');
      assert.deepEqual(restartLines.filter((line) => line.msg === 'interception applied'), []);
      assert.deepEqual(restartLines.filter((line) => line.level === 'warn'), []);
    });
  });

  it('the reconcile restores a deleted jump, a flushed chain and a deleted set member, and says so', { timeout: 30_000 }, async (t) => {
    if (isolation !== false) return t.skip(isolation);
    await withNamespace(async (runner) => {
      await kubeProxyIn(runner, 'nft');
      const lines: LogLine[] = [];
      // Fail closed: fail open's refresh would put the deleted member back itself, racing the reconcile under test.
      const manager = createManager(runner, lines, { reconcileIntervalMs: 150, nodeIPs: { v4: '10.0.0.1', v6: null }, failMode: 'closed' });
      manager.setPods(['10.1.0.5', '10.1.0.6']);
      manager.setDestinations([{ ip: '10.96.0.10', port: 8080 }]);
      try {
        await manager.start();
        const installed = await snapshot(runner);
        await checked('iptables-nft', ['-t', 'nat', '-D', 'PREROUTING', '-m', 'comment', '--comment', 'meshlite', '-j', 'MESHLITE-PREROUTING'], runner);
        await checked('iptables-nft', ['-t', 'filter', '-F', 'MESHLITE-INPUT'], runner);
        await checked('ipset', ['del', 'meshlite-pods-v4', '10.1.0.5'], runner);
        assert.notDeepEqual(await snapshot(runner), installed);
        await waitFor(async () => JSON.stringify(await snapshot(runner)) === JSON.stringify(installed), { message: 'the reconcile restored everything', timeoutMs: 10_000 });
        assertInstalled((await snapshot(runner)).nft4, 4);
        const repaired = lines.filter((line) => line.code === 'ML_INTERCEPT_REPAIRED').flatMap((line) => line.repaired as string[]);
        assert.deepEqual(repaired.sort(), [
          'meshlite-pods-v4: 1 member missing (10.1.0.5)',
          'v4 filter MESHLITE-INPUT: rules changed',
          'v4 nat PREROUTING: jump missing',
        ]);
      } finally {
        await manager.stop();
      }
    });
  });

  it('uninstall leaves iptables-save and ipset save as they were before the manager started; twice, and on a clean namespace', { timeout: 30_000 }, async (t) => {
    if (isolation !== false) return t.skip(isolation);
    await withNamespace(async (runner) => {
      await kubeProxyIn(runner, 'nft');
      const beforeStart = await snapshot(runner);
      const logger = createLogger('silent');
      assert.deepEqual(await uninstall({ runner, logger, backend: 'auto' }), { removed: [], unreadable: [] }, 'nothing to remove yet');
      assert.deepEqual(await snapshot(runner), beforeStart);
      const manager = createManager(runner, []);
      manager.setPods(['10.1.0.5', 'fd00::5']);
      manager.setDestinations([{ ip: '10.96.0.10', port: 8080 }]);
      await manager.start();
      await manager.stop();
      // A jump someone duplicated goes too.
      await checked('iptables-nft', ['-t', 'nat', '-A', 'PREROUTING', '-m', 'comment', '--comment', 'meshlite', '-j', 'MESHLITE-PREROUTING'], runner);
      const report = await uninstall({ runner, logger, backend: 'auto' });
      assert.deepEqual(report.removed, [
        'nft v4: nat PREROUTING: jump',
        'nft v4: nat PREROUTING: jump',
        'nft v4: nat MESHLITE-PREROUTING: chain (1 rules)',
        'nft v4: filter INPUT: jump',
        'nft v4: filter MESHLITE-INPUT: chain (2 rules)',
        'nft v6: nat PREROUTING: jump',
        'nft v6: nat MESHLITE-PREROUTING: chain (1 rules)',
        'nft v6: filter INPUT: jump',
        'nft v6: filter MESHLITE-INPUT: chain (2 rules)',
        'ipset meshlite-pods-v4',
        'ipset meshlite-dsts-v4',
        'ipset meshlite-pods-v6',
        'ipset meshlite-dsts-v6',
      ]);
      assert.deepEqual(await snapshot(runner), beforeStart, 'iptables-save (both backends, both families) and ipset save as before');
      assert.deepEqual(await uninstall({ runner, logger, backend: 'auto' }), { removed: [], unreadable: [] });
      assert.deepEqual(await snapshot(runner), beforeStart);
    });
  });

  it('follows kube-proxy into iptables-legacy, leaves nft alone, and uninstalls from legacy', { timeout: 30_000 }, async (t) => {
    if (isolation !== false) return t.skip(isolation);
    await withNamespace(async (runner) => {
      await kubeProxyIn(runner, 'legacy');
      const beforeStart = await snapshot(runner);
      const manager = createManager(runner, []);
      await manager.start();
      await manager.stop();
      assert.deepEqual(manager.backend, { backend: 'legacy', reason: 'kube-chains', kubeLines: { nft: 0, legacy: 9 } });
      const installed = await snapshot(runner);
      assertInstalled(installed.legacy4, 4);
      assertInstalled(installed.legacy6, 6);
      assert.deepEqual({ nft4: installed.nft4, nft6: installed.nft6 }, { nft4: beforeStart.nft4, nft6: beforeStart.nft6 });
      const report = await uninstall({ runner, logger: createLogger('silent'), backend: 'auto' });
      assert.ok(report.removed.every((item) => item.startsWith('legacy') || item.startsWith('ipset')), report.removed.join(', '));
      assert.deepEqual(await snapshot(runner), beforeStart);
    });
  });
});

describe('intercepted traffic in a network namespace (real DNAT and listener guard)', { skip }, () => {
  const node = namespaceName('node');
  const pod = namespaceName('pod');
  let nodeRunner: CommandRunner;
  let listener: ChildProcess | null = null;
  let manager: InterceptionManager | null = null;

  before(async () => {
    await sweepLeftovers();
    nodeRunner = await addNamespace(node);
    await addNamespace(pod);
    await linkPodToNode(node, pod, 'mlic0');
    await checked('iptables-nft-restore', ['--noflush'], nodeRunner, KUBE_PROXY_V4);
    // The proxy listener stand-in: says which address it was reached on.
    listener = spawn('ip', ['netns', 'exec', node, process.execPath, '-e', "require('net').createServer((s) => s.end('listener ' + s.localAddress + ':' + s.localPort)).listen(15001, '10.0.0.1', () => console.log('listening'))"]);
    const [chunk] = (await once(listener.stdout as NodeJS.ReadableStream, 'data')) as [Buffer];
    assert.equal(String(chunk).trim(), 'listening');
  });

  after(async () => {
    await manager?.stop();
    listener?.kill();
    if (listener !== null && listener.exitCode === null) await once(listener, 'exit');
    await deleteNamespace(pod);
    await deleteNamespace(node);
  });

  /** Connects from the pod's namespace and reports what happened: the listener's greeting, an error code, or timeout. */
  async function connectFromPod(host: string, port: number): Promise<string> {
    const script = `const s = require('net').connect(${port}, '${host}'); let out = ''; s.setTimeout(700, () => { console.log('timeout'); s.destroy(); }); s.on('data', (d) => { out += d; }); s.on('end', () => console.log(out)); s.on('error', (e) => console.log(e.code));`;
    return (await checked('ip', ['netns', 'exec', pod, process.execPath, '-e', script])).trim();
  }

  it('redirects an opted-in pod to the listener, refuses direct connections, and stops when the pod leaves', { timeout: 30_000 }, async () => {
    manager = createManager(nodeRunner, [], { nodeIPs: { v4: '10.0.0.1', v6: null } });
    manager.setPods(['10.0.0.5']);
    manager.setDestinations([{ ip: '10.96.0.10', port: 8080 }]);
    await manager.start();
    assert.equal(await connectFromPod('10.96.0.10', 8080), 'listener 10.0.0.1:15001', 'DNATed to the listener');
    assert.equal(await connectFromPod('10.0.0.1', 15001), 'ECONNREFUSED', 'the guard resets a direct connection');
    assert.equal(await connectFromPod('10.96.0.10', 9090), 'timeout', 'a destination not in the set is not intercepted');
    manager.setPods([]);
    await manager.whenApplied();
    assert.equal(await connectFromPod('10.96.0.10', 8080), 'timeout', 'no longer intercepted (and not routed: there is no backend here)');
  });
});
