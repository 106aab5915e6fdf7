// One lab run, the harness of the e2e tests and the transparent demo: it owns its nodes, pods, kube-proxy rules and
// processes, and undoes all of them in cleanup.
//
// What a run builds, all inside network namespaces named `ml-e2e-<pid>-<rand>-…` (the root namespace is never
// changed: no interface, route, rule or sysctl is set there):
//   node N    namespace `<prefix>-node<N>`: lo up, node IP 10.79.0.N/32 (fd79::N/128) on lo, ip_forward on, a
//             default route to a dead uplink eth0 (so unrouted traffic meets FORWARD, as on a real node);
//             bridges ml-br-be (backends, 10.79.<10N-9>.0/24, fd79:<10N-9>::/64) and ml-br-cl (clients,
//             10.79.<10N-8>.0/24, fd79:<10N-8>::/64), made by Debian's bridge plugin at the first pod;
//             nodes linked by veths ml-to-<peer> on /30s from 10.79.0.64/26, routed to each other's pods.
//   pods      namespace `<prefix>-p<seq>-<name>`, made as a container runtime makes a sandbox: `ip netns add`,
//             the loopback plugin (CNI_IFNAME=lo), then the node's conflist with CNI_IFNAME=eth0, every plugin
//             run inside the node namespace (`ip netns exec NODE plugin`), chained with prevResult; DEL in reverse.
//   services  kube-proxy's iptables rules (nat KUBE-SERVICES from PREROUTING and OUTPUT, KUBE-SVC random choice,
//             KUBE-SEP DNAT) in the node namespace, for fake ClusterIPs in 10.79.100.0/24 or fd79:100::/112.
//   files     `$TMPDIR/<prefix>/`: host-local's leases (never /var/lib/cni/networks), libcni's result cache, and
//             whatever a test writes there (the agent's static discovery file, its CNI socket).
// A run first sweeps what killed runs left (their creator's PID is gone); cleanup runs in `finally` and, after it,
// leftovers() must be empty: no namespace of the run, no process it started, nothing inside its namespaces.
//
// Adding meshlite later (the acceptance tests):
//   1. The agent runs in the node namespace, like a hostNetwork DaemonSet pod:
//        const agent = run.spawn(node.ns, process.execPath, ['agent/main.ts', '--discovery', 'static',
//          '--static-file', join(run.tmpDir, 'meshlite.yaml'), '--listen', `${node.ipv4}:15001`,
//          '--intercept', 'on', '--node-ip', node.ipv4, '--cni-socket', join(run.tmpDir, 'cni.sock'),
//          '--admin', '127.0.0.1:0', ...]);
//      and waits for its "meshlite ready" log line with agent.line(...). Its iptables rules and ipsets are made in
//      the node namespace (where kube-proxy's are), so they vanish with it. Start it before the pods it must
//      enroll: cleanup is last-in first-out, so pods are then deleted (CNI DEL reaches the agent) before it ends.
//      Its admin server on 127.0.0.1 is reachable only from inside the node namespace (run a client there); the
//      agent's `--iptables-backend auto` finds kube-proxy's KUBE-* chains in the nft backend (this kube-proxy
//      uses the `iptables-restore` on PATH, which is nft here).
//   2. The meshlite CNI plugin is chained after bridge, in both pod networks of the node:
//        const dir = join(run.tmpDir, 'cni-bin'); writePluginWrapper(dir, 'meshlite', 'cni/main.ts');
//        run.createNode({ chain: { plugins: [{ type: 'meshlite', agentSocket: join(run.tmpDir, 'cni.sock'),
//          failPolicy: 'closed', logFile: join(run.tmpDir, 'cni.log') }], cniPath: [dir] } });
//      A runtime finds a plugin by `type` in CNI_PATH, so the wrapper is an executable named `meshlite` that runs
//      cni/main.ts with this Node. The plugin gets bridge's result as prevResult and must pass it on (see the
//      chaining test in test/e2e/harness.test.ts). The socket is a filesystem path, reachable from every namespace.
//   3. Opt-in is the pod's annotation in the static file (namespace/name as in CNI_ARGS: pod.namespace, pod.name).

