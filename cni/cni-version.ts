// The CNI specification versions the meshlite plugin speaks, and the order between them.

/**
 * 0.4.0 is the first version with CHECK and with prevResult on DEL, which a chained plugin relies on; 1.1.0 adds
 * STATUS and GC. Older versions are refused: a runtime that speaks only 0.3.x gets a clear error, not a guess.
 */
export const SUPPORTED_VERSIONS = ['0.4.0', '1.0.0', '1.1.0'] as const;

export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];

/** Used where the runtime told no version it wants (VERSION without input, errors before the config is read). */
export const LATEST_VERSION: CniVersion = '1.1.0';

export function isSupportedVersion(value: unknown): value is CniVersion {
  return typeof value === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(value);
}

/** True when `version` is `minimum` or later; both are supported versions, so their list order is their semver order. */
export function isAtLeast(version: CniVersion, minimum: CniVersion): boolean {
  return SUPPORTED_VERSIONS.indexOf(version) >= SUPPORTED_VERSIONS.indexOf(minimum);
}
