// One plugin invocation as the CNI specification defines it: CNI_* environment plus the configuration on stdin, checked.

import { type PodIdentity, parseCniArgs, podIdentityOf } from './cni-args.ts';
import { CniError, CniErrorCode } from './cni-errors.ts';
import { type CniVersion, isAtLeast, isSupportedVersion, LATEST_VERSION, SUPPORTED_VERSIONS } from './cni-version.ts';
import { type PluginSettings, pluginSettingsOf } from './plugin-config.ts';
import { ipsOf, type PrevResult, prevResultOf } from './prev-result.ts';

export type CniEnvironment = Readonly<Record<string, string | undefined>>;

/** The attachment the runtime names: the specification's key is (network name, container id, interface name). */
export interface Attachment {
  containerId: string;
  ifName: string;
  /** Empty on DEL when the runtime no longer has the namespace (allowed by the specification). */
  netns: string;
}

interface Configured {
  cniVersion: CniVersion;
  /** The network's name from the configuration (the conflist's name). */
  network: string;
  settings: PluginSettings;
}

interface AttachedFields extends Configured {
  attachment: Attachment;
  pod: PodIdentity;
  prevResult: PrevResult;
  /** Every address of prevResult.ips, without prefix length. */
  ips: string[];
}

export type VersionRequest = { command: 'VERSION'; cniVersion: CniVersion };
export type AddRequest = AttachedFields & { command: 'ADD' };
export type CheckRequest = AttachedFields & { command: 'CHECK' };
export type DelRequest = Configured & { command: 'DEL'; attachment: Attachment; pod: PodIdentity | null };
export type StatusRequest = Configured & { command: 'STATUS' };
export type GcRequest = Configured & { command: 'GC' };

export type CniRequest = VersionRequest | AddRequest | CheckRequest | DelRequest | StatusRequest | GcRequest;

export type CniCommand = CniRequest['command'];

const COMMANDS: readonly string[] = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'];

/** Commands later than 0.4.0 are refused for configurations that declare an older version, as the specification asks. */
const FIRST_VERSION: Partial<Record<CniCommand, CniVersion>> = { STATUS: '1.1.0', GC: '1.1.0' };

/** The specification's rule for container ids: an alphanumeric first character, then alphanumerics, '_', '.' or '-'. */
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function required(env: CniEnvironment, name: string): string {
  const value = env[name];
  if (value === undefined || value === '') {
    throw new CniError(CniErrorCode.INVALID_ENVIRONMENT, `missing environment variable ${name}`, `${name} is required for ${env.CNI_COMMAND}`);
  }
  return value;
}

function containerIdOf(env: CniEnvironment): string {
  const id = required(env, 'CNI_CONTAINERID');
  if (!CONTAINER_ID.test(id)) {
    throw new CniError(
      CniErrorCode.INVALID_ENVIRONMENT,
      'invalid environment variable CNI_CONTAINERID',
      `${JSON.stringify(id)} must start with a letter or digit, followed by letters, digits, '_', '.' or '-'`,
    );
  }
  return id;
}

/** Linux interface names: not empty, not '.' or '..', under 16 bytes, no '/', ':' or whitespace. */
function ifNameOf(env: CniEnvironment): string {
  const name = required(env, 'CNI_IFNAME');
  if (name === '.' || name === '..' || Buffer.byteLength(name) > 15 || /[/:\s]/.test(name)) {
    throw new CniError(CniErrorCode.INVALID_ENVIRONMENT, 'invalid environment variable CNI_IFNAME', `${JSON.stringify(name)} is not a valid interface name`);
  }
  return name;
}

function decode(stdin: string): unknown {
  try {
    return JSON.parse(stdin);
  } catch (err) {
    const why = stdin.trim() === '' ? 'stdin is empty' : (err as Error).message;
    throw new CniError(CniErrorCode.DECODE_FAILED, 'failed to decode the network configuration on stdin', why);
  }
}

