// The Status objects the test Kubernetes API server answers errors with, shaped as k8s.io/apimachinery's StatusError builders shape them.

export interface StatusCause {
  reason?: string;
  message: string;
  field?: string;
  type?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface KubeStatus {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: { continue?: string };
  status: 'Failure';
  message: string;
  reason: string;
  details?: StatusDetails;
  code: number;
}

/** The reason the API server gives with each HTTP code (metav1.StatusReason). */
export const STATUS_REASONS: Readonly<Record<number, string>> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'Conflict',
  410: 'Expired',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

export function failureStatus(code: number, reason: string, message: string, details?: StatusDetails): KubeStatus {
  // Field order as the real server serializes a Status.
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details === undefined ? {} : { details }),
    code,
  };
}

/** A request that ends in a Status: thrown inside a handler, answered by the server with `status.code`. */
export class KubeStatusError extends Error {
  readonly status: KubeStatus;
  constructor(status: KubeStatus) {
    super(status.message);
    this.name = 'KubeStatusError';
    this.status = status;
  }
}

export function badRequest(message: string): KubeStatusError {
  return new KubeStatusError(failureStatus(400, 'BadRequest', message));
}

/** 404 for a named object: `services "web" not found`, `endpointslices.discovery.k8s.io "web-abc" not found`. */
export function objectNotFound(resource: string, group: string, name: string): KubeStatusError {
  const qualified = group === '' ? resource : `${resource}.${group}`;
  return new KubeStatusError(
    failureStatus(404, 'NotFound', `${qualified} "${name}" not found`, { name, ...(group === '' ? {} : { group }), kind: resource }),
  );
}

export function pathNotFound(): KubeStatusError {
  return new KubeStatusError(failureStatus(404, 'NotFound', 'the server could not find the requested resource', {}));
}

export function methodNotAllowed(): KubeStatusError {
  return new KubeStatusError(failureStatus(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource', {}));
}

export function unauthorized(): KubeStatusError {
  return new KubeStatusError(failureStatus(401, 'Unauthorized', 'Unauthorized'));
}

/** 410 Expired: a resourceVersion or continue token older than the compaction point. */
export function expired(message: string, continueToken?: string): KubeStatusError {
  const status = failureStatus(410, 'Expired', message);
  if (continueToken !== undefined) status.metadata.continue = continueToken;
  return new KubeStatusError(status);
}

/** 504 Timeout: a read "not older than" a resourceVersion the server has not reached (storage.NewTooLargeResourceVersionError). */
export function tooLargeResourceVersion(requested: number, current: number): KubeStatusError {
  return new KubeStatusError(
    failureStatus(504, 'Timeout', `Timeout: Too large resource version: ${requested}, current: ${current}`, {
      causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }],
      retryAfterSeconds: 1,
    }),
  );
}

/** 422 Invalid ListOptions, as the list handler's validation answers a forbidden combination of parameters. */
export function invalidListOptions(causes: Array<{ field: string; message: string }>): KubeStatusError {
  const text = causes.map((cause) => `${cause.field}: ${cause.message}`);
  const message = `ListOptions.meta.k8s.io "" is invalid: ${text.length === 1 ? text[0] : `[${text.join(', ')}]`}`;
  return new KubeStatusError(
    failureStatus(422, 'Invalid', message, {
      group: 'meta.k8s.io',
      kind: 'ListOptions',
      causes: causes.map((cause) => ({
        reason: cause.message.startsWith('Unsupported value') ? 'FieldValueNotSupported' : 'FieldValueForbidden',
        message: cause.message,
        field: cause.field,
      })),
    }),
  );
}

/** What `failNext` answers: the code's usual reason, and a message that says it was injected. */
export function injectedFailure(code: number): KubeStatusError {
  const reason = STATUS_REASONS[code] ?? (code >= 500 ? 'InternalError' : 'BadRequest');
  const details = code === 429 || code === 503 || code === 504 ? { retryAfterSeconds: 1 } : undefined;
  return new KubeStatusError(failureStatus(code, reason, `injected failure: HTTP ${code} ${reason}`, details));
}
