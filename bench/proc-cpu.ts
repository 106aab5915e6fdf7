// CPU time of process trees from /proc/PID/stat (utime + stime, in clock ticks), and their scheduler autogroups.

import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

/** Clock ticks per second that /proc/PID/stat counts in (`getconf CLK_TCK`). */
export function clockTicksPerSecond(): number {
  const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  if (!Number.isInteger(ticks) || ticks <= 0) throw new Error(`getconf CLK_TCK gave ${ticks}`);
  return ticks;
}

interface StatFields {
  ppid: number;
  ticks: number;
}

/** utime + stime and the parent of one process; null when it is gone. */
function readStat(pid: number): StatFields | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  // The command name (field 2) may contain spaces and parentheses: fields after it start after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); ppid is field 4, utime field 14, stime field 15.
  return { ppid: Number(rest[1]), ticks: Number(rest[11]) + Number(rest[12]) };
}

/** `root` and every process descended from it, found by scanning /proc. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    const stat = readStat(pid);
    if (stat === null) continue;
    const list = children.get(stat.ppid);
    if (list === undefined) children.set(stat.ppid, [pid]);
    else list.push(pid);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    out.push(pid);
    for (const child of children.get(pid) ?? []) queue.push(child);
  }
  return out;
}

/** One CPU reading of a set of processes. */
export interface CpuSample {
  pids: number[];
  ticks: number;
}

/** Sums utime + stime over `pids`; a PID that is gone counts 0 and is left out of `pids`. */
export function sampleCpu(pids: readonly number[]): CpuSample {
  let ticks = 0;
  const seen: number[] = [];
  for (const pid of pids) {
    const stat = readStat(pid);
    if (stat === null) continue;
    ticks += stat.ticks;
    seen.push(pid);
  }
  return { pids: seen, ticks };
}

/** CPU seconds spent between two samples of the same processes; null when the set changed (a process came or went). */
export function cpuSecondsBetween(before: CpuSample, after: CpuSample, ticksPerSecond: number): number | null {
  if (before.pids.length !== after.pids.length || before.pids.some((pid, i) => after.pids[i] !== pid)) return null;
  return (after.ticks - before.ticks) / ticksPerSecond;
}

/** The scheduler autogroup of a process (e.g. "/autogroup-42"), or null when unavailable. */
export function autogroupOf(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/autogroup`, 'latin1').split(' ')[0] ?? null;
  } catch {
    return null;
  }
}

/** Whether the kernel groups scheduling by session (kernel.sched_autogroup_enabled). */
export function autogroupsEnabled(): boolean {
  try {
    return readFileSync('/proc/sys/kernel/sched_autogroup_enabled', 'latin1').trim() === '1';
  } catch {
    return false;
  }
}

/** Machine-wide CPU ticks from /proc/stat: all, idle (idle + iowait) and steal. */
export interface SystemSample {
  total: number;
  idle: number;
  steal: number;
}

export function sampleSystem(): SystemSample {
  const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0];
  // cpu user nice system idle iowait irq softirq steal guest guest_nice (guest time is already in user).
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
  return { total: f.reduce((a, b) => a + b, 0), idle: f[3] + f[4], steal: f[7] };
}

/** Share of the machine's CPU left idle between two samples (0..1); shows when something else competed or starved. */
export function idleShare(before: SystemSample, after: SystemSample): number | null {
  const total = after.total - before.total;
  return total <= 0 ? null : (after.idle - before.idle) / total;
}

/**
 * Waits until the machine is mostly idle (other work on it would distort the next run), checking every `stepMs`;
 * gives up after `maxWaitMs`. Returns the idle share last seen.
 */
export async function waitForQuiet(minIdle: number, maxWaitMs: number, stepMs = 500): Promise<number> {
  const deadline = Date.now() + maxWaitMs;
  for (;;) {
    const before = sampleSystem();
    await new Promise((r) => setTimeout(r, stepMs));
    const idle = idleShare(before, sampleSystem()) ?? 1;
    if (idle >= minIdle || Date.now() >= deadline) return idle;
  }
}
