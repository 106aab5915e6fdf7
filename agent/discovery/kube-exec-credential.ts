// A kubeconfig user's `exec` credential plugin (client.authentication.k8s.io ExecCredential): run it, read its token.

import { execFile } from 'node:child_process';

export interface ExecPlugin {
  apiVersion: string;
  /** As resolved: absolute when the kubeconfig named a relative path, else looked up on PATH. */
  command: string;
  args: string[];
  /** The agent's environment, the kubeconfig's `env` entries, and KUBERNETES_EXEC_INFO. */
  env: Record<string, string | undefined>;
}

export interface ExecToken {
  token: string;
  /** Epoch ms after which the token must not be used; null: until the API refuses it. */
  expiresAt: number | null;
}

export const EXEC_API_VERSIONS = ['client.authentication.k8s.io/v1', 'client.authentication.k8s.io/v1beta1'];
/** A plugin that has not answered within this time has failed (it may be waiting for a login nobody will give). */
const EXEC_TIMEOUT_MS = 30_000;

/** The environment a plugin runs with: ours, the kubeconfig's entries, and the request (never interactive). */
export function execEnvironment(apiVersion: string, base: Readonly<Record<string, string | undefined>>, extra: ReadonlyArray<{ name: string; value: string }>): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...base };
  for (const { name, value } of extra) env[name] = value;
  env.KUBERNETES_EXEC_INFO = JSON.stringify({ apiVersion, kind: 'ExecCredential', spec: { interactive: false } });
  return env;
}

/** Runs the plugin once; rejects with what it said when it fails or answers something other than a token. */
export function runExecPlugin(plugin: ExecPlugin): Promise<ExecToken> {
  return new Promise((resolve, reject) => {
    execFile(plugin.command, plugin.args, { env: plugin.env, timeout: EXEC_TIMEOUT_MS, maxBuffer: 1024 * 1024 }, (error, stdout, stderr) => {
      if (error !== null) {
        reject(new Error(`the exec credential plugin ${plugin.command} failed: ${error.message.trim()} ${String(stderr).trim().slice(0, 300)}`.trim(), { cause: error }));
        return;
      }
      try {
        resolve(parseExecCredential(plugin, String(stdout)));
      } catch (failure) {
        reject(failure);
      }
    });
  });
}

function parseExecCredential(plugin: ExecPlugin, stdout: string): ExecToken {
  const what = `the exec credential plugin ${plugin.command}`;
  let answer: { apiVersion?: unknown; kind?: unknown; status?: { token?: unknown; expirationTimestamp?: unknown; clientCertificateData?: unknown } };
  try {
    answer = JSON.parse(stdout) as typeof answer;
  } catch {
    throw new Error(`${what} did not print an ExecCredential (not JSON)`);
  }
  if (answer.kind !== 'ExecCredential' || answer.apiVersion !== plugin.apiVersion) {
    throw new Error(`${what} printed ${String(answer.kind)} ${String(answer.apiVersion)}, not an ExecCredential of ${plugin.apiVersion}`);
  }
  const status = answer.status;
  if (typeof status?.token !== 'string' || status.token === '') {
    const certificate = status?.clientCertificateData !== undefined ? ' (a client certificate from a plugin is not supported by meshlite)' : '';
    throw new Error(`${what} returned no token${certificate}`);
  }
  let expiresAt: number | null = null;
  if (typeof status.expirationTimestamp === 'string') {
    expiresAt = Date.parse(status.expirationTimestamp);
    if (Number.isNaN(expiresAt)) throw new Error(`${what} returned an expirationTimestamp that is not a time: ${status.expirationTimestamp}`);
  }
  return { token: status.token, expiresAt };
}
