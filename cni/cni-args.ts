// CNI_ARGS ("IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=name;...") parsed into key/value pairs.

import { CniError, CniErrorCode } from './cni-errors.ts';

/** The pod a Kubernetes runtime (kubelet through containerd or CRI-O) names in CNI_ARGS. */
export interface PodIdentity {
  namespace: string;
  name: string;
}

/**
 * The specification describes CNI_ARGS as key=value pairs separated by semicolons. Values may hold '=' (only the
 * first one splits), empty segments (a trailing ';') are skipped, and a segment without '=' is malformed input.
 */
export function parseCniArgs(raw: string | undefined): Map<string, string> {
  const pairs = new Map<string, string>();
  if (raw === undefined || raw === '') return pairs;
  for (const segment of raw.split(';')) {
    if (segment === '') continue;
    const equals = segment.indexOf('=');
    if (equals <= 0) {
      throw new CniError(
        CniErrorCode.INVALID_ENVIRONMENT,
        'invalid CNI_ARGS: every pair must be KEY=VALUE',
        `malformed pair ${JSON.stringify(segment)} in CNI_ARGS ${JSON.stringify(raw)}`,
      );
    }
    pairs.set(segment.slice(0, equals), segment.slice(equals + 1));
  }
  return pairs;
}

/** The pod's namespace and name, or null when CNI_ARGS lacks either (a runtime that is not Kubernetes, or a bug). */
export function podIdentityOf(args: Map<string, string>): PodIdentity | null {
  const namespace = args.get('K8S_POD_NAMESPACE');
  const name = args.get('K8S_POD_NAME');
  if (namespace === undefined || namespace === '' || name === undefined || name === '') return null;
  return { namespace, name };
}
