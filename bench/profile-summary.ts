// Summaries of what bench/relay-profile.ts collects from the agent: a sampling heap profile as bytes per request by
// function, a CPU profile as shares of the main thread's busy time by function.

import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface HeapNode {
  callFrame: CallFrame;
  selfSize: number;
  children: HeapNode[];
}

interface CpuNode {
  id: number;
  callFrame: CallFrame;
}

interface CpuProfile {
  nodes: CpuNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface AllocationSummary {
  gc: { minor: number; major: number; minorMs: number; majorMs: number };
  bytesPerRequest: number;
  topFunctions: Array<{ function: string; bytesPerRequest: number }>;
}

export interface CpuProfileSummary {
  /** Percent of the profile's time the main thread was not idle. */
  busyShare: number;
  topFunctions: Array<{ function: string; share: number }>;
}

const TOP = 15;

/** "name file:line" with the file as its last two path segments (agent/http2/x.ts → http2/x.ts). */
function frameName(frame: CallFrame): string {
  const file = frame.url.split('/').slice(-2).join('/');
  return `${frame.functionName || '(anonymous)'}${file === '' ? '' : ` ${file}:${frame.lineNumber + 1}`}`;
}

function top<T>(totals: Map<string, number>, row: (name: string, value: number) => T): T[] {
  return [...totals]
    .sort((a, b) => b[1] - a[1])
    .slice(0, TOP)
    .map(([name, value]) => row(name, value));
}

export function summarizeAllocation(sampled: { gc: AllocationSummary['gc']; profile: { head: HeapNode } }, requests: number): AllocationSummary {
  const bySelf = new Map<string, number>();
  let total = 0;
  const stack: HeapNode[] = [sampled.profile.head];
  for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
    total += node.selfSize;
    if (node.selfSize > 0) bySelf.set(frameName(node.callFrame), (bySelf.get(frameName(node.callFrame)) ?? 0) + node.selfSize);
    stack.push(...node.children);
  }
  const perRequest = (bytes: number): number => Math.round(bytes / Math.max(1, requests));
  return {
    gc: sampled.gc,
    bytesPerRequest: perRequest(total),
    topFunctions: top(bySelf, (name, bytes) => ({ function: name, bytesPerRequest: perRequest(bytes) })),
  };
}

/** The one .cpuprofile node --cpu-prof wrote into `dir`. */
export function summarizeCpuProfile(dir: string): CpuProfileSummary {
  const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'));
  if (file === undefined) throw new Error(`no .cpuprofile in ${dir}: did the agent exit cleanly?`);
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
  const timeById = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    timeById.set(profile.samples[i], (timeById.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const bySelf = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const node of profile.nodes) {
    const time = timeById.get(node.id) ?? 0;
    total += time;
    if (node.callFrame.functionName === '(idle)') idle += time;
    else bySelf.set(frameName(node.callFrame), (bySelf.get(frameName(node.callFrame)) ?? 0) + time);
  }
  const busy = Math.max(1, total - idle);
  return {
    busyShare: Math.round((100 * (total - idle)) / Math.max(1, total)),
    topFunctions: top(bySelf, (name, time) => ({ function: name, share: (100 * time) / busy })),
  };
}