import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from './wait-for.ts';
import { CleanupStack } from './cleanup-stack.ts';
import type { CniExecOptions } from './cni-runtime.ts';
import { type GrpcBackend, type GrpcBackendOptions, startGrpcBackend } from './grpc-backend-pod.ts';
import { type GrpcClientOptions, type GrpcClientSummary, runGrpcClient } from './grpc-client-run.ts';
import { type HttpRequestOptions, type HttpResponseSummary, runHttpRequest } from './http-client-run.ts';
import { type HttpServer, startHttpServer } from './http-server-process.ts';
import { createKubeProxy, type KubeProxy } from './kube-proxy.ts';
import { deleteNamespace, listNamespaces, type NetHost, namespacePids } from './netns.ts';
import { type NamespaceProcess, processIsAlive, type SpawnOptions, spawnInNamespace } from './netns-process.ts';
import { connectNodes, createNode, type E2eNode, type NodeLink } from './node.ts';
import { createPod, deletePod, type E2ePod, type PodSpec } from './pod.ts';
import { type CniChain, DEBIAN_CNI_DIR, type PodNetworkRole } from './pod-network.ts';
import { newRunId, processStartTime, type RunId } from './run-id.ts';
import { probeTcp, type TcpProbeResult } from './tcp-probe.ts';
import { OWNER_FILE, runTempDir, type SweepReport, sweepDeadRuns } from './sweep.ts';

/** Why e2e tests cannot run here, or undefined when they can. */
export function e2eSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'e2e tests need root (network namespaces, iptables)';
  for (const plugin of ['bridge', 'host-local', 'loopback']) {
    if (!existsSync(join(DEBIAN_CNI_DIR, plugin))) return `${DEBIAN_CNI_DIR}/${plugin} is missing (apt install containernetworking-plugins)`;
  }
  return undefined;
}

export interface NodeCreateOptions {
  /** IPv4 and IPv6 pods (host-local hands out one address of each). Default false. */
  dualStack?: boolean;
  /** Plugins chained after bridge in the node's conflists (meshlite's), with their CNI_PATH dirs. */
  chain?: CniChain;
}

export interface PodCreateOptions extends PodSpec {
  /** Which bridge: 'backends' (default) or 'clients'. */
  network?: PodNetworkRole;
}

/** What is left of a run; all empty after a successful cleanup. */
export interface Leftovers {
  namespaces: string[];
  /** Processes the run started that still exist. */
  processes: number[];
  /**
   * Processes the run did not start that were still inside one of its namespaces when cleanup deleted it (children
   * of its processes, say). Cleanup ends them, since they would keep the namespace and its interfaces alive once
   * its name is gone; they are reported because a process that leaks children is a bug worth seeing.
   */
  strays: number[];
  tempDir: boolean;
}

export interface E2eRun {
  id: RunId;
  prefix: string;
  /** `$TMPDIR/<prefix>`: removed by cleanup. */
  tmpDir: string;
  /** What the sweep at the start removed (leftovers of killed runs). */
  swept: SweepReport;
  /** Node indexes count from 1 in creation order. */
  createNode(options?: NodeCreateOptions): Promise<E2eNode>;
  connectNodes(a: E2eNode, b: E2eNode): Promise<NodeLink>;
  createPod(node: E2eNode, options: PodCreateOptions): Promise<E2ePod>;
  /**
   * Deletes a pod before cleanup as the runtime does when a pod goes away: its processes end (SIGKILL: send
   * SIGTERM first through their NamespaceProcess to test a graceful exit), then CNI DEL, then its namespace.
   */
  deletePod(pod: E2ePod): Promise<void>;
  /** Starts a process in a namespace; cleanup ends it by its PID (SIGKILL) unless it ended already. */
  spawn(ns: string, file: string, args: readonly string[], options?: SpawnOptions): NamespaceProcess;
  /** The node's kube-proxy (one per node). */
  kubeProxy(node: E2eNode): KubeProxy;
  /** Servers and clients run in a pod's namespace, or a node's (a hostNetwork process). */
  startGrpcBackend(host: NetHost, options?: GrpcBackendOptions): Promise<GrpcBackend>;
  grpcClient(host: NetHost, options: GrpcClientOptions, timeoutMs?: number): Promise<GrpcClientSummary>;
  startHttpServer(host: NetHost, options?: { id?: string; port?: number; bindAny?: boolean }): Promise<HttpServer>;
  httpRequest(host: NetHost, options: HttpRequestOptions): Promise<HttpResponseSummary>;
  /** One TCP connection attempt from a namespace (a node's, a pod's). */
  probeTcp(ns: string, host: string, port: number, timeoutMs?: number): Promise<TcpProbeResult>;
  /** Undoes everything, last-in first-out; every step runs even if one fails. Safe to call twice. */
  cleanup(): Promise<void>;
  leftovers(): Leftovers;
}

