// The unique name prefix of one e2e run, `ml-e2e-<pid>-<rand>`, and how to tell whether a prefix's run is alive.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** Every namespace and temp dir of every e2e run starts with this; other suites use ml-ic-, ml-cni-, ml-enr-. */
export const E2E_PREFIX = 'ml-e2e-';

const RUN_ID = /^ml-e2e-(\d+)-([0-9a-f]{6})(?:$|[-.])/;

export interface RunId {
  /** `ml-e2e-<pid>-<rand>`: namespaces are `<prefix>-<role>`, the temp dir is `<tmp>/<prefix>`. */
  prefix: string;
  pid: number;
}

export function newRunId(pid = process.pid): RunId {
  return { prefix: `${E2E_PREFIX}${pid}-${randomBytes(3).toString('hex')}`, pid };
}

/** The run a name belongs to, or undefined for anything that is not an e2e run's (another suite's, say). */
export function parseRunId(name: string): RunId | undefined {
  const match = RUN_ID.exec(name);
  if (match === null) return undefined;
  return { prefix: `${E2E_PREFIX}${match[1]}-${match[2]}`, pid: Number(match[1]) };
}

/** The kernel's start time of a process (clock ticks since boot), which tells a reused PID from the original. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/**
 * Whether the process that created a run still exists. When the run recorded its creator's start time, a PID that
 * was reused by another process counts as gone; without the record, any live PID counts as the creator (so a
 * sweep errs on the side of leaving things alone).
 */
export function runIsAlive(id: RunId, recordedStartTime: string | undefined): boolean {
  const startTime = processStartTime(id.pid);
  if (startTime === undefined) return false;
  return recordedStartTime === undefined || recordedStartTime === startTime;
}
