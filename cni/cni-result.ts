// What the plugin prints on stdout and the exit status: the passed-on result, the VERSION answer, or the error JSON.

import type { CniError } from './cni-errors.ts';
import { type CniVersion, LATEST_VERSION, SUPPORTED_VERSIONS } from './cni-version.ts';
import type { PrevResult } from './prev-result.ts';

/** Everything main.ts does with an invocation's outcome: stdout is the result channel and nothing else goes there. */
export interface PluginOutcome {
  exitCode: number;
  /** Exactly what goes to stdout: one JSON document and a newline, or nothing (DEL, CHECK, STATUS, GC). */
  stdout: string;
}

export const EMPTY_SUCCESS: PluginOutcome = { exitCode: 0, stdout: '' };

function json(value: unknown): string {
  return `${JSON.stringify(value)}\n`;
}

export function versionOutcome(cniVersion: CniVersion): PluginOutcome {
  return { exitCode: 0, stdout: json({ cniVersion, supportedVersions: [...SUPPORTED_VERSIONS] }) };
}

/**
 * ADD's result: prevResult as the runtime gave it, key for key, with cniVersion set to the request's (a chained plugin
 * that changes nothing must return what it received, in the version it was asked for).
 */
export function passThroughOutcome(prevResult: PrevResult, cniVersion: CniVersion): PluginOutcome {
  const result = 'cniVersion' in prevResult ? { ...prevResult, cniVersion } : { cniVersion, ...prevResult };
  return { exitCode: 0, stdout: json(result) };
}

export function errorOutcome(error: CniError, cniVersion: string): PluginOutcome {
  return { exitCode: 1, stdout: json({ cniVersion, code: error.code, msg: error.message, details: error.details }) };
}

/**
 * The version an error is reported in: the one the runtime asked for when stdin says (even one meshlite does not
 * support, so that the runtime can read why), else the latest.
 */
export function errorVersionOf(stdin: string): string {
  try {
    const { cniVersion } = JSON.parse(stdin) as { cniVersion?: unknown };
    return typeof cniVersion === 'string' && cniVersion !== '' ? cniVersion : LATEST_VERSION;
  } catch {
    return LATEST_VERSION;
  }
}
