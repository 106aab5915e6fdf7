// HPACK static table (RFC 7541 Appendix A) and the lookups the encoder needs.

/** Number of static entries; dynamic entries start at index STATIC_TABLE_LENGTH + 1. */
export const STATIC_TABLE_LENGTH = 61;

// Index 0 is unused so that a wire index reads the arrays directly.
// biome-ignore format: spec table, one entry per line
const ENTRIES: ReadonlyArray<readonly [string, string]> = [
  ['', ''],
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

/** Names by static index (1..61); index 0 is an empty placeholder. */
export const STATIC_NAMES: readonly string[] = ENTRIES.map((entry) => entry[0]);
/** Values by static index (1..61); index 0 is an empty placeholder. */
export const STATIC_VALUES: readonly string[] = ENTRIES.map((entry) => entry[1]);

/**
 * Name → lowest static index with that name. Entries sharing a name are adjacent in the table, so a full match is
 * found by scanning forward from here while the name repeats (at most 7 entries, for :status), without building a
 * name+value key per header.
 */
export const STATIC_INDEX_BY_NAME: ReadonlyMap<string, number> = buildNameIndex();

function buildNameIndex(): Map<string, number> {
  const map = new Map<string, number>();
  for (let index = STATIC_TABLE_LENGTH; index >= 1; index--) map.set(STATIC_NAMES[index], index);
  return map;
}
