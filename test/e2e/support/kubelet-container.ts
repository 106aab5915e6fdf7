// A container started the way the kubelet and a container runtime start it, from a rendered pod spec: the image's
// entrypoint and working directory (the Dockerfile's), the container's command, args and env with the downward API
// and $(VAR) expansion, the kubelet's KUBERNETES_SERVICE_* and service account files, every volume mounted at its
// mountPath (hostPath under the node's own root, emptyDir per pod), a read-only root when the securityContext says
// so, and only the capabilities it adds. It runs in the node's network namespace (hostNetwork) and its own mount
// namespace, whose root is a tmpfs holding the host's /usr and /etc read-only and the repository as the image's
// files: what the manifest says is all the agent gets, so manifest and code cannot drift apart unseen.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { E2eRun } from '../../../lab/e2e-harness.ts';
import type { Exit, NamespaceProcess } from '../../../lab/netns-process.ts';
import { imageRecipe } from '../../../lab/image-recipe.ts';
import type { InClusterAccess } from './kube-api-in-namespace.ts';
import { ContainerProbes, type ProbeSpec } from './kubelet-probes.ts';

const REPOSITORY = fileURLToPath(new URL('../../../', import.meta.url)).replace(/\/$/, '');
const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** A container runtime's PATH when the image sets none (the node image keeps it, with node in /usr/local/bin). */
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface ManifestContainer {
  name: string;
  command?: string[];
  args?: string[];
  env?: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
  securityContext?: { capabilities?: { add?: string[]; drop?: string[] }; allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean };
  startupProbe?: ProbeSpec;
  readinessProbe?: ProbeSpec;
  livenessProbe?: ProbeSpec;
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
}

export interface ManifestPodSpec {
  hostNetwork?: boolean;
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  terminationGracePeriodSeconds?: number;
  initContainers?: ManifestContainer[];
  containers: ManifestContainer[];
  volumes?: Array<{ name: string; hostPath?: { path: string; type?: string }; emptyDir?: object }>;
}

/** A lab node as the kubelet knows it: its name and IPs (status.hostIPs), and where its host paths live. */
export interface KubeletNode {
  ns: string;
  name: string;
  hostIPs: string[];
  /** A host path P of a pod is `${root}${P}`: each lab node has a file system of its own. Pods' own directories
   *  (emptyDir volumes, root file systems) go beside it, in `${root}/../pods`. */
  root: string;
}

export interface ContainerStart {
  pod: { name: string; namespace: string; spec: ManifestPodSpec };
  container: string;
  api: InClusterAccess;
}

