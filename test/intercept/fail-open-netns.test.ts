// Fail open on the real kernel: pods-set members expire when no agent refreshes them, so a pod's connection goes on to kube-proxy's rule.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { CommandRunner } from '../../agent/intercept/command-runner.ts';
import type { FailMode } from '../../agent/intercept/fail-mode.ts';
import { InterceptionManager } from '../../agent/intercept/interception-manager.ts';
import { parseIpsetSave } from '../../agent/intercept/ipset-dump.ts';
import { uninstall } from '../../agent/intercept/uninstall.ts';
import { createLogger } from '../../agent/telemetry/logger.ts';
import { realClock } from '../../agent/vocabulary/clock.ts';
import { addNamespace, checked, deleteNamespace, linkPodToNode, namespaceName, netfilterSkipReason, sweepLeftovers } from './throwaway-netns.ts';

const skip = netfilterSkipReason();

/** kube-proxy's rule for the Service, to a "backend" on the node itself (port 8081 of the same stand-in listener). */
const KUBE_PROXY = `*nat
:KUBE-SERVICES - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment "default/greeter:grpc cluster IP" -m tcp --dport 8080 -j DNAT --to-destination 10.0.0.1:8081
COMMIT
`;
const INTERCEPTED = 'reached 10.0.0.1:15001';
const THROUGH_KUBE_PROXY = 'reached 10.0.0.1:8081';

