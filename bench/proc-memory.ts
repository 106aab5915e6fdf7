// Resident memory of a process from /proc/PID/status (VmRSS, VmHWM), and waiting for it to settle.

import { readFileSync } from 'node:fs';

export interface MemoryReading {
  rssBytes: number;
  /** The peak resident size so far. */
  hwmBytes: number;
}

/** VmRSS and VmHWM of `pid`; throws when the process is gone. */
export function readMemory(pid: number): MemoryReading {
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  const kib = (field: string): number => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
    if (match === null) throw new Error(`/proc/${pid}/status has no ${field}`);
    return Number(match[1]) * 1024;
  };
  return { rssBytes: kib('VmRSS'), hwmBytes: kib('VmHWM') };
}

export interface SettleOptions {
  intervalMs: number;
  /** Readings that must stay within `tolerance` of each other to call the size settled. */
  window: number;
  /** Relative spread allowed over the window, e.g. 0.02. */
  tolerance: number;
  maxMs: number;
}

export interface Settled {
  rssBytes: number;
  hwmBytes: number;
  /** False when `maxMs` passed first; `rssBytes` is then the last reading. */
  stable: boolean;
  elapsedMs: number;
  readings: number[];
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls VmRSS until the last `window` readings agree within `tolerance` (garbage collected, caches filled), or `maxMs`. */
export async function settledMemory(pid: number, o: SettleOptions): Promise<Settled> {
  const started = performance.now();
  const readings: number[] = [];
  for (;;) {
    const reading = readMemory(pid);
    readings.push(reading.rssBytes);
    const last = readings.slice(-o.window);
    const elapsedMs = performance.now() - started;
    const stable = last.length === o.window && (Math.max(...last) - Math.min(...last)) / Math.max(...last) <= o.tolerance;
    if (stable || elapsedMs >= o.maxMs) return { ...reading, stable, elapsedMs, readings };
    await sleep(o.intervalMs);
  }
}