export interface KubeletContainer {
  process: NamespaceProcess;
  probes: ContainerProbes;
  /** Runs a command inside the container (its mount namespace, root and network), as an exec probe does. */
  exec(command: readonly string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** The kubelet's termination: SIGTERM, SIGKILL after the pod's grace period; probes stop. */
  terminate(): Promise<Exit>;
  /** What the node's hostPath P is on this machine. */
  hostPath(path: string): string;
}

/**
 * Where a path inside the container is on this machine, through the container's hostPath mounts (the longest
 * mountPath that contains it); throws when no hostPath holds it (it would not outlive the container).
 */
export function hostPathOf(spec: ManifestPodSpec, containerName: string, path: string, root: string): string {
  const container = [...(spec.initContainers ?? []), ...spec.containers].find((c) => c.name === containerName);
  const mounts = (container?.volumeMounts ?? []).filter((m) => path === m.mountPath || path.startsWith(`${m.mountPath.replace(/\/$/, '')}/`));
  const mount = mounts.sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  const hostPath = spec.volumes?.find((v) => v.name === mount?.name)?.hostPath?.path;
  if (mount === undefined || hostPath === undefined) throw new Error(`${path} is on no hostPath volume of ${containerName}`);
  return `${root}${hostPath}${path.slice(mount.mountPath.length)}`;
}

/** The downward API's fields for a pod on `node` (hostNetwork: the pod's IPs are the node's). */
function fieldValues(node: KubeletNode, start: ContainerStart): Record<string, string> {
  return {
    'metadata.name': start.pod.name,
    'metadata.namespace': start.pod.namespace,
    'spec.nodeName': node.name,
    'spec.serviceAccountName': start.pod.spec.serviceAccountName ?? 'default',
    'status.hostIP': node.hostIPs[0],
    'status.hostIPs': node.hostIPs.join(','),
    'status.podIP': node.hostIPs[0],
    'status.podIPs': node.hostIPs.join(','),
  };
}

/** Kubernetes' $(VAR) expansion: defined names are replaced, `$$` is a literal `$`, anything else stays as written. */
export function expandReferences(text: string, env: Record<string, string>): string {
  return text.replace(/\$\$|\$\((\w+)\)/g, (match, name: string | undefined) => {
    if (name === undefined) return '$';
    return Object.hasOwn(env, name) ? env[name] : match;
  });
}

export function containerEnvironment(node: KubeletNode, start: ContainerStart, container: ManifestContainer): Record<string, string> {
  const fields = fieldValues(node, start);
  const recipe = imageRecipe();
  // The image's env, then the kubelet's (the API's Service, the hostname), then the container's own, in order.
  const env: Record<string, string> = {
    PATH: DEFAULT_PATH,
    ...recipe.env,
    HOSTNAME: node.name,
    KUBERNETES_SERVICE_HOST: start.api.host,
    KUBERNETES_SERVICE_PORT: String(start.api.port),
    KUBERNETES_SERVICE_PORT_HTTPS: String(start.api.port),
  };
  for (const entry of container.env ?? []) {
    const path = entry.valueFrom?.fieldRef?.fieldPath;
    if (path !== undefined) {
      if (!Object.hasOwn(fields, path)) throw new Error(`${container.name}: env ${entry.name} asks for ${path}, which this kubelet does not know`);
      env[entry.name] = fields[path];
    } else {
      env[entry.name] = expandReferences(entry.value ?? '', env);
    }
  }
  return env;
}

/** The argv the runtime executes: command (or the image's entrypoint), then args (or the image's cmd), expanded. */
export function containerArgv(container: ManifestContainer, env: Record<string, string>): string[] {
  const recipe = imageRecipe();
  const command = container.command ?? recipe.entrypoint;
  const args = container.args ?? (container.command === undefined ? recipe.cmd : []);
  return [...command, ...args].map((word) => expandReferences(word, env));
}

function quote(word: string): string {
  return `'${word.replaceAll("'", "'\\''")}'`;
}

interface Mount {
  source: string;
  target: string;
  file: boolean;
  readOnly: boolean;
}

/** Each volumeMount's source on this machine, creating hostPath volumes as their type asks, as the kubelet does. */
function volumeMounts(node: KubeletNode, start: ContainerStart, container: ManifestContainer, podDir: string): Mount[] {
  const mounts: Mount[] = [];
  for (const mount of container.volumeMounts ?? []) {
    const volume = start.pod.spec.volumes?.find((v) => v.name === mount.name);
    if (volume === undefined) throw new Error(`${container.name}: volumeMount ${mount.name} names no volume`);
    let source: string;
    let file = false;
    if (volume.hostPath !== undefined) {
      source = `${node.root}${volume.hostPath.path}`;
      const type = volume.hostPath.type ?? '';
      if (type === 'FileOrCreate') {
        file = true;
        mkdirSync(join(source, '..'), { recursive: true });
        writeFileSync(source, '', { flag: 'a' });
      } else if (type === 'DirectoryOrCreate') {
        mkdirSync(source, { recursive: true });
      } else {
        throw new Error(`${container.name}: hostPath type '${type}' is not handled by this kubelet`);
      }
    } else if (volume.emptyDir !== undefined) {
      source = join(podDir, 'volumes', volume.name);
      mkdirSync(source, { recursive: true });
    } else {
      throw new Error(`${container.name}: volume ${volume.name} is of a kind this kubelet does not handle`);
    }
    mounts.push({ source, target: mount.mountPath, file, readOnly: mount.readOnly === true });
  }
  if (start.pod.spec.automountServiceAccountToken !== false) {
    const source = join(podDir, 'volumes', 'kube-api-access');
    mkdirSync(source, { recursive: true });
    writeFileSync(join(source, 'token'), start.api.token);
    writeFileSync(join(source, 'ca.crt'), start.api.caCert);
    writeFileSync(join(source, 'namespace'), start.pod.namespace);
    mounts.push({ source, target: SERVICE_ACCOUNT_DIR, file: false, readOnly: true });
  }
  return mounts;
}

/** The capabilities a root process keeps: all but what is dropped, plus what is added (as `setpriv` names them). */
function boundingSet(container: ManifestContainer): string {
  const caps = container.securityContext?.capabilities;
  const drop = (caps?.drop ?? []).map((c) => c.toLowerCase());
  const add = (caps?.add ?? []).map((c) => `+${c.toLowerCase()}`);
  const removed = drop.includes('all') ? ['-all'] : drop.map((c) => `-${c}`);
  return [...removed, ...add].join(',');
}

/**
 * The shell that builds the container's file system in a fresh mount namespace and execs the entrypoint in place
 * (same PID: `ip netns exec`, `unshare`, `chroot`, `setpriv` and `env` all exec).
 */
function launchScript(root: string, mounts: Mount[], container: ManifestContainer, env: Record<string, string>, argv: string[]): string {
  const recipe = imageRecipe();
  const lines = [
    'set -eu',
    `R=${quote(root)}`,
    'mount -t tmpfs -o mode=755 meshlite-root "$R"',
    // Debian's merged /usr: /bin, /lib... are links into it.
    'for d in bin sbin lib lib32 lib64 libx32; do if [ -L "/$d" ]; then ln -s "$(readlink "/$d")" "$R/$d"; fi; done',
    'for d in usr etc; do mkdir "$R/$d"; mount --bind "/$d" "$R/$d"; mount -o remount,bind,ro "$R/$d"; done',
    'for d in dev proc sys; do mkdir "$R/$d"; mount --rbind "/$d" "$R/$d"; done',
    // As a container runtime leaves an unprivileged container: /proc/sys read-only (no node sysctl changed from it).
    'mount --bind "$R/proc/sys" "$R/proc/sys"',
    'mount -o remount,bind,ro "$R/proc/sys"',
    'mkdir -p "$R/run" "$R/var/run" "$R/tmp" "$R/root"',
    'chmod 1777 "$R/tmp"',
    // The image's Node: the pinned one, where the node image keeps it.
    'mount -t tmpfs -o mode=755 meshlite-local-bin "$R/usr/local/bin"',
    ': > "$R/usr/local/bin/node"',
    `mount --bind ${quote(process.execPath)} "$R/usr/local/bin/node"`,
    // The image's files: the repository, read-only, at the Dockerfile's WORKDIR.
    `mkdir -p "$R"${quote(recipe.workdir)}`,
    `mount --bind ${quote(REPOSITORY)} "$R"${quote(recipe.workdir)}`,
    `mount -o remount,bind,ro "$R"${quote(recipe.workdir)}`,
  ];
  for (const mount of mounts) {
    const target = `"$R"${quote(mount.target)}`;
    lines.push(mount.file ? `mkdir -p "$(dirname ${target})" && : > ${target}` : `mkdir -p ${target}`);
    lines.push(`mount --bind ${quote(mount.source)} ${target}`);
    if (mount.readOnly) lines.push(`mount -o remount,bind,ro ${target}`);
  }
  if (container.securityContext?.readOnlyRootFilesystem === true) lines.push('mount -o remount,ro "$R"');
  const privileges = ['setpriv', '--inh-caps=-all', `--bounding-set=${boundingSet(container) || '+all'}`];
  if (container.securityContext?.allowPrivilegeEscalation === false) privileges.push('--no-new-privs');
  const environment = Object.entries(env).map(([name, value]) => quote(`${name}=${value}`));
  lines.push(`exec chroot "$R" ${privileges.join(' ')} env -i --chdir=${quote(recipe.workdir)} ${environment.join(' ')} ${argv.map(quote).join(' ')}`);
  return lines.join('\n');
}

/** Starts one container of the pod in `node`'s namespace; probes start with it, as the kubelet's do. */
export function startContainer(run: E2eRun, node: KubeletNode, start: ContainerStart): KubeletContainer {
  const container = start.pod.spec.containers.find((c) => c.name === start.container);
  if (container === undefined) throw new Error(`the pod has no container ${start.container}`);
  if (start.pod.spec.hostNetwork !== true) throw new Error('this kubelet runs hostNetwork pods only (the lab node is the pod network)');
  const podDir = join(node.root, '..', 'pods', start.pod.name);
  const root = join(podDir, 'root');
  mkdirSync(root, { recursive: true });
  const env = containerEnvironment(node, start, container);
  const argv = containerArgv(container, env);
  const script = launchScript(root, volumeMounts(node, start, container, podDir), container, env, argv);
  const main = run.spawn(node.ns, 'unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script]);

  const exec = async (command: readonly string[], timeoutMs: number) => {
    const child = run.spawn(node.ns, 'nsenter', ['--target', String(main.pid), '--mount', '--root', '--wd', ...command]);
    const exit = await child.wait(timeoutMs).catch(() => ({ code: null, signal: 'SIGKILL' as NodeJS.Signals }));
    return { code: exit.code, stdout: child.stdout(), stderr: child.stderr() };
  };
  const probes = new ContainerProbes(container, (command, timeoutMs) => exec(command, timeoutMs).then((result) => result.code === 0));
  void main.exited.then(() => probes.stop());
  probes.start();
  const graceMs = (start.pod.spec.terminationGracePeriodSeconds ?? 30) * 1000;
  return {
    process: main,
    probes,
    exec,
    terminate: async () => {
      const exit = await main.stop({ signal: 'SIGTERM', graceMs });
      probes.stop();
      return exit;
    },
    hostPath: (path) => `${node.root}${path}`,
  };
}