describe('fail open in a network namespace (real ipset timeouts, DNAT and kube-proxy rule)', { skip }, () => {
  const node = namespaceName('node');
  const pod = namespaceName('pod');
  let nodeRunner: CommandRunner;
  let listener: ChildProcess | null = null;
  const managers: InterceptionManager[] = [];

  before(async () => {
    await sweepLeftovers();
    nodeRunner = await addNamespace(node);
    await addNamespace(pod);
    await linkPodToNode(node, pod, 'mlfo0');
    await checked('iptables-nft-restore', ['--noflush'], nodeRunner, KUBE_PROXY);
    // The proxy listener (15001) and the Service's backend (8081) in one stand-in: it says which one was reached.
    const serve = "const net = require('net'); let up = 0; for (const port of [15001, 8081]) net.createServer((s) => s.end('reached ' + s.localAddress + ':' + s.localPort)).listen(port, '10.0.0.1', () => { if (++up === 2) console.log('listening'); });";
    const child = spawn('ip', ['netns', 'exec', node, process.execPath, '-e', serve]);
    listener = child;
    const [chunk] = await once(child.stdout, 'data');
    assert.equal(String(chunk).trim(), 'listening');
  });

  after(async () => {
    for (const manager of managers) await manager.stop();
    listener?.kill();
    if (listener !== null && listener.exitCode === null) await once(listener, 'exit');
    await deleteNamespace(pod);
    await deleteNamespace(node);
  });

  function agent(failMode: FailMode): InterceptionManager {
    const manager = new InterceptionManager({
      runner: nodeRunner,
      logger: createLogger('silent'),
      timers: realClock,
      nodeIPs: { v4: '10.0.0.1', v6: null },
      proxyPort: 15001,
      backend: 'nft',
      reconcileIntervalMs: 60_000,
      failMode,
    });
    managers.push(manager);
    manager.setPods(['10.0.0.5']);
    manager.setDestinations([{ ip: '10.96.0.10', port: 8080 }]);
    return manager;
  }

  /** Connects from the pod to the Service's ClusterIP: which listener answered, an error code, or timeout. */
  async function connectFromPod(): Promise<string> {
    const script = "const s = require('net').connect(8080, '10.96.0.10'); let out = ''; s.setTimeout(700, () => { console.log('timeout'); s.destroy(); }); s.on('data', (d) => { out += d; }); s.on('end', () => console.log(out)); s.on('error', (e) => console.log(e.code));";
    return (await checked('ip', ['netns', 'exec', pod, process.execPath, '-e', script])).trim();
  }

  async function podsSet(): Promise<string> {
    return checked('ipset', ['save', 'meshlite-pods-v4'], nodeRunner);
  }

  /** Milliseconds from now until the pods set is empty, polled every 20 ms; null when it is not within `limitMs`. */
  async function msUntilEmpty(limitMs: number): Promise<number | null> {
    const start = performance.now();
    while (performance.now() - start < limitMs) {
      if (parseIpsetSave(await podsSet()).get('meshlite-pods-v4')?.members.size === 0) return Math.round(performance.now() - start);
      await sleep(20);
    }
    return null;
  }

  it('a live agent keeps its pods past the timeout; when it stops refreshing they expire within 2 s, the pod reaches the Service through kube-proxy, and a new agent intercepts again', { timeout: 40_000 }, async (t) => {
    const first = agent('open');
    await first.start();
    assert.match(await podsSet(), /^create meshlite-pods-v4 hash:ip family inet .*timeout 3 /m);
    assert.match(await podsSet(), /^add meshlite-pods-v4 10\.0\.0\.5 timeout [0-2]$/m);
    assert.equal(await connectFromPod(), INTERCEPTED);
    await sleep(4500);
    assert.match(await podsSet(), /^add meshlite-pods-v4 10\.0\.0\.5 timeout [1-2]$/m, 'refreshed: still there 4.5 s later');
    assert.equal(await connectFromPod(), INTERCEPTED);

    await first.stop();
    const expiredAfterMs = await msUntilEmpty(6000);
    t.diagnostic(`pods-set member expired ${expiredAfterMs} ms after the agent stopped refreshing`);
    assert.ok(expiredAfterMs !== null && expiredAfterMs <= 2200, `expired within 2 s (+ polling), got ${expiredAfterMs}`);
    assert.ok(expiredAfterMs >= 1000, `not before the timeout's last whole second, got ${expiredAfterMs}`);
    assert.equal(await connectFromPod(), THROUGH_KUBE_PROXY, 'on to kube-proxy\'s rule, as if the pod had not opted in');
    assert.match(await checked('iptables-nft-save', ['-t', 'nat'], nodeRunner), /-A MESHLITE-PREROUTING .*--match-set meshlite-pods-v4 src/, 'the rules stay');

    const resumedAt = performance.now();
    const second = agent('open');
    await second.start();
    t.diagnostic(`a new agent intercepted again ${Math.round(performance.now() - resumedAt)} ms after it started`);
    assert.equal(await connectFromPod(), INTERCEPTED);
    await second.stop();
  });

  it('rebuilds an older pods set without timeout support under the rule that uses it; fail closed keeps it as it is', { timeout: 40_000 }, async (t) => {
    await uninstall({ runner: nodeRunner, logger: createLogger('silent'), backend: 'nft' });
    const oldSets = 'create meshlite-pods-v4 hash:ip family inet maxelem 65536\nadd meshlite-pods-v4 10.0.0.5\ncreate meshlite-dsts-v4 hash:ip,port family inet maxelem 1048576\n';
    await checked('ipset', ['restore'], nodeRunner, oldSets);
    const closed = agent('closed');
    await closed.start();
    await closed.stop();
    assert.match(await podsSet(), /^add meshlite-pods-v4 10\.0\.0\.5$/m, 'fail closed: the older set, its member without a timeout');
    assert.doesNotMatch(await podsSet(), /timeout/);
    assert.equal(await connectFromPod(), INTERCEPTED);

    const open = agent('open');
    await open.start();
    assert.match(await podsSet(), /^create meshlite-pods-v4 hash:ip family inet .*timeout 3 /m);
    assert.match(await podsSet(), /^add meshlite-pods-v4 10\.0\.0\.5 timeout [0-2]$/m);
    assert.deepEqual((await checked('ipset', ['list', '-n'], nodeRunner)).trim().split('\n').sort(), ['meshlite-dsts-v4', 'meshlite-pods-v4'], 'the temporary set is gone');
    const destroy = await nodeRunner('ipset', ['destroy', 'meshlite-pods-v4']);
    assert.match(destroy.stderr, /in use/, 'the rule references the rebuilt set');
    assert.equal(await connectFromPod(), INTERCEPTED);
    await open.stop();
    const expiredAfterMs = await msUntilEmpty(6000);
    t.diagnostic(`after the migration, the member expired ${expiredAfterMs} ms after the agent stopped`);
    assert.ok(expiredAfterMs !== null && expiredAfterMs <= 2200, `expired within 2 s (+ polling), got ${expiredAfterMs}`);
    assert.equal(await connectFromPod(), THROUGH_KUBE_PROXY);
  });
});
