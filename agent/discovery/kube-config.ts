// Where the Kubernetes API is and how to authenticate to it: the in-cluster service account, or a kubeconfig file's current context.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, resolve } from 'node:path';
import { MeshliteError } from '../vocabulary/errors.ts';
import { EXEC_API_VERSIONS, type ExecPlugin, execEnvironment } from './kube-exec-credential.ts';

/** The kubelet mounts a pod's service account here (token, ca.crt, namespace). */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** How requests prove who the agent is: nothing, a fixed bearer token, one re-read from a file (bound tokens rotate),
 *  or one an exec credential plugin prints (run again when it expires or the API refuses it). */
export type KubeCredential =
  | { kind: 'none' }
  | { kind: 'token'; token: string }
  | { kind: 'token-file'; path: string; fallback: string }
  | { kind: 'exec'; plugin: ExecPlugin };

export interface KubeClientConfig {
  /** The API server's base URL, e.g. https://10.96.0.1:443 (a path prefix, if any, is kept). */
  server: string;
  /** PEM; undefined: the system's roots. */
  ca: string | Buffer | undefined;
  /** false only with `insecure-skip-tls-verify: true`. */
  verifyServer: boolean;
  /** The name checked against the server's certificate, when it differs from the server's host (`tls-server-name`). */
  serverName: string | undefined;
  clientCertificate: { cert: string | Buffer; key: string | Buffer } | null;
  credential: KubeCredential;
  /** The service account's namespace, or the context's; '' when neither says. */
  namespace: string;
}

/** The kubeconfig could not be loaded: the agent does not start. */
export class KubeConfigError extends MeshliteError {
  constructor(message: string, options?: ErrorOptions) {
    super('ML_KUBE_CONFIG_INVALID', message, options);
    this.name = 'KubeConfigError';
  }
}

/** What the configuration reads besides the file: the environment (the kubelet's variables in a pod; an exec
 *  plugin's base environment) and the mounted service account. */
export interface InClusterSource {
  env: Readonly<Record<string, string | undefined>>;
  serviceAccountDir: string;
}

/** In-cluster (null) or from a kubeconfig file; throws KubeConfigError with the reason. */
export function loadKubeConfig(path: string | null, inCluster: InClusterSource = { env: process.env, serviceAccountDir: SERVICE_ACCOUNT_DIR }): KubeClientConfig {
  if (path === null) return loadInCluster(inCluster);
  try {
    return loadKubeconfigFile(path, inCluster.env);
  } catch (error) {
    throw new KubeConfigError(`cannot load the Kubernetes client configuration from ${path}: ${(error as Error).message}`, { cause: error });
  }
}

function loadInCluster({ env, serviceAccountDir }: InClusterSource): KubeClientConfig {
  const host = env.KUBERNETES_SERVICE_HOST ?? '';
  const port = env.KUBERNETES_SERVICE_PORT ?? '';
  if (host === '' || port === '') {
    throw new KubeConfigError('not running in a cluster (KUBERNETES_SERVICE_HOST is unset): pass --kubeconfig PATH');
  }
  const tokenPath = `${serviceAccountDir}/token`;
  const read = (file: string): string => {
    try {
      return readFileSync(`${serviceAccountDir}/${file}`, 'utf8');
    } catch (error) {
      throw new KubeConfigError(`cannot load the Kubernetes client configuration from the in-cluster service account: ${(error as Error).message}`, { cause: error });
    }
  };
  const token = read('token').trim();
  const ca = read('ca.crt');
  let namespace = '';
  try {
    namespace = readFileSync(`${serviceAccountDir}/namespace`, 'utf8').trim();
  } catch {
    // Optional: the agent itself never needs its namespace.
  }
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    ca,
    verifyServer: true,
    serverName: undefined,
    clientCertificate: null,
    credential: { kind: 'token-file', path: tokenPath, fallback: token },
    namespace,
  };
}

type Json = Record<string, unknown>;

function object(value: unknown, what: string): Json {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error(`${what} is not a mapping`);
  return value as Json;
}

function optionalString(from: Json, key: string, what: string): string | undefined {
  const value = from[key];
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new Error(`${what}.${key} is not a string`);
  return value;
}

/** The entry called `name` in a list of named entries (clusters, users, contexts), or an error naming what is missing. */
function named(config: Json, list: string, field: string, name: string): Json {
  const entries = config[list];
  if (!Array.isArray(entries)) throw new Error(`it has no ${list}`);
  const entry = entries.find((e) => (e as Json | null)?.name === name) as Json | undefined;
  if (entry === undefined) throw new Error(`no ${field} named "${name}" in ${list}`);
  return object(entry[field] ?? {}, `${list} "${name}"`);
}

