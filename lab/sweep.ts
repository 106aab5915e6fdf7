// Removes what killed e2e runs left behind: their namespaces (with the bridges and veths inside), processes, temp dirs.

import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deleteNamespace, listNamespaces, namespacePids } from './netns.ts';
import { type RunId, parseRunId, runIsAlive } from './run-id.ts';

/** The file in a run's temp dir that records its creator's start time (see runIsAlive). */
export const OWNER_FILE = 'owner-start-time';

export function runTempDir(prefix: string): string {
  return join(tmpdir(), prefix);
}

export interface SweepReport {
  namespaces: string[];
  processes: number[];
  tempDirs: string[];
}

function recordedStartTime(prefix: string): string | undefined {
  try {
    return readFileSync(join(runTempDir(prefix), OWNER_FILE), 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * Sweeps every `ml-e2e-` run whose creating process is gone. Runs of live processes (this one, a parallel test
 * file) and names of other suites are never touched. Every interface a run made lives in one of its namespaces,
 * so deleting the namespaces after ending the processes inside them frees the bridges and veths too.
 */
export async function sweepDeadRuns(): Promise<SweepReport> {
  const report: SweepReport = { namespaces: [], processes: [], tempDirs: [] };
  const dead = new Map<string, RunId>();
  const isDead = (name: string): RunId | undefined => {
    const id = parseRunId(name);
    if (id === undefined) return undefined;
    if (!dead.has(id.prefix) && runIsAlive(id, recordedStartTime(id.prefix))) return undefined;
    dead.set(id.prefix, id);
    return id;
  };
  const namespaces = listNamespaces().filter((name) => isDead(name) !== undefined);
  // Processes first: a namespace with a process inside survives the deletion of its name.
  for (const name of namespaces) {
    for (const pid of await namespacePids(name)) {
      try {
        process.kill(pid, 'SIGKILL');
        report.processes.push(pid);
      } catch {
        // already gone
      }
    }
  }
  for (const name of namespaces) {
    await deleteNamespace(name);
    report.namespaces.push(name);
  }
  for (const entry of readdirSync(tmpdir())) {
    if (isDead(entry) === undefined) continue;
    rmSync(join(tmpdir(), entry), { recursive: true, force: true });
    report.tempDirs.push(entry);
  }
  return report;
}
