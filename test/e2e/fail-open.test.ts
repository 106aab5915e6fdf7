// Fail open end to end: under load from an opted-in pod, SIGKILL the agent; RPCs succeed again through kube-proxy within 5 s, and a restarted agent balances again.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { writePluginWrapper } from '../../lab/cni-plugin-wrapper.ts';
import { e2eSkipReason, startE2eRun } from '../../lab/e2e-harness.ts';
import { agentPaths, meshliteChain, relayedRequests, type StaticPod, startMeshlite, writeStaticFile } from '../../lab/meshlite-agent.ts';
import { waitFor } from '../../lab/wait-for.ts';

const skip = e2eSkipReason();
const CLUSTER_IP = '10.79.100.10';
/** Bounds of the load: at most this many calls, 24 workers each pausing 10 ms between calls (≤ 2400 calls/s). */
const LOAD_CALLS = 30_000;

test('SIGKILL the agent under load: RPCs through the ClusterIP succeed again within 5 s (through kube-proxy); a restarted agent relays and balances again', { skip: skip ?? false, timeout: 180_000 }, async (t) => {
  const run = await startE2eRun();
  try {
    const paths = agentPaths(run);
    const pods: StaticPod[] = [{ name: 'client', inject: 'enabled' }];
    writeStaticFile(paths.staticFile, [], pods);
    const node = await run.createNode({ chain: meshliteChain(run, paths, writePluginWrapper) });
    const agent = await startMeshlite(run, node, paths, { balancer: 'round-robin' });
    const backendPods = [];
    for (const name of ['echo-a', 'echo-b', 'echo-c']) backendPods.push(await run.createPod(node, { name }));
    const backends = await Promise.all(backendPods.map((pod) => run.startGrpcBackend(pod)));
    await run.kubeProxy(node).addService({ name: 'echo', portName: 'grpc', clusterIp: CLUSTER_IP, port: 50051 }, backends.map((b) => ({ ip: b.host.ipv4, port: b.port })));
    const client = await run.createPod(node, { name: 'client', network: 'clients' });
    // The restarted agent has not seen the pod's CNI ADD: the file carries its IP, as the pod's status would.
    const publish = (): void =>
      writeStaticFile(paths.staticFile, [{ name: 'echo', clusterIP: CLUSTER_IP, port: 50051, endpoints: backends.map((b) => `${b.host.ipv4}:${b.port}`) }], [{ ...pods[0], ip: client.ipv4 }]);
    publish();
    await agent.line((line) => line.includes('static discovery file reloaded'), 10_000);

    const load = run.grpcClient(client, { target: `${CLUSTER_IP}:50051`, count: LOAD_CALLS, concurrency: 24, intervalMs: 10, timeoutMs: 2_000, timeline: true }, 150_000);
    await waitFor(async () => (await relayedRequests(run, node)) > 2_000, { timeoutMs: 30_000, intervalMs: 100, message: 'load through the agent' });
    const killedAt = Date.now();
    await agent.stop({ signal: 'SIGKILL' });
    const summary = await load;

    const timeline = summary.timeline;
    assert.ok(timeline !== undefined);
    const failedAfterKill = timeline.failedAtMs.filter((at) => at >= killedAt);
    const lastFailureMs = failedAfterKill.length === 0 ? 0 : failedAfterKill[failedAfterKill.length - 1] - killedAt;
    const rate = Math.round((summary.count / summary.durationMs) * 1000);
    t.diagnostic(`${summary.ok}/${summary.count} ok at ${rate} calls/s; after SIGKILL ${failedAfterKill.length} failed, the last ${lastFailureMs} ms after it; failures: ${JSON.stringify(summary.failures)}`);
    assert.equal(timeline.failedAtMs.length - failedAfterKill.length, 0, 'no failure before the kill');
    assert.ok(rate >= 1000, `at least 1000 calls/s, got ${rate}`);
    assert.ok(lastFailureMs <= 5_000, `RPCs succeeded again within 5 s of the SIGKILL; the last failure came ${lastFailureMs} ms after it`);
    assert.ok(timeline.lastOkAtMs !== null && timeline.lastOkAtMs - killedAt > lastFailureMs + 2_000, 'and kept succeeding, without the agent, for seconds after that');
    assert.ok(summary.ok >= summary.count - failedAfterKill.length, 'every failure was in the window after the kill');
    const pods4 = run.spawn(node.ns, 'ipset', ['list', 'meshlite-pods-v4']);
    await pods4.wait(10_000);
    assert.match(pods4.stdout(), /Members:\s*$/, 'the pods set emptied by itself');

    // An agent serves again: it re-adds the pod, and a new channel's RPCs are relayed and balanced again.
    await startMeshlite(run, node, paths, { balancer: 'round-robin' });
    const relayedBefore = await relayedRequests(run, node);
    const again = await run.grpcClient(client, { target: `${CLUSTER_IP}:50051`, count: 300, concurrency: 8 }, 60_000);
    assert.deepEqual(again.failures, []);
    assert.equal((await relayedRequests(run, node)) - relayedBefore, 300, 'every RPC relayed by the new agent');
    assert.deepEqual(backends.map((b) => again.byBackend[b.id] ?? 0), [100, 100, 100], 'round-robin over the three again');
  } finally {
    await run.cleanup();
  }
  assert.deepEqual(run.leftovers(), { namespaces: [], processes: [], strays: [], tempDir: false });
});
