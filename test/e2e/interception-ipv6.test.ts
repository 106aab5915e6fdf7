// meshlite on a dual-stack node: IPv6 connections of an annotated pod are redirected to [node IPv6]:15001, their
// original destination is read through IP6T_SO_ORIGINAL_DST, and every request is balanced; IPv4 still works beside it.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { writePluginWrapper } from '../../lab/cni-plugin-wrapper.ts';
import { e2eSkipReason, startE2eRun } from '../../lab/e2e-harness.ts';
import {
  agentPaths,
  meshliteChain,
  PROXY_PORT,
  relayedRequests,
  type StaticPod,
  startMeshlite,
  writeStaticFile,
} from '../../lab/meshlite-agent.ts';
import { assertSpread } from './support/spread.ts';

const skip = e2eSkipReason();
const CLUSTER_IP = '10.79.100.10';
const CLUSTER_IP6 = 'fd79:100::10';
const PORT = 50051;

test('dual-stack node: an annotated pod is balanced over IPv6 (ClusterIP and pod IP) and IPv4; a plain pod over IPv6 is not; the IPv6 proxy port refuses strangers', { skip: skip ?? false, timeout: 120_000 }, async () => {
  const run = await startE2eRun();
  try {
    const paths = agentPaths(run);
    const pods: StaticPod[] = [
      { name: 'client-on', inject: 'enabled' },
      { name: 'client-off', inject: 'disabled' },
    ];
    writeStaticFile(paths.staticFile, [], pods);
    const node = await run.createNode({ dualStack: true, chain: meshliteChain(run, paths, writePluginWrapper) });
    assert.ok(node.ipv6 !== undefined);
    // The agent first, so that the client pods enroll through meshlite's CNI plugin (both of their IPs).
    const agent = await startMeshlite(run, node, paths, { dualStack: true, balancer: 'round-robin' });
    const backendPods = [];
    for (const name of ['echo-a', 'echo-b', 'echo-c']) backendPods.push(await run.createPod(node, { name }));
    // [::]: each backend answers on its IPv4 and its IPv6 pod IP.
    const backends = await Promise.all(backendPods.map((pod) => run.startGrpcBackend(pod, { bind: 'any' })));
    const v6 = backends.map((b) => {
      assert.ok(b.host.ipv6 !== undefined && b.address6 !== undefined, `${b.id} has an IPv6 address`);
      return { ip: b.host.ipv6, port: b.port, address: b.address6 };
    });

    // kube-proxy runs one proxier per family; this one keys services by port name, hence a second name for IPv6.
    const kubeProxy = run.kubeProxy(node);
    await kubeProxy.addService({ name: 'echo', portName: 'grpc', clusterIp: CLUSTER_IP, port: PORT }, backends.map((b) => ({ ip: b.host.ipv4, port: b.port })));
    await kubeProxy.addService({ name: 'echo', portName: 'grpc-ipv6', clusterIp: CLUSTER_IP6, port: PORT }, v6);
    // One dual-stack Service, as discovery sees it: both ClusterIPs, the endpoints of both families' slices.
    writeStaticFile(
      paths.staticFile,
      [
        {
          name: 'echo',
          clusterIP: CLUSTER_IP,
          clusterIPs: [CLUSTER_IP, CLUSTER_IP6],
          port: PORT,
          endpoints: [...backends.map((b) => b.address), ...v6.map((e) => e.address)],
        },
      ],
      pods,
    );
    await agent.line((line) => line.includes('static discovery file reloaded'), 10_000);
    const on = await run.createPod(node, { name: 'client-on', network: 'clients' });
    const off = await run.createPod(node, { name: 'client-off', network: 'clients' });
    assert.ok(on.ipv6 !== undefined && off.ipv6 !== undefined, 'client pods are dual-stack');

    // Over IPv6, the first connection is already intercepted: the agent relayed every RPC of it.
    const relayedBefore = await relayedRequests(run, node);
    const first = await run.grpcClient(on, { target: `[${CLUSTER_IP6}]:${PORT}`, count: 30 });
    assert.equal(first.ok, 30);
    assert.equal((await relayedRequests(run, node)) - relayedBefore, 30, 'the agent relayed every RPC of the IPv6 connection');

    // The problem, over IPv6: a plain pod's one channel lands on one backend.
    const plain = await run.grpcClient(off, { target: `[${CLUSTER_IP6}]:${PORT}`, count: 300, concurrency: 16 });
    assert.deepEqual(plain.failures, []);
    assert.equal(Object.keys(plain.byBackend).length, 1, `a plain pod's IPv6 channel reached ${Object.keys(plain.byBackend).join(', ')}`);

    // The fix, over IPv6: ONE channel to the IPv6 ClusterIP, 3000 RPCs spread over the three backends.
    const balanced = await run.grpcClient(on, { target: `[${CLUSTER_IP6}]:${PORT}`, count: 3000, concurrency: 16 }, 60_000);
    assertSpread(balanced, backends, 3000);
    // Round-robin over the six endpoints (each backend by both families), one pick per request: 1000 per backend, exactly.
    const exact = (summary: typeof balanced): number[] => backends.map((b) => summary.byBackend[b.id] ?? 0);
    assert.deepEqual(exact(balanced), [1000, 1000, 1000], 'round-robin over IPv6');

    // Headless style over IPv6: dialing one backend's IPv6 pod IP is balanced over all three too.
    const headless = await run.grpcClient(on, { target: v6[0].address, count: 3000, concurrency: 16 }, 60_000);
    assertSpread(headless, backends, 3000);
    assert.deepEqual(exact(headless), [1000, 1000, 1000], 'round-robin, dialing an IPv6 pod IP');

    // IPv4 on the same dual-stack node and agent: still balanced.
    const overV4 = await run.grpcClient(on, { target: `${CLUSTER_IP}:${PORT}`, count: 3000, concurrency: 16 }, 60_000);
    assertSpread(overV4, backends, 3000);
    assert.deepEqual(exact(overV4), [1000, 1000, 1000], 'round-robin over IPv4 on the dual-stack node');

    // The listener guard covers the IPv6 node IP too: a direct connection to the proxy port is reset, from a plain pod
    // and from an annotated one alike (neither was DNATed here).
    assert.equal((await run.probeTcp(off.ns, node.ipv6, PROXY_PORT)).outcome, 'refused');
    assert.equal((await run.probeTcp(on.ns, node.ipv6, PROXY_PORT)).outcome, 'refused');
  } finally {
    await run.cleanup();
  }
  assert.deepEqual(run.leftovers(), { namespaces: [], processes: [], strays: [], tempDir: false });
});