/** VERSION may come with `{"cniVersion": ...}` on stdin (1.0.0 and later) or with nothing; either way it is answered. */
function versionRequest(stdin: string): CniRequest {
  let requested: unknown;
  try {
    requested = stdin.trim() === '' ? undefined : (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
  } catch {
    requested = undefined;
  }
  return { command: 'VERSION', cniVersion: isSupportedVersion(requested) ? requested : LATEST_VERSION };
}

function configured(config: Record<string, unknown>, command: CniCommand): Configured {
  const { cniVersion, name } = config;
  if (!isSupportedVersion(cniVersion)) {
    throw new CniError(
      CniErrorCode.INCOMPATIBLE_VERSION,
      'incompatible CNI version',
      `the configuration's cniVersion is ${cniVersion === undefined ? 'missing' : JSON.stringify(cniVersion)}; meshlite supports ${SUPPORTED_VERSIONS.join(', ')}`,
    );
  }
  const first = FIRST_VERSION[command];
  if (first !== undefined && !isAtLeast(cniVersion, first)) {
    throw new CniError(CniErrorCode.INCOMPATIBLE_VERSION, `${command} needs cniVersion ${first} or later`, `the configuration's cniVersion is ${cniVersion}`);
  }
  if (typeof name !== 'string' || name === '') {
    throw new CniError(CniErrorCode.INVALID_CONFIG, 'invalid network configuration: missing "name"', 'the network name is required');
  }
  return { cniVersion, network: name, settings: pluginSettingsOf(config) };
}

function podOf(env: CniEnvironment, args: Map<string, string>): PodIdentity {
  const pod = podIdentityOf(args);
  if (pod === null) {
    throw new CniError(
      CniErrorCode.INVALID_ENVIRONMENT,
      'CNI_ARGS must name the pod (K8S_POD_NAMESPACE and K8S_POD_NAME)',
      `CNI_ARGS is ${JSON.stringify(env.CNI_ARGS ?? '')}; meshlite enrolls Kubernetes pods and needs their identity`,
    );
  }
  return pod;
}

/**
 * Checks one invocation and returns what the plugin must do, or throws a CniError with the code the runtime must see.
 * The version error code (1) wins over configuration errors (7) so that a runtime learns first that it speaks a version
 * the plugin does not; bad input from the runtime is never fail-open.
 */
export function parseRequest(env: CniEnvironment, stdin: string): CniRequest {
  const command = env.CNI_COMMAND;
  if (command === undefined || command === '') {
    throw new CniError(CniErrorCode.INVALID_ENVIRONMENT, 'missing environment variable CNI_COMMAND', `expected one of ${COMMANDS.join(', ')}`);
  }
  if (!COMMANDS.includes(command)) {
    throw new CniError(CniErrorCode.INVALID_ENVIRONMENT, `unknown CNI_COMMAND ${JSON.stringify(command)}`, `expected one of ${COMMANDS.join(', ')}`);
  }
  if (command === 'VERSION') return versionRequest(stdin);

  const config = decode(stdin);
  if (!isObject(config)) {
    throw new CniError(CniErrorCode.INVALID_CONFIG, 'invalid network configuration: expected a JSON object', `got ${JSON.stringify(config)}`);
  }
  const base = configured(config, command as CniCommand);
  if (command === 'STATUS') return { ...base, command };
  if (command === 'GC') return { ...base, command };

  const containerId = containerIdOf(env);
  const ifName = ifNameOf(env);
  const args = parseCniArgs(env.CNI_ARGS);
  if (command === 'DEL') {
    // DEL must succeed with whatever the runtime still has: no namespace, no prevResult, even no pod identity.
    return { ...base, command, attachment: { containerId, ifName, netns: env.CNI_NETNS ?? '' }, pod: podIdentityOf(args) };
  }

  const netns = required(env, 'CNI_NETNS');
  const pod = podOf(env, args);
  const prevResult = prevResultOf(config);
  if (prevResult === null) {
    throw new CniError(
      CniErrorCode.INVALID_CONFIG,
      `meshlite is a chained plugin: ${command} needs prevResult`,
      'list meshlite after the primary network plugin in a .conflist, so that the runtime passes that plugin\'s result on',
    );
  }
  const fields: AttachedFields = { ...base, attachment: { containerId, ifName, netns }, pod, prevResult, ips: ipsOf(prevResult) };
  return command === 'ADD' ? { ...fields, command } : { ...fields, command: 'CHECK' };
}
