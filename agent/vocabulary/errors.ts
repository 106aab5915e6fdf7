// Every error code the agent can produce, with the gRPC status a client sees for it: the one table (docs/errors.md lists it).

/** gRPC status codes, as numbered by the gRPC specification (doc/statuscodes.md). */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

export type GrpcStatusCode = (typeof GrpcStatus)[keyof typeof GrpcStatus];

/**
 * Codes the gRPC specification says the library itself never generates: they belong to applications, so a proxy
 * that produced one would lie about where the error came from. errors.test.ts checks that no entry uses one.
 */
export const APPLICATION_RESERVED_STATUSES: readonly GrpcStatusCode[] = [
  GrpcStatus.INVALID_ARGUMENT,
  GrpcStatus.NOT_FOUND,
  GrpcStatus.ALREADY_EXISTS,
  GrpcStatus.FAILED_PRECONDITION,
  GrpcStatus.ABORTED,
  GrpcStatus.OUT_OF_RANGE,
  GrpcStatus.DATA_LOSS,
];

export interface ErrorDefinition {
  /** What a gRPC client receives when this error ends its request; null when the error ends no request. */
  readonly grpcStatus: GrpcStatusCode | null;
  readonly description: string;
}

/**
 * Request errors come first (they reach clients as Trailers-Only responses or trailers), then the ones that are only
 * logged and counted. UNAVAILABLE is used whenever the request may safely be retried by the client.
 */
