// Every error code the meshlite CNI plugin can return, well-known ones from the CNI specification and its own (≥ 100).

/**
 * Codes below 100 are the specification's well-known codes (50 is defined for STATUS only); 100 and up belong to
 * meshlite. cni/README.md lists every entry and test/cni/cni-errors.test.ts keeps the two in step.
 */
export const CniErrorCode = {
  /** The configuration's cniVersion is missing or not one the plugin supports, or too old for the command. */
  INCOMPATIBLE_VERSION: 1,
  /** A required CNI_* variable is missing or malformed, or the command is unknown; bad runtime input, never fail-open. */
  INVALID_ENVIRONMENT: 4,
  /** The network configuration could not be read from stdin. */
  IO_FAILURE: 5,
  /** stdin is not JSON. */
  DECODE_FAILED: 6,
  /** stdin is JSON but not a valid configuration for this plugin (missing prevResult on ADD or CHECK, bad meshlite keys). */
  INVALID_CONFIG: 7,
  /** STATUS: the plugin cannot service ADD requests (fail-closed and the agent is unreachable or not ready). */
  PLUGIN_NOT_AVAILABLE: 50,
  /** Fail-closed: the agent's socket is missing, refuses connections or drops them. */
  AGENT_UNREACHABLE: 100,
  /** Fail-closed: the agent did not answer within timeoutMs. */
  AGENT_TIMEOUT: 101,
  /** Fail-closed: the agent answered with an error status or a reply the plugin cannot read. */
  AGENT_FAILED: 102,
  /** CHECK: the agent answered that its state for this pod is not what it should be. */
  AGENT_DISAGREES: 103,
  /** An unexpected failure inside the plugin (a bug); a fail-open ADD passes prevResult on instead, DEL still succeeds. */
  INTERNAL_FAILURE: 199,
} as const;

export type CniErrorCodeValue = (typeof CniErrorCode)[keyof typeof CniErrorCode];

/** An error the plugin reports to the runtime as the specification's error JSON; thrown by the pure parsing code. */
export class CniError extends Error {
  readonly code: CniErrorCodeValue;
  readonly details: string;

  constructor(code: CniErrorCodeValue, msg: string, details = '') {
    super(msg);
    this.name = 'CniError';
    this.code = code;
    this.details = details;
  }
}
