// CPU caps for benchmark processes through the cgroup v1 cpu controller: one group per role with a CFS quota (its
// most) and a weight (its claim against other processes), its CPU time (cpuacct) and throttling counters, and its
// removal (also of groups that a killed run left behind).

import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pidAlive } from './processes.ts';

const CPU_ROOT = '/sys/fs/cgroup/cpu';
const CPUACCT_ROOT = '/sys/fs/cgroup/cpuacct';
/** Every group this module makes is named `mlw-bench-<pid of the run>-<role>`. */
const PREFIX = 'mlw-bench-';

/** One reading of a group: CPU time of its tasks (also of tasks that have exited) and how often the quota bit. */
export interface CpuGroupSample {
  usageNs: number;
  nrPeriods: number;
  nrThrottled: number;
  throttledNs: number;
}

export interface CpuGroup {
  readonly name: string;
  /** The quota in cores (quota ÷ period). */
  readonly cores: number;
  /** Moves a process, with every thread it has and will have, into the group; false when it is already gone. */
  add(pid: number): boolean;
  sample(): CpuGroupSample;
}

/** What happened in a group between two samples, per second of wall time. */
export interface CpuGroupUse {
  /** CPU cores the group's tasks used. */
  cores: number;
  /** Share of the CFS periods in which the group ran out of quota. */
  throttledPeriods: number;
  /** Seconds spent throttled per second (summed over CPUs). */
  throttledPerS: number;
}

function readStat(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of readFileSync(join(dir, 'cpu.stat'), 'latin1').split('\n')) {
    const [key, value] = line.split(' ');
    if (key) out.set(key, Number(value));
  }
  return out;
}

/** Fails with what is missing when the cgroup v1 cpu and cpuacct controllers are not mounted where expected. */
export function checkCpuController(): void {
  for (const file of [join(CPU_ROOT, 'cpu.cfs_quota_us'), join(CPUACCT_ROOT, 'cpuacct.usage')]) {
    if (!existsSync(file)) throw new Error(`${file} does not exist: the cgroup v1 cpu and cpuacct controllers are needed`);
  }
}

function writeProcs(dir: string, pid: number): boolean {
  try {
    writeFileSync(join(dir, 'cgroup.procs'), String(pid));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

function procsOf(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'latin1').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Moves every task back to the root group, then removes the directory (retrying while exiting tasks linger). */
function removeDir(root: string, dir: string): void {
  if (!existsSync(dir)) return;
  for (let attempt = 0; ; attempt++) {
    for (const pid of procsOf(dir)) writeProcs(root, pid);
    try {
      rmdirSync(dir);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || attempt >= 50) throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
}

/**
 * Removes the groups of earlier runs that were killed before they cleaned up: names with this module's prefix whose
 * run (the PID in the name) is gone. Groups of a run still alive are left alone. Returns the names removed.
 */
export function removeStaleGroups(): string[] {
  const removed: string[] = [];
  for (const root of [CPU_ROOT, CPUACCT_ROOT]) {
    for (const entry of readdirSync(root, { withFileTypes: true })) {
      const m = /^mlw-bench-(\d+)-/.exec(entry.name);
      if (!entry.isDirectory() || m === null || pidAlive(Number(m[1]))) continue;
      removeDir(root, join(root, entry.name));
      removed.push(`${root === CPU_ROOT ? 'cpu' : 'cpuacct'}:${entry.name}`);
    }
  }
  return removed;
}

/**
 * Creates `mlw-bench-<this pid>-<role>` in both cpu and cpuacct with a quota of `cores` CPUs per `periodUs` and
 * `cpu.shares` of `shares` (1024 is one nice-0 process or autogroup: a higher weight lets the group take its quota
 * even while other work on the machine wants the CPU).
 */
export function createCpuGroup(role: string, cores: number, periodUs: number, shares = 1024): CpuGroup {
  const quotaUs = Math.round(cores * periodUs);
  // The kernel's bounds: a period from 1 ms to 1 s, a quota of at least 1 ms.
  if (periodUs < 1000 || periodUs > 1_000_000 || quotaUs < 1000) {
    throw new Error(`cgroup ${role}: period ${periodUs} µs and quota ${quotaUs} µs are outside the kernel's bounds (period 1 ms–1 s, quota ≥ 1 ms)`);
  }
  const name = `${PREFIX}${process.pid}-${role}`;
  const cpuDir = join(CPU_ROOT, name);
  const acctDir = join(CPUACCT_ROOT, name);
  mkdirSync(cpuDir);
  mkdirSync(acctDir);
  // The quota first at -1 (none) so that a new period is always accepted, then period, then quota.
  writeFileSync(join(cpuDir, 'cpu.cfs_quota_us'), '-1');
  writeFileSync(join(cpuDir, 'cpu.cfs_period_us'), String(periodUs));
  writeFileSync(join(cpuDir, 'cpu.cfs_quota_us'), String(quotaUs));
  writeFileSync(join(cpuDir, 'cpu.shares'), String(shares));
  return {
    name,
    cores: quotaUs / periodUs,
    add(pid) {
      // cpuacct first, so that no CPU time spent under the quota goes uncounted.
      return writeProcs(acctDir, pid) && writeProcs(cpuDir, pid);
    },
    sample() {
      const stat = readStat(cpuDir);
      return {
        usageNs: Number(readFileSync(join(acctDir, 'cpuacct.usage'), 'latin1').trim()),
        nrPeriods: stat.get('nr_periods') ?? 0,
        nrThrottled: stat.get('nr_throttled') ?? 0,
        throttledNs: stat.get('throttled_time') ?? 0,
      };
    },
  };
}

export function cpuGroupUse(before: CpuGroupSample, after: CpuGroupSample, wallS: number): CpuGroupUse {
  const periods = after.nrPeriods - before.nrPeriods;
  return {
    cores: (after.usageNs - before.usageNs) / 1e9 / wallS,
    throttledPeriods: periods > 0 ? (after.nrThrottled - before.nrThrottled) / periods : 0,
    throttledPerS: (after.throttledNs - before.throttledNs) / 1e9 / wallS,
  };
}

/** Moves the group's remaining tasks back to the root groups and removes it from both hierarchies. */
export function removeCpuGroup(group: CpuGroup): void {
  removeDir(CPU_ROOT, join(CPU_ROOT, group.name));
  removeDir(CPUACCT_ROOT, join(CPUACCT_ROOT, group.name));
}