export const ERRORS = {
  ML_UNKNOWN_TARGET: {
    grpcStatus: GrpcStatus.UNAVAILABLE,
    description: 'No known service matches the request target (the :authority in explicit mode, the original destination in transparent mode).',
  },
  ML_NO_ENDPOINT: {
    grpcStatus: GrpcStatus.UNAVAILABLE,
    description: 'The service is known but has no endpoint that may take a request (none ready, none serving while terminating).',
  },
  ML_CONNECT_FAILED: {
    grpcStatus: GrpcStatus.UNAVAILABLE,
    description: 'Connecting to the chosen endpoint failed (refused, unreachable, reset during the handshake); nothing was sent.',
  },
  ML_ENDPOINT_EJECTED: {
    grpcStatus: null,
    description: 'An endpoint failed request after request (connects refused or timed out, streams refused, connections lost) and is out of the picker for a probation that doubles with each ejection; never more than half of a service\'s endpoints.',
  },
  ML_UPSTREAM_PROTOCOL: {
    grpcStatus: GrpcStatus.UNAVAILABLE,
    description: 'The endpoint does not speak HTTP/2 cleartext (e.g. it answered HTTP/1.1) or broke the protocol on its connection.',
  },
  ML_UPSTREAM_CONNECTION_LOST: {
    grpcStatus: GrpcStatus.UNAVAILABLE,
    description: 'The upstream connection closed while the request was in flight (the backend died or went away).',
  },
  ML_UPSTREAM_RESET: {
    grpcStatus: GrpcStatus.INTERNAL,
    description: 'The upstream reset the stream before its trailers; the status follows the reset code as the gRPC HTTP/2 protocol document says (REFUSED_STREAM is UNAVAILABLE, CANCEL is CANCELLED, ENHANCE_YOUR_CALM is RESOURCE_EXHAUSTED, others INTERNAL).',
  },
  ML_DEADLINE: {
    grpcStatus: GrpcStatus.DEADLINE_EXCEEDED,
    description: "The request's grpc-timeout passed before the response ended; the upstream stream was cancelled.",
  },
  ML_BAD_TIMEOUT: {
    // INTERNAL, not INVALID_ARGUMENT: the latter is reserved for applications; grpc-go answers a malformed grpc-timeout the same way.
    grpcStatus: GrpcStatus.INTERNAL,
    description: 'The request carried a grpc-timeout header that is not 1 to 8 digits followed by one of H M S m u n.',
  },
  ML_CLIENT_CANCELLED: {
    grpcStatus: GrpcStatus.CANCELLED,
    description: 'The client cancelled the request (RST_STREAM or connection closed); the cancel was forwarded upstream.',
  },
  ML_INTERNAL: {
    grpcStatus: GrpcStatus.INTERNAL,
    description: 'An unexpected failure inside the agent (a bug): the log line carries the stack.',
  },
  ML_CONFIG_INVALID: {
    grpcStatus: null,
    description: 'A setting (flag or environment variable) has an invalid value; the agent does not start.',
  },
  ML_STATIC_FILE_INVALID: {
    grpcStatus: null,
    description: 'The static discovery file is missing or malformed at start; the message names the field. The agent does not start.',
  },
  ML_STATIC_FILE_RELOAD_FAILED: {
    grpcStatus: null,
    description: 'An edit of the static discovery file could not be read or is malformed; the agent keeps the last good state.',
  },
  ML_STATIC_FILE_WATCH_FAILED: {
    grpcStatus: null,
    description:
      "The static discovery file's directory cannot be watched (inotify limits, a missing directory); the agent keeps reading the file every 500 ms, so changes still apply, a little later.",
  },
  ML_STATE_FILE_UNREADABLE: {
    grpcStatus: null,
    description:
      'The state file (--state-file) exists but could not be read (permissions, a directory, an I/O error); the agent does not use it and waits for the Kubernetes API.',
  },
  ML_STATE_FILE_TOO_LARGE: {
    grpcStatus: null,
    description:
      'The state file is larger than 32 MiB, so it is not read; or the view to persist would be, so it is not written. The agent keeps running.',
  },
  ML_STATE_FILE_MALFORMED: {
    grpcStatus: null,
    description:
      'The state file is not a JSON object (truncated, or not written by meshlite); it is ignored as a whole and the agent waits for the Kubernetes API.',
  },
  ML_STATE_FILE_VERSION: {
    grpcStatus: null,
    description:
      'The state file was written in a format version this agent does not read (an older or newer agent wrote it); it is ignored and replaced after the next sync.',
  },
  ML_STATE_FILE_INVALID: {
    grpcStatus: null,
    description:
      'The state file is JSON of the right version but a field has the wrong type or value, a service or pod is listed twice, or it was written for another node; the log line names the field. It is ignored as a whole: nothing of it is loaded.',
  },
  ML_STATE_FILE_WRITE_FAILED: {
    grpcStatus: null,
    description:
      'Writing the state file failed (the directory is missing or read-only, the disk is full); the agent keeps serving and tries again 10 s later. The previous file, if any, stays whole.',
  },
  ML_SERVING_FROM_STATE_FILE: {
    grpcStatus: null,
    description:
      "The agent started without a first sync from the Kubernetes API and serves from the view the state file kept; the API's view replaces it as soon as the API answers.",
  },
  ML_PASSTHROUGH_FAILED: {
    grpcStatus: null,
    description: 'A non-HTTP/2 connection could not be relayed byte for byte to its original destination.',
  },
  ML_ORIGINAL_DST_FAILED: {
    grpcStatus: null,
    description: "The original destination of an intercepted connection could not be read (SO_ORIGINAL_DST); the connection is closed.",
  },
  ML_LISTEN_FAILED: {
    grpcStatus: null,
    description: 'A listener (proxy, admin, metrics or the CNI enrollment socket) could not bind its address; the agent does not start.',
  },
  ML_LISTENER_MIGRATION_OFF: {
    grpcStatus: null,
    description:
      "net.ipv4.tcp_migrate_req is 0 on the node and the agent may not set it (/proc/sys is read-only in its container): during an upgrade, a connection the kernel queued on the old agent's listener as it closes is reset instead of handed to the new agent. Set it to 1 on the node (see README, Upgrade).",
  },
  ML_KUBE_CONFIG_INVALID: {
    grpcStatus: null,
    description: 'The Kubernetes client configuration (in-cluster service account, or the file given with --kubeconfig) cannot be loaded; the agent does not start.',
  },
  ML_KUBE_LIST_FAILED: {
    grpcStatus: null,
    description: 'Listing a resource from the Kubernetes API failed (unreachable, timed out, or an error status); discovery is degraded, the agent keeps its last known endpoints and retries with backoff.',
  },
  ML_KUBE_WATCH_FAILED: {
    grpcStatus: null,
    description: 'A watch on the Kubernetes API broke or could not be opened; discovery is degraded, the agent keeps its last known endpoints and restarts the watch with backoff.',
  },
  ML_KUBE_OBJECT_INVALID: {
    grpcStatus: null,
    description: 'An object from the Kubernetes API has missing or malformed fields (e.g. a port without a number, an address that is not an IP); it is skipped and everything else keeps working.',
  },
  ML_DISCOVERY_DEGRADED: {
    grpcStatus: null,
    description:
      "An informer failed (its own code says why: ML_KUBE_LIST_FAILED, ML_KUBE_WATCH_FAILED): discovery is degraded, the agent serves from the last known endpoints and says \"discovery recovered\" when every informer works again.",
  },
  ML_INTERCEPT_COMMAND_FAILED: {
    grpcStatus: null,
    description: 'An iptables or ipset command failed or could not be started while installing, checking, repairing or removing interception; the log line carries the command and its stderr. The agent retries with backoff; rules and sets already in place stay.',
  },
  ML_INTERCEPT_REPAIRED: {
    grpcStatus: null,
    description: 'The periodic check found rules, jumps or set members that meshlite had installed missing or changed (someone else removed or edited them); they were restored, and the log line says what.',
  },
  ML_INTERCEPT_INVALID_ADDRESS: {
    grpcStatus: null,
    description: 'A pod IP or destination handed to interception is not an IP address, or its port is not 1 to 65535; it is skipped and everything else is applied.',
  },
  ML_INTERCEPT_SET_CONFLICT: {
    grpcStatus: null,
    description: "An ipset with one of meshlite's names exists with another type or family; it is left alone and interception is not applied until it is removed (meshlite uninstall removes it).",
  },
  ML_INTERCEPT_REFRESH_FAILED: {
    grpcStatus: null,
    description: "Refreshing the timeouts of the pods sets' members failed (fail open); the agent retries every half second. Should it keep failing, the members expire within 2 s and opted-in pods' new connections go to their Service through kube-proxy, unbalanced, until a refresh succeeds.",
  },
  ML_INTERCEPT_BACKEND_MOVED: {
    grpcStatus: null,
    description:
      "kube-proxy's chains turned out to be in the other iptables backend (nft or legacy) than the agent's rules: the agent moved its rules there, so that they run before kube-proxy's.",
  },
  ML_SOURCE_REFUSED: {
    grpcStatus: null,
    description: 'A connection reached the proxy listener from an address that is neither an enrolled pod of this node nor loopback; it was closed at once (logged at debug level, at most once a minute per burst).',
  },
  ML_PEER_FLOOD: {
    grpcStatus: null,
    description:
      'A client connection was closed with GOAWAY(ENHANCE_YOUR_CALM) for flooding: streams reset or refused as soon as opened (rapid reset, CVE-2023-44487: more than 500 at once, then 200 a second), PINGs without data (more than 100, then 20 a second), SETTINGS (more than 100, then 10 a second), a header block without end, or output it did not read. Its requests are cancelled upstream; one warning per connection closed, naming the limit.',
  },
  ML_OVERLOADED: {
    grpcStatus: null,
    description:
      'The request bytes held by all client connections passed --max-buffered-mib (endpoints that do not read what clients send): new streams are refused with RST_STREAM(REFUSED_STREAM), which a gRPC client may retry, new connections wait unread, and no connection gets window back before its bytes are passed on, until the bytes held fall below 3/4 of the budget. Counted per refused stream; one warning when the overload starts, one info line when it ends.',
  },
  ML_CLIENT_CONNECTION_LIMIT: {
    grpcStatus: null,
    description:
      'A client connection was refused at accept (reset) because --max-client-connections were open. Counted each; logged once when the limit is reached and then at most once a minute.',
  },
  ML_CLIENT_IDLE_TIMEOUT: {
    grpcStatus: null,
    description:
      'Client connections without a stream for --client-idle-timeout-ms were sent GOAWAY(NO_ERROR) and closed; a gRPC channel reconnects when it needs to. Counted per connection; one info line per sweep that closed any.',
  },
  ML_CLIENT_HANDSHAKE_TIMEOUT: {
    grpcStatus: null,
    description:
      'A client connection did not complete the HTTP/2 handshake (preface and SETTINGS, and the acknowledgement of ours) within --client-handshake-timeout-ms and was closed with GOAWAY(SETTINGS_TIMEOUT). Counted each; logged at most once a minute.',
  },
  ML_CNI_BAD_REQUEST: {
    grpcStatus: null,
    description: 'A request on the CNI enrollment socket was refused with HTTP 4xx (not JSON, a missing or malformed field, an unknown path or method, too large); nothing changed.',
  },
  ML_CNI_POD_LOOKUP_FAILED: {
    grpcStatus: null,
    description: 'CNI ADD or CHECK could not read the pod or its namespace from the Kubernetes API (unreachable, timed out, an error status); answered 503 so that the plugin applies its fail policy. The IPs are held as not opted in until the pod watch decides.',
  },
  ML_CNI_NOT_APPLIED: {
    grpcStatus: null,
    description: "CNI ADD or CHECK: the interception rules did not reflect the pod's IPs within the time limit, or applying them failed; answered 503 so that the plugin applies its fail policy.",
  },
  ML_DRAIN_TIMEOUT: {
    grpcStatus: null,
    description: 'Draining did not finish within --drain-timeout-ms; the remaining connections were closed.',
  },
  ML_STOP_TIMEOUT: {
    grpcStatus: null,
    description:
      'After the drain, stopping the rest of the agent (interception, discovery, pools, admin servers) took longer than 5 s; the agent stops anyway.',
  },
  ML_WORKER_EXITED: {
    grpcStatus: null,
    description:
      'A worker thread (--workers above 1) failed or ended on its own: the agent drains what the other threads hold and exits 1, so that the kubelet restarts it at full capacity.',
  },
  ML_WORKER_SCRAPE_FAILED: {
    grpcStatus: null,
    description: 'A worker thread did not answer a scrape (it failed, or sent nothing within 5 s); /metrics answers 500 rather than totals that would go down.',
  },
} as const satisfies Record<string, ErrorDefinition>;

export type ErrorCode = keyof typeof ERRORS;

export const ERROR_CODES = Object.keys(ERRORS) as ErrorCode[];

/** The gRPC status a client sees for `code`, or null when the error ends no request. */
export function grpcStatusOf(code: ErrorCode): GrpcStatusCode | null {
  return ERRORS[code].grpcStatus;
}

/** Base class for errors that carry a table code, so callers branch on `code`, never on message text. */
export class MeshliteError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = 'MeshliteError';
  }
}
