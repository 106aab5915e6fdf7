// How many threads serve the proxy port when --workers is auto: what the container's CPU limit allows.

/** An auto count never goes past this: beyond it the one discovery thread and the kernel's accept queues, not the
 *  relays, bound a node agent, and every thread costs its own heap (about 40 MiB) and upstream connections. */
export const MAX_AUTO_WORKERS = 8;

/**
 * The thread count `auto` means: what the container's CPU limit allows. `cpuMax` is the text of the cgroup v2
 * `cpu.max` file (`QUOTA PERIOD`, or `max PERIOD` without a limit), null when there is none (cgroup v1, not in a
 * container); `parallelism` is os.availableParallelism() (the CPUs the process may run on). A limit of 1.5 CPUs gives
 * 2 threads: a thread that waits for a share of a core still serves its connections, one that does not exist serves
 * none. Without a limit, one thread: the node's cores are its workloads', and below saturation every extra thread
 * costs CPU per request (twice at 10k requests/s with two, docs/performance.md) and memory (about 32 MiB) whether the
 * traffic needs it or not; an operator who wants more sets a CPU limit or --workers.
 */
export function autoWorkerCount(cpuMax: string | null, parallelism: number): number {
  const limit = cpuLimit(cpuMax);
  if (limit === null) return 1;
  const cores = Math.max(1, Math.floor(parallelism));
  return Math.min(cores, Math.max(1, Math.ceil(limit)), MAX_AUTO_WORKERS);
}

/** CPUs allowed by a cgroup v2 `cpu.max` text (quota / period), or null for no limit or an unreadable text. */
export function cpuLimit(cpuMax: string | null): number | null {
  if (cpuMax === null) return null;
  const [quota, period] = cpuMax.trim().split(/\s+/);
  if (quota === 'max' || quota === undefined) return null;
  const q = Number(quota);
  const p = period === undefined ? 100_000 : Number(period);
  if (!Number.isFinite(q) || !Number.isFinite(p) || q <= 0 || p <= 0) return null;
  return q / p;
}

/**
 * The text of this process's cgroup v2 `cpu.max`, or null. In a container (its own cgroup namespace) the file is at
 * the root of /sys/fs/cgroup; outside one, under the path /proc/self/cgroup names (`0::/PATH`). `read` returns a
 * file's text or null when it cannot be read (main passes a readFileSync wrapper).
 */
export function cgroupCpuMax(read: (path: string) => string | null): string | null {
  const membership = read('/proc/self/cgroup');
  const path = membership?.split('\n').find((line) => line.startsWith('0::'))?.slice(3).trim();
  const candidates = path !== undefined && path !== '/' ? [`/sys/fs/cgroup${path}/cpu.max`, '/sys/fs/cgroup/cpu.max'] : ['/sys/fs/cgroup/cpu.max'];
  for (const candidate of candidates) {
    const text = read(candidate);
    if (text !== null) return text;
  }
  return null;
}