/** The user and cluster of the current context. Fields meshlite does not implement are refused by name rather than ignored. */
function loadKubeconfigFile(path: string, environment: Readonly<Record<string, string | undefined>>): KubeClientConfig {
  const base = dirname(resolve(path));
  const file = (p: string): string => (isAbsolute(p) ? p : resolve(base, p));
  // The YAML parser (about 13 MiB resident) is loaded only for a kubeconfig file: the in-cluster agent never needs it.
  const { parse } = createRequire(import.meta.url)('yaml') as typeof import('yaml');
  const config = object(parse(readFileSync(path, 'utf8')), 'the file');
  const current = optionalString(config, 'current-context', 'the file');
  if (current === undefined) throw new Error('it sets no current-context');
  const context = named(config, 'contexts', 'context', current);
  const clusterName = optionalString(context, 'cluster', `context "${current}"`);
  if (clusterName === undefined) throw new Error(`context "${current}" names no cluster`);
  const cluster = named(config, 'clusters', 'cluster', clusterName);
  const userName = optionalString(context, 'user', `context "${current}"`);
  const user = userName === undefined ? {} : named(config, 'users', 'user', userName);
  const what = `cluster "${clusterName}"`;

  const server = optionalString(cluster, 'server', what);
  if (server === undefined) throw new Error(`${what} has no server`);
  const url = new URL(server);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`${what}: server ${server} is neither https nor http`);
  if (optionalString(cluster, 'proxy-url', what) !== undefined) throw new Error(`${what}: proxy-url is not supported by meshlite`);
  const caData = optionalString(cluster, 'certificate-authority-data', what);
  const caFile = optionalString(cluster, 'certificate-authority', what);
  const ca = caData !== undefined ? Buffer.from(caData, 'base64') : caFile !== undefined ? readFileSync(file(caFile)) : undefined;

  const userWhat = `user "${userName ?? ''}"`;
  for (const unsupported of ['auth-provider', 'username', 'password', 'as', 'as-groups', 'as-uid']) {
    if (user[unsupported] !== undefined && user[unsupported] !== null) {
      throw new Error(`${userWhat}: ${unsupported} is not supported by meshlite (use a token, a tokenFile, an exec plugin or a client certificate)`);
    }
  }
  const pem = (dataKey: string, fileKey: string): string | Buffer | undefined => {
    const data = optionalString(user, dataKey, userWhat);
    if (data !== undefined) return Buffer.from(data, 'base64');
    const from = optionalString(user, fileKey, userWhat);
    return from === undefined ? undefined : readFileSync(file(from));
  };
  const cert = pem('client-certificate-data', 'client-certificate');
  const key = pem('client-key-data', 'client-key');
  if ((cert === undefined) !== (key === undefined)) throw new Error(`${userWhat}: a client certificate needs both the certificate and its key`);

  const token = optionalString(user, 'token', userWhat);
  const tokenFile = optionalString(user, 'tokenFile', userWhat);
  let credential: KubeCredential = { kind: 'none' };
  // A tokenFile is read again as it rotates and wins over a token, as kubectl does.
  if (user.exec !== undefined && user.exec !== null) credential = { kind: 'exec', plugin: execPlugin(object(user.exec, `${userWhat}.exec`), userWhat, file, environment) };
  else if (tokenFile !== undefined) credential = { kind: 'token-file', path: file(tokenFile), fallback: readFileSync(file(tokenFile), 'utf8').trim() };
  else if (token !== undefined) credential = { kind: 'token', token };

  const skip = cluster['insecure-skip-tls-verify'];
  if (skip !== undefined && typeof skip !== 'boolean') throw new Error(`${what}.insecure-skip-tls-verify is not a boolean`);
  return {
    server: server.replace(/\/+$/, ''),
    ca,
    verifyServer: skip !== true,
    serverName: optionalString(cluster, 'tls-server-name', what),
    clientCertificate: cert !== undefined && key !== undefined ? { cert, key } : null,
    credential,
    namespace: optionalString(context, 'namespace', `context "${current}"`) ?? '',
  };
}

/** A user's `exec` section: the command (relative to the kubeconfig when it names a path), args, env, apiVersion. */
function execPlugin(exec: Json, userWhat: string, file: (p: string) => string, environment: Readonly<Record<string, string | undefined>>): ExecPlugin {
  const what = `${userWhat}.exec`;
  const apiVersion = optionalString(exec, 'apiVersion', what) ?? '';
  if (!EXEC_API_VERSIONS.includes(apiVersion)) throw new Error(`${what}: apiVersion "${apiVersion}" is not one of ${EXEC_API_VERSIONS.join(', ')}`);
  const command = optionalString(exec, 'command', what);
  if (command === undefined) throw new Error(`${what} has no command`);
  if (exec.interactiveMode === 'Always') throw new Error(`${what}: interactiveMode Always needs a terminal, which the agent never has`);
  const args = exec.args ?? [];
  if (!Array.isArray(args) || !args.every((arg) => typeof arg === 'string')) throw new Error(`${what}.args is not a list of strings`);
  const env = exec.env ?? [];
  if (!Array.isArray(env) || !env.every((entry) => typeof entry?.name === 'string' && typeof entry?.value === 'string')) {
    throw new Error(`${what}.env is not a list of {name, value}`);
  }
  return {
    apiVersion,
    command: command.includes('/') ? file(command) : command,
    args: args as string[],
    env: execEnvironment(apiVersion, environment, env as Array<{ name: string; value: string }>),
  };
}
