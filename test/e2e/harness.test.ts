// The e2e harness itself: CNI chaining as libcni does it, dual-stack pods, two linked nodes, and the sweep of killed runs.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { writePluginWrapper } from '../../lab/cni-plugin-wrapper.ts';
import { e2eSkipReason, type E2eRun, startE2eRun, withE2eRun } from '../../lab/e2e-harness.ts';
import { listNamespaces } from '../../lab/netns.ts';
import { processIsAlive } from '../../lab/netns-process.ts';
import { readRecord } from './support/recorder-cni-plugin.ts';
import { waitFor } from '../../lab/wait-for.ts';

const skip = e2eSkipReason() ?? false;
const RECORDER = fileURLToPath(new URL('./support/recorder-cni-plugin.ts', import.meta.url));
const ORPHAN = fileURLToPath(new URL('./support/orphan-run-process.ts', import.meta.url));

function assertNothingLeft(run: E2eRun): void {
  assert.deepEqual(run.leftovers(), { namespaces: [], processes: [], strays: [], tempDir: false });
}

test('CNI: plugins chained after bridge get prevResult in order on ADD, and the cached result in reverse on DEL', { skip, timeout: 30_000 }, async () => {
  let record = '';
  await withE2eRun(async (run) => {
    const bin = join(run.tmpDir, 'cni-bin');
    writePluginWrapper(bin, 'recorder', RECORDER);
    record = join(run.tmpDir, 'record.jsonl');
    const recorders = ['first', 'second'].map((recorderName) => ({ type: 'recorder', recorderName, recordFile: record }));
    const node = await run.createNode({ chain: { plugins: recorders, cniPath: [bin] } });
    const pod = await run.createPod(node, { name: 'chained', namespace: 'team-a' });
    assert.deepEqual(pod.result.dns, { search: ['first', 'second'] }, 'the list result is the last plugin output');

    const adds = readRecord(record);
    assert.deepEqual(adds.map((r) => `${r.command} ${r.plugin}`), ['ADD first', 'ADD second']);
    const [first, second] = adds;
    assert.equal(first.config.name, 'ml-e2e-backends');
    assert.equal(first.config.cniVersion, '1.0.0');
    assert.deepEqual(first.config.prevResult?.ips, [{ interface: 2, address: `${pod.ipv4}/24`, gateway: '10.79.1.1' }]);
    assert.equal(first.config.prevResult?.dns?.search, undefined, 'bridge result, unmarked');
    assert.deepEqual(second.config.prevResult?.dns?.search, ['first']);
    assert.deepEqual(first.env, {
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: pod.containerId,
      CNI_NETNS: `/var/run/netns/${pod.ns}`,
      CNI_IFNAME: 'eth0',
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=team-a;K8S_POD_NAME=chained;K8S_POD_INFRA_CONTAINER_ID=${pod.containerId};K8S_POD_UID=${pod.uid}`,
      CNI_PATH: `${bin}:/usr/lib/cni`,
    });

    await run.deletePod(pod);
    const dels = readRecord(record).slice(2);
    assert.deepEqual(dels.map((r) => `${r.command} ${r.plugin}`), ['DEL second', 'DEL first']);
    for (const del of dels) assert.deepEqual(del.config.prevResult?.dns?.search, ['first', 'second']);
    assert.ok(!existsSync(join(run.tmpDir, 'ipam', 'ml-e2e-backends', pod.ipv4)), 'host-local released the lease');
  });
  assert.equal(existsSync(record), false);
});

test('CNI: a chained plugin that fails fails the sandbox; the runtime DEL and the cleanup leave nothing', { skip, timeout: 30_000 }, async () => {
  const run = await startE2eRun();
  try {
    const node = await run.createNode({ chain: { plugins: [{ type: 'no-such-plugin' }], cniPath: [] } });
    await assert.rejects(run.createPod(node, { name: 'doomed' }), /CNI lookup of plugin no-such-plugin failed: no executable "no-such-plugin" in CNI_PATH \/usr\/lib\/cni/);
    assert.deepEqual(listNamespaces().filter((name) => name.startsWith(`${run.prefix}-p`)), []);
  } finally {
    await run.cleanup();
  }
  assertNothingLeft(run);
});

test('dual-stack: pods get IPv4 and IPv6; an IPv6 ClusterIP is DNATed (and refused without endpoints) like an IPv4 one', { skip, timeout: 30_000 }, async () => {
  const run = await startE2eRun();
  try {
    const node = await run.createNode({ dualStack: true });
    const pods = [await run.createPod(node, { name: 'echo-6a' }), await run.createPod(node, { name: 'echo-6b' })];
    const client = await run.createPod(node, { name: 'client6', network: 'clients' });
    for (const pod of [...pods, client]) assert.match(pod.ipv6 ?? '', /^fd79:[12]::/);
    const backends = await Promise.all(pods.map((pod) => run.startGrpcBackend(pod, { bind: 'any' })));
    const endpoints = pods.map((pod) => ({ ip: pod.ipv6 ?? '', port: 50051 }));
    const service = await run.kubeProxy(node).addService({ name: 'echo6', clusterIp: 'fd79:100::10', port: 50051 }, endpoints);

    const [viaService, direct4, direct6] = await Promise.all([
      run.grpcClient(client, { target: '[fd79:100::10]:50051', count: 100, concurrency: 5 }),
      run.grpcClient(client, { target: backends[0].address, count: 5 }),
      run.grpcClient(client, { target: backends[1].address6 ?? '', count: 5 }),
    ]);
    assert.equal(viaService.ok, 100);
    assert.equal(Object.keys(viaService.byBackend).length, 1);
    assert.deepEqual(direct4.byBackend, { 'echo-6a': 5 });
    assert.deepEqual(direct6.byBackend, { 'echo-6b': 5 });
    await service.setEndpoints([]);
    assert.deepEqual(await run.probeTcp(client.ns, 'fd79:100::10', 50051), { outcome: 'refused', code: 'ECONNREFUSED' });
  } finally {
    await run.cleanup();
  }
  assertNothingLeft(run);
});

test('kube-proxy: new endpoints apply to new connections; a Service without endpoints refuses', { skip, timeout: 30_000 }, async () => {
  await withE2eRun(async (run) => {
    const node = await run.createNode();
    const pods = [await run.createPod(node, { name: 'echo-1' }), await run.createPod(node, { name: 'echo-2' })];
    const client = await run.createPod(node, { name: 'client', network: 'clients' });
    const backends = await Promise.all(pods.map((pod) => run.startGrpcBackend(pod)));
    const endpoints = backends.map((b) => ({ ip: b.host.ipv4, port: b.port }));
    const service = await run.kubeProxy(node).addService({ name: 'echo', clusterIp: '10.79.100.30', port: 8443 }, endpoints);

    await service.setEndpoints([endpoints[1]]);
    const scaledDown = await run.grpcClient(client, { target: '10.79.100.30:8443', count: 20, channels: 20 });
    assert.deepEqual(scaledDown.byBackend, { 'echo-2': 20 });

    await service.setEndpoints([]);
    assert.deepEqual(await run.probeTcp(client.ns, '10.79.100.30', 8443), { outcome: 'refused', code: 'ECONNREFUSED' });

    await service.remove();
    assert.doesNotMatch(await run.kubeProxy(node).dump('ipv4'), /KUBE-SVC-|KUBE-SEP-|10\.79\.100\.30/);
  });
});

test('two nodes: pods reach pods across the link; node 2 reaches node 1 IP, where nothing listens on 15001', { skip, timeout: 30_000 }, async () => {
  const run = await startE2eRun();
  try {
    const [node1, node2] = [await run.createNode(), await run.createNode()];
    await run.connectNodes(node1, node2);
    const backendPod = await run.createPod(node1, { name: 'echo-n1' });
    const client = await run.createPod(node2, { name: 'client-n2', network: 'clients' });
    assert.match(client.ipv4, /^10\.79\.12\./);
    const [backend, hostServer] = await Promise.all([
      run.startGrpcBackend(backendPod),
      run.startHttpServer(node1, { port: 8080 }), // a hostNetwork server on node 1's IP
    ]);
    const [crossNode, refused, hostNetwork, page] = await Promise.all([
      run.grpcClient(client, { target: backend.address, count: 5 }),
      run.probeTcp(node2.ns, node1.ipv4, 15001),
      run.probeTcp(node2.ns, node1.ipv4, hostServer.port),
      run.httpRequest(node2, { url: `http://${node1.ipv4}:${hostServer.port}/` }),
    ]);
    assert.deepEqual(crossNode.byBackend, { 'echo-n1': 5 });
    assert.deepEqual(refused, { outcome: 'refused', code: 'ECONNREFUSED' });
    assert.deepEqual(hostNetwork, { outcome: 'connected' });
    assert.equal(JSON.parse(page.body).remoteAddress, node2.ipv4, 'node 2 speaks from its node IP');
  } finally {
    await run.cleanup();
  }
  assertNothingLeft(run);
});

test('sweep: a run whose process was killed loses its namespaces, processes and temp dir to the next run', { skip, timeout: 30_000 }, async () => {
  const orphan = spawn(process.execPath, [ORPHAN], { stdio: ['ignore', 'pipe', 'inherit'] });
  let line = '';
  orphan.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    line += chunk;
  });
  try {
    await waitFor(() => line.includes('\n') || orphan.exitCode !== null, { timeoutMs: 15_000, message: 'orphan run' });
  } finally {
    orphan.kill('SIGKILL');
  }
  const { prefix, backendPid } = JSON.parse(line) as { prefix: string; backendPid: number };
  await waitFor(() => orphan.exitCode !== null || orphan.signalCode !== null, { message: 'orphan exit' });
  const orphaned = listNamespaces().filter((name) => name.startsWith(`${prefix}-`));
  assert.equal(orphaned.length, 2, 'its node and its pod were left behind');
  const run = await startE2eRun();
  try {
    assert.deepEqual([...run.swept.namespaces].sort(), [...orphaned].sort());
    assert.ok(run.swept.processes.includes(backendPid), 'the backend in the orphan pod was ended');
    assert.deepEqual(run.swept.tempDirs, [prefix]);
    assert.deepEqual(listNamespaces().filter((name) => name.startsWith(`${prefix}-`)), []);
    await waitFor(() => !existsSync(`/proc/${backendPid}`), { message: 'orphan backend gone' });

    // A live run (this one) is never swept by another.
    const node = await run.createNode();
    const other = await startE2eRun();
    await other.cleanup();
    assert.ok(!other.swept.namespaces.includes(node.ns));
    assert.ok(listNamespaces().includes(node.ns));
    assertNothingLeft(other);
  } finally {
    await run.cleanup();
  }
  assertNothingLeft(run);
});

test('cleanup ends what the run’s processes left inside its namespaces, and reports it as strays', { skip, timeout: 30_000 }, async () => {
  const run = await startE2eRun();
  let sleeper = 0;
  try {
    const node = await run.createNode();
    const shell = run.spawn(node.ns, 'sh', ['-c', 'sleep 30 & echo $!; wait']);
    sleeper = Number(await shell.line((line) => /^\d+$/.test(line)));
    // `ip netns exec` execs the command in place: the PID the run keeps is the command's own.
    assert.match(readFileSync(`/proc/${shell.pid}/cmdline`, 'utf8'), /^sh\0-c\0/);
    await shell.stop({ signal: 'SIGKILL' });
    assert.ok(existsSync(`/proc/${sleeper}`), 'the child outlived its parent');
  } finally {
    await run.cleanup();
  }
  assert.deepEqual(run.leftovers(), { namespaces: [], processes: [], strays: [sleeper], tempDir: false });
  assert.ok(!processIsAlive(sleeper));
});
