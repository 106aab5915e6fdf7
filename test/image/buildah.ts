// What the image test asks of buildah: run a command (buildah or one inside a container) to its end, start one that
// keeps running, inspect an image, and sweep away what an earlier, killed run of the test left behind.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Every container and image the test and scripts/image-build.sh make is named with it. */
export const PREFIX = 'meshlite-ci-';

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end (no shell); never rejects on a non-zero exit, the caller asserts what it expects. */
export function run(file: string, args: string[], options: { cwd?: string; timeoutMs?: number } = {}): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/** The last lines of a command's output, for an assertion message that says why it failed. */
export function tail(result: Finished, lines = 40): string {
  return `exit ${result.code ?? result.signal}\n${`${result.stdout}\n${result.stderr}`.trim().split('\n').slice(-lines).join('\n')}`;
}

/** `buildah run` with chroot isolation: the host's network namespace and PID namespace, no OCI runtime. */
export function runIn(container: string, argv: string[], options: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<Finished> {
  const env = Object.entries(options.env ?? {}).flatMap(([name, value]) => ['--env', `${name}=${value}`]);
  return run('buildah', ['run', '--isolation', 'chroot', ...env, container, '--', ...argv], { timeoutMs: options.timeoutMs ?? 60_000 });
}

/** A `buildah run` that keeps running (the agent), its output collected as it comes. */
export function startIn(container: string, argv: string[]): { child: ChildProcess; output: () => string } {
  const child = spawn('buildah', ['run', '--isolation', 'chroot', container, '--', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  return { child, output: () => output };
}

export interface ImageConfig {
  labels: Record<string, string>;
  entrypoint: string[];
  workingDir: string;
}

export async function inspectImage(image: string): Promise<ImageConfig> {
  const result = await run('buildah', ['inspect', '--type', 'image', image]);
  if (result.code !== 0) throw new Error(`buildah inspect ${image}: ${tail(result)}`);
  const config = (JSON.parse(result.stdout) as { OCIv1: { config?: { Labels?: Record<string, string>; Entrypoint?: string[]; WorkingDir?: string } } }).OCIv1
    .config;
  return { labels: config?.Labels ?? {}, entrypoint: config?.Entrypoint ?? [], workingDir: config?.WorkingDir ?? '' };
}

export function onPath(tool: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && existsSync(join(dir, tool)));
}

interface ProcessEntry {
  pid: number;
  ppid: number;
  argv: string[];
}

function processTable(): ProcessEntry[] {
  const entries: ProcessEntry[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // The command name in parentheses may hold spaces and parentheses: the fields after its last ')' are fixed.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter((arg) => arg !== '');
      entries.push({ pid: Number(name), ppid, argv });
    } catch {
      // Gone between the listing and the read.
    }
  }
  return entries;
}

/** A process and all its descendants, children before parents (the order to end them in). */
export function processTree(root: number): number[] {
  const table = processTable();
  const order: number[] = [];
  const visit = (pid: number): void => {
    for (const child of table.filter((entry) => entry.ppid === pid)) visit(child.pid);
    order.push(pid);
  };
  visit(root);
  return order;
}

/**
 * The descendant of `root` that runs `program` with `argument` (the agent under `buildah run`, whose own helper
 * processes carry the same command line in their arguments).
 */
export function findDescendant(root: number, program: string, argument: string): number | undefined {
  const table = processTable();
  return processTree(root).find((pid) => {
    const argv = table.find((entry) => entry.pid === pid)?.argv ?? [];
    return pid !== root && argv[0]?.split('/').pop() === program && argv.includes(argument);
  });
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

/** Whose a name is: the process id in meshlite-ci-run-PID, meshlite-ci-agent:test-PID, meshlite-ci-base-*-PID. */
function owner(text: string): number | undefined {
  const match = /meshlite-ci-(?:run-|agent:test-|base-run-|base-build-)(\d+)(?!\d)/.exec(text);
  return match === null ? undefined : Number(match[1]);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * What killed runs left, and only theirs (a run still going, of another checkout, say, is left alone): each name
 * carries the process id of the run that made it, and what a dead process made is removed. Processes first (a
 * `buildah run` still serving an agent, a build still going, with everything under them), then containers
 * (`buildah rm` unmounts their root file systems), then agent images. A build's working containers are named after
 * their base alone (meshlite-ci-base-*-working-container): removed when no `buildah bud` runs. The bases stay: they
 * are scripts/image-build.sh's cache.
 */
export function sweepLeftovers(imagePrefix: string): { processes: number[]; containers: string[]; images: string[] } {
  const table = processTable();
  const orphaned = (text: string): boolean => {
    const pid = owner(text);
    return pid !== undefined && pid !== process.pid && !alive(pid);
  };
  const processes = table.filter((entry) => orphaned(entry.argv.join(' '))).flatMap((entry) => processTree(entry.pid));
  for (const pid of processes) signal(pid, 'SIGKILL');
  const building = table.some((entry) => entry.argv[0]?.endsWith('buildah') && ['bud', 'build'].includes(entry.argv[1] ?? '') && !processes.includes(entry.pid));
  const list = (args: string[]): string[] =>
    spawnSync('buildah', args, { encoding: 'utf8' })
      .stdout.split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '');
  const containers = list(['containers', '--format', '{{.ContainerName}}']).filter(
    (name) => name.startsWith(PREFIX) && (orphaned(name) || (!building && /-working-container(-\d+)?$/.test(name))),
  );
  for (const name of containers) spawnSync('buildah', ['rm', name]);
  const images = list(['images', '--format', '{{.Name}}:{{.Tag}}']).filter((name) => name.startsWith(imagePrefix) && orphaned(name));
  for (const name of images) spawnSync('buildah', ['rmi', name]);
  return { processes, containers, images };
}

/** Where buildah keeps images and containers (its graph root and run root), to tell its mounts from others. */
export function storageRoots(): string[] {
  const info = JSON.parse(spawnSync('buildah', ['info'], { encoding: 'utf8' }).stdout) as { store: { GraphRoot: string; RunRoot: string } };
  return [info.store.GraphRoot, info.store.RunRoot];
}

/** The mount points of this mount namespace under buildah's storage: a container's root while it is mounted. */
export function storageMounts(roots: string[]): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((point) => roots.some((root) => point.startsWith(`${root}/`)));
}