/** Sweeps dead runs, then starts a new one. Call cleanup() in `finally` (or use withE2eRun). */
export async function startE2eRun(): Promise<E2eRun> {
  const swept = await sweepDeadRuns();
  const id = newRunId();
  const tmpDir = runTempDir(id.prefix);
  const stack = new CleanupStack();
  mkdirSync(tmpDir, { recursive: true });
  writeFileSync(join(tmpDir, OWNER_FILE), `${processStartTime(process.pid) ?? ''}\n`);
  stack.push(`temp dir ${tmpDir}`, () => rmSync(tmpDir, { recursive: true, force: true }));
  const cni: CniExecOptions = { hostNamespace: '', cacheDir: join(tmpDir, 'cni-cache') };
  const started: number[] = [];
  const strays: number[] = [];
  const proxies = new Map<string, KubeProxy>();
  const podCleanups = new Map<E2ePod, () => Promise<void>>();
  let nodes = 0;
  let links = 0;
  let pods = 0;

  const spawn = (ns: string, file: string, args: readonly string[], options?: SpawnOptions): NamespaceProcess => {
    const proc = spawnInNamespace(ns, file, args, options);
    started.push(proc.pid);
    stack.push(`process ${proc.pid} (${file}) in ${ns}`, async () => {
      await proc.stop({ signal: 'SIGKILL' });
    });
    return proc;
  };

  // What a runtime does before it removes a sandbox: end every process in it. Deleting only the name would leave
  // a namespace with a process inside alive, unnamed, and out of every later sweep's reach.
  const emptyNamespace = async (ns: string): Promise<void> => {
    const pids = await namespacePids(ns);
    for (const pid of pids) {
      if (!started.includes(pid)) strays.push(pid);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // ended meanwhile
      }
    }
    await waitFor(() => !pids.some(processIsAlive), { timeoutMs: 5_000, message: `processes in ${ns} ended` });
  };

  const run: E2eRun = {
    id,
    prefix: id.prefix,
    tmpDir,
    swept,
    async createNode(options = {}) {
      const index = ++nodes;
      const ns = `${id.prefix}-node${index}`;
      stack.push(`node namespace ${ns}`, async () => {
        await emptyNamespace(ns);
        await deleteNamespace(ns);
      });
      const node = await createNode({
        index,
        ns,
        dualStack: options.dualStack ?? false,
        ipamDataDir: join(tmpDir, 'ipam'),
        ...(options.chain === undefined ? {} : { chain: options.chain }),
      });
      return node;
    },
    connectNodes: (a, b) => connectNodes(a, b, links++),
    async createPod(node, options) {
      const ns = `${id.prefix}-p${++pods}-${options.name.replace(/[^a-z0-9-]/gi, '').slice(0, 40)}`;
      const network = node.networks[options.network ?? 'backends'];
      // Registered before it exists: a half-made pod is undone too (deletePod tolerates what is missing).
      const undo = { pod: undefined as E2ePod | undefined };
      const cleanupPod = stack.push(`pod namespace ${ns}`, async () => {
        await emptyNamespace(ns);
        if (undo.pod === undefined) await deleteNamespace(ns);
        else await deletePod(undo.pod, { ...cni, hostNamespace: node.ns });
      });
      const pod = await createPod(node, network, options, { ns, cni: { ...cni, hostNamespace: node.ns } });
      undo.pod = pod;
      podCleanups.set(pod, cleanupPod);
      return pod;
    },
    async deletePod(pod) {
      const cleanupPod = podCleanups.get(pod);
      if (cleanupPod === undefined) throw new Error(`pod ${pod.name} is not this run's, or was deleted`);
      podCleanups.delete(pod);
      await cleanupPod();
    },
    spawn,
    kubeProxy(node) {
      let proxy = proxies.get(node.ns);
      if (proxy === undefined) {
        proxy = createKubeProxy(node.ns);
        proxies.set(node.ns, proxy);
      }
      return proxy;
    },
    startGrpcBackend: (pod, options) => startGrpcBackend(spawn, pod, options),
    grpcClient: (pod, options, timeoutMs) => runGrpcClient(spawn, pod, options, timeoutMs),
    startHttpServer: (pod, options) => startHttpServer(spawn, pod, options),
    httpRequest: (pod, options) => runHttpRequest(spawn, pod, options),
    probeTcp: (ns, host, port, timeoutMs) => probeTcp(spawn, ns, host, port, timeoutMs),
    cleanup: () => stack.runAll(),
    leftovers: () => ({
      namespaces: listNamespaces().filter((name) => name.startsWith(`${id.prefix}-`)),
      processes: started.filter(processIsAlive),
      strays: [...strays],
      tempDir: existsSync(tmpDir),
    }),
  };
  return run;
}

/** Runs `body` with a fresh run and always cleans up; a cleanup failure is reported unless the body failed first. */
export async function withE2eRun<T>(body: (run: E2eRun) => Promise<T>): Promise<T> {
  const run = await startE2eRun();
  let failed = false;
  try {
    return await body(run);
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    await run.cleanup().catch((err) => {
      if (!failed) throw err;
      // The body's error is the one to report; the cleanup's still belongs in the log.
      console.error(`e2e cleanup of ${run.prefix} failed too:`, err);
    });
  }
}
