// Preflight: the Kubernetes API answers, and the agent's identity may read what discovery watches (SelfSubjectAccessReview).

import type { KubeApi } from '../discovery/kube-api.ts';
import { type CheckLine, fail, firstLine, ok } from './check-result.ts';

/** The API as the agent would reach it: where (for the report) and the client; `connect` throws on a bad kubeconfig. */
export interface KubeAccess {
  readonly server: string;
  readonly api: Pick<KubeApi, 'get' | 'post'>;
}

export interface KubeCheckOptions {
  /** Loads the agent's client configuration (in-cluster, or --kubeconfig); throws when it cannot. */
  readonly connect: () => Promise<KubeAccess>;
  /** Bounds each request: an API server that does not answer is a problem, not a hang. */
  readonly timeoutMs: number;
}

export interface RequiredAccess {
  readonly group: string;
  readonly resource: string;
  readonly verbs: readonly string[];
}

/** What discovery and enrollment read, cluster-wide: exactly the ClusterRole of manifests/rbac.yaml. */
export const REQUIRED_ACCESS: readonly RequiredAccess[] = [
  { group: '', resource: 'services', verbs: ['get', 'list', 'watch'] },
  { group: '', resource: 'pods', verbs: ['get', 'list', 'watch'] },
  { group: '', resource: 'namespaces', verbs: ['get', 'list', 'watch'] },
  { group: 'discovery.k8s.io', resource: 'endpointslices', verbs: ['get', 'list', 'watch'] },
];

export const SELF_SUBJECT_ACCESS_REVIEWS = '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews';

const APPLY_RBAC =
  "apply manifests/rbac.yaml (ClusterRole meshlite: get, list, watch on services, pods, namespaces and discovery.k8s.io endpointslices) and check that its ClusterRoleBinding names the agent's ServiceAccount";

/** One line for the API itself, then one per resource (its verbs, or the ones missing); nothing more when unreachable. */
export async function checkKubernetes(options: KubeCheckOptions): Promise<CheckLine[]> {
  let access: KubeAccess;
  try {
    access = await options.connect();
  } catch (error) {
    return [fail('Kubernetes client configuration', firstLine(error), 'run the check in the agent\'s pod (its in-cluster service account), or pass --kubeconfig PATH')];
  }
  const what = `Kubernetes API ${access.server}`;
  const signal = (): AbortSignal => AbortSignal.timeout(options.timeoutMs);
  try {
    const version = (await access.api.get('/version', signal())) as { gitVersion?: unknown } | null;
    const gitVersion = typeof version?.gitVersion === 'string' ? version.gitVersion : 'version unknown';
    const lines: CheckLine[] = [ok(`${what}: reachable, ${gitVersion}`)];
    for (const required of REQUIRED_ACCESS) lines.push(await checkAccess(access, required, signal));
    return lines;
  } catch (error) {
    // A KubeApiError (an HTTP status from the server) carries statusCode; checked by shape, so that this file does not load the client.
    const answered = typeof (error as { statusCode?: unknown }).statusCode === 'number';
    const problem = answered ? `it answered ${firstLine(error)}` : `unreachable (${reasonOf(error)})`;
    return [fail(what, problem, 'check that this node reaches the API server (its address, a firewall, the API server\'s health), then run the check again')];
  }
}

async function checkAccess(access: KubeAccess, required: RequiredAccess, signal: () => AbortSignal): Promise<CheckLine> {
  const name = required.group === '' ? required.resource : `${required.resource}.${required.group}`;
  const what = `RBAC ${name}`;
  const denied: string[] = [];
  for (const verb of required.verbs) {
    let answer: AccessAnswer;
    try {
      answer = accessAnswer(await access.api.post(SELF_SUBJECT_ACCESS_REVIEWS, accessReview(required.group, required.resource, verb), signal()));
    } catch (error) {
      return fail(what, `the access review failed (${reasonOf(error)})`, 'check that the API server serves authorization.k8s.io/v1 and that the agent\'s credentials are valid');
    }
    if (!answer.allowed) denied.push(answer.reason === '' ? verb : `${verb} (${answer.reason})`);
  }
  if (denied.length === 0) return ok(`${what}: ${required.verbs.join(', ')}`);
  return fail(what, `the agent may not ${denied.join(', ')} ${name} in every namespace`, APPLY_RBAC);
}

/** A SelfSubjectAccessReview for one verb on one resource in every namespace (no namespace: cluster-wide). */
export function accessReview(group: string, resource: string, verb: string): object {
  return {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SelfSubjectAccessReview',
    spec: { resourceAttributes: { group, resource, verb } },
  };
}

interface AccessAnswer {
  readonly allowed: boolean;
  readonly reason: string;
}

/** `status.allowed` of the answer; anything else (no status, not a boolean) counts as not allowed. */
function accessAnswer(raw: unknown): AccessAnswer {
  const status = (raw as { status?: { allowed?: unknown; reason?: unknown; evaluationError?: unknown } } | null)?.status;
  const allowed = status?.allowed === true;
  const reason = typeof status?.reason === 'string' ? status.reason : typeof status?.evaluationError === 'string' ? status.evaluationError : '';
  return { allowed, reason: allowed ? '' : reason };
}

/** The client keeps the reason in `cause` (ECONNREFUSED, a TLS error); a timeout is an AbortSignal's TimeoutError. */
function reasonOf(error: unknown): string {
  if (error instanceof Error && error.name === 'TimeoutError') return 'no answer in time';
  const cause = error instanceof Error ? (error.cause as (Error & { code?: string }) | undefined) : undefined;
  if (cause instanceof Error) return cause.code !== undefined && !cause.message.includes(cause.code) ? `${cause.code}: ${cause.message}` : cause.message;
  return firstLine(error);
}
