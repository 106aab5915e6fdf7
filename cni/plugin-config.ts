// The meshlite keys of the plugin's network configuration (agentSocket, timeoutMs, failPolicy, logFile) and their defaults.

import { CniError, CniErrorCode } from './cni-errors.ts';

export type FailPolicy = 'open' | 'closed';

export interface PluginSettings {
  /** The agent's unix socket on the host. */
  agentSocket: string;
  /** Bound on one exchange with the agent (connect, request, the agent enrolling the pod, reply). */
  timeoutMs: number;
  /**
   * What ADD, CHECK and STATUS do when the agent cannot be asked: 'open' succeeds (the agent's pod watch enrolls the
   * pod later), 'closed' fails so the runtime retries the sandbox. DEL never fails because of the agent.
   */
  failPolicy: FailPolicy;
  /** Where the plugin appends its log lines; stderr when absent (stdout is the result channel). */
  logFile: string | null;
}

export const DEFAULT_SETTINGS: PluginSettings = {
  agentSocket: '/run/meshlite/cni.sock',
  timeoutMs: 5000,
  failPolicy: 'open',
  logFile: null,
};

/** Large enough for any sane setting, small enough that a typo (ms for s) cannot hang a sandbox for hours. */
const MAX_TIMEOUT_MS = 120_000;

function invalid(key: string, value: unknown, expected: string): CniError {
  return new CniError(
    CniErrorCode.INVALID_CONFIG,
    `invalid meshlite setting "${key}": expected ${expected}`,
    `got ${JSON.stringify(value)}`,
  );
}

/**
 * Reads the meshlite keys from the plugin's configuration object; keys it does not know are left alone (the runtime
 * adds its own, and the installer keeps a "convertedFrom" note there). A present key with a bad value is an error
 * (code 7) rather than a silent default: a wrong failPolicy would otherwise change behaviour unnoticed.
 */
export function pluginSettingsOf(config: Record<string, unknown>): PluginSettings {
  const settings = { ...DEFAULT_SETTINGS };
  const { agentSocket, timeoutMs, failPolicy, logFile } = config;
  if (agentSocket !== undefined) {
    if (typeof agentSocket !== 'string' || agentSocket === '') throw invalid('agentSocket', agentSocket, 'a non-empty path');
    settings.agentSocket = agentSocket;
  }
  if (timeoutMs !== undefined) {
    if (typeof timeoutMs !== 'number' || !Number.isInteger(timeoutMs) || timeoutMs <= 0 || timeoutMs > MAX_TIMEOUT_MS) {
      throw invalid('timeoutMs', timeoutMs, `an integer from 1 to ${MAX_TIMEOUT_MS}`);
    }
    settings.timeoutMs = timeoutMs;
  }
  if (failPolicy !== undefined) {
    if (failPolicy !== 'open' && failPolicy !== 'closed') throw invalid('failPolicy', failPolicy, '"open" or "closed"');
    settings.failPolicy = failPolicy;
  }
  if (logFile !== undefined && logFile !== null) {
    if (typeof logFile !== 'string' || logFile === '') throw invalid('logFile', logFile, 'a non-empty path');
    settings.logFile = logFile;
  }
  return settings;
}
