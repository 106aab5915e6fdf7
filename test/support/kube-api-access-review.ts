// SelfSubjectAccessReview as the API server answers it (authorization.k8s.io/v1): allowed unless a test denied the verb.

import { badRequest, failureStatus, KubeStatusError } from './kube-api-status.ts';

export const ACCESS_REVIEW_PATH = '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews';

/** A verb on a resource the test's user may not use; `group` '' is the core group, as RBAC rules spell it. */
export interface AccessDenial {
  readonly verb: string;
  readonly resource: string;
  readonly group?: string;
}

interface ResourceAttributes {
  verb?: unknown;
  resource?: unknown;
  group?: unknown;
}

/**
 * The answer to a POSTed review: the object echoed with `status` filled, as the server's REST handler does (201
 * Created). Exactly one of resourceAttributes and nonResourceAttributes, or 422 Invalid as the validation answers.
 * RBAC gives a reason when it allows and none when it has no rule (which is how it denies).
 */
export function reviewAccess(bodyText: string, denials: readonly AccessDenial[]): unknown {
  let body: { apiVersion?: unknown; kind?: unknown; spec?: { resourceAttributes?: ResourceAttributes; nonResourceAttributes?: unknown } };
  try {
    body = JSON.parse(bodyText) as typeof body;
  } catch (error) {
    throw badRequest(`the body of the request was in an unknown format - accepted media types include: application/json: ${(error as Error).message}`);
  }
  if (body.kind !== undefined && body.kind !== 'SelfSubjectAccessReview') {
    throw badRequest(`the kind in the data (${String(body.kind)}) does not match the expected kind (SelfSubjectAccessReview)`);
  }
  const spec = body.spec ?? {};
  const resource = spec.resourceAttributes;
  const nonResource = spec.nonResourceAttributes;
  if ((resource === undefined) === (nonResource === undefined)) {
    const field = resource === undefined ? 'spec.resourceAttributes' : 'spec.nonResourceAttributes';
    const detail = resource === undefined ? 'exactly one of nonResourceAttributes or resourceAttributes must be specified' : 'cannot be specified in combination with resourceAttributes';
    throw new KubeStatusError(
      failureStatus(422, 'Invalid', `SelfSubjectAccessReview.authorization.k8s.io "" is invalid: ${field}: Invalid value: "null": ${detail}`, {
        group: 'authorization.k8s.io',
        kind: 'SelfSubjectAccessReview',
        causes: [{ reason: 'FieldValueInvalid', message: `Invalid value: "null": ${detail}`, field }],
      }),
    );
  }
  const denied =
    resource !== undefined &&
    denials.some(
      (denial) => denial.verb === resource.verb && denial.resource === resource.resource && (denial.group ?? '') === (resource.group ?? ''),
    );
  const status = denied ? { allowed: false } : { allowed: true, reason: 'RBAC: allowed by ClusterRoleBinding "meshlite-test" of ClusterRole "meshlite-test" to User "meshlite-test"' };
  return { kind: 'SelfSubjectAccessReview', apiVersion: 'authorization.k8s.io/v1', metadata: { creationTimestamp: null }, spec, status };
}
