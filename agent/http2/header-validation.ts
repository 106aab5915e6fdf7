// Checks decoded header lists against RFC 9113 §8.2–§8.3; a failure makes the message malformed (a stream error).

/** A request's pseudo-headers, each a bit so that a request's seen set is a number, not a Set per request. */
const METHOD = 1;
const SCHEME = 2;
const PATH = 4;
const AUTHORITY = 8;

function requestPseudoBit(name: string): number {
  switch (name) {
    case ':method':
      return METHOD;
    case ':scheme':
      return SCHEME;
    case ':path':
      return PATH;
    case ':authority':
      return AUTHORITY;
    default:
      return 0;
  }
}
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

/** Problems shared by every header list: field names must be lower-case tokens, no connection-specific fields. */
function checkField(name: string, value: string): string | null {
  if (name.length === 0) return 'empty field name';
  for (let i = name.charCodeAt(0) === 0x3a ? 1 : 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    // Upper-case letters, separators, controls and non-ASCII are not allowed in an HTTP/2 field name.
    if (c <= 0x20 || c >= 0x7f || (c >= 0x41 && c <= 0x5a) || c === 0x3a) return `invalid field name "${name}"`;
  }
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x00 || c === 0x0a || c === 0x0d) return `invalid character in value of "${name}"`;
  }
  if (CONNECTION_SPECIFIC.has(name)) return `connection-specific field "${name}"`;
  if (name === 'te' && value !== 'trailers') return 'te other than "trailers"';
  return null;
}

/** Fields remembered by position: a gRPC head has about ten, and a list's later fields are checked every time. */
const REMEMBERED_FIELDS = 16;

/**
 * The fields of one kind of list that passed checkField lately, by their position in the list. A channel's lists
 * repeat most of their fields (often the very strings, from the decoder's dynamic table) while a field or two change
 * per call (grpc-timeout); a field equal to the one that passed at its position passes without its characters being
 * looked at again. Shared by every connection: whether a field passes depends on its octets only.
 */
class PassedFields {
  private readonly names: (string | null)[] = new Array<string | null>(REMEMBERED_FIELDS).fill(null);
  private readonly values: (string | null)[] = new Array<string | null>(REMEMBERED_FIELDS).fill(null);

  /** checkField(name, value) for the field at `position` (its index among the list's fields). */
  problem(position: number, name: string, value: string): string | null {
    if (position >= REMEMBERED_FIELDS) return checkField(name, value);
    if (this.names[position] === name && this.values[position] === value) return null;
    const problem = checkField(name, value);
    if (problem === null) {
      this.names[position] = name;
      this.values[position] = value;
    }
    return problem;
  }
}

const requestFields = new PassedFields();
const responseFields = new PassedFields();
const trailerFields = new PassedFields();

/** Null when `headers` is a well-formed request header list, else the reason. */
export function requestHeadersProblem(headers: readonly string[]): string | null {
  let method = '';
  let regularSeen = false;
  let seen = 0;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i];
    const value = headers[i + 1];
    if (name.charCodeAt(0) === 0x3a) {
      if (regularSeen) return `pseudo-header ${name} after regular fields`;
      const bit = requestPseudoBit(name);
      if (bit === 0) return `unknown pseudo-header ${name}`;
      if ((seen & bit) !== 0) return `duplicate pseudo-header ${name}`;
      seen |= bit;
      if (bit === METHOD) method = value;
      else if (bit === PATH && value.length === 0) return 'empty :path';
    } else {
      regularSeen = true;
    }
    const problem = requestFields.problem(i >> 1, name, value);
    if (problem !== null) return problem;
  }
  if (method === '') return 'missing :method';
  if (method === 'CONNECT') {
    if ((seen & (SCHEME | PATH)) !== 0) return 'CONNECT with :scheme or :path';
    if ((seen & AUTHORITY) === 0) return 'CONNECT without :authority';
    return null;
  }
  if ((seen & SCHEME) === 0) return 'missing :scheme';
  if ((seen & PATH) === 0) return 'missing :path';
  return null;
}

/** Null when `headers` is a well-formed response header list, else the reason. */
export function responseHeadersProblem(headers: readonly string[]): string | null {
  let hasStatus = false;
  let regularSeen = false;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i];
    if (name.charCodeAt(0) === 0x3a) {
      if (regularSeen) return `pseudo-header ${name} after regular fields`;
      if (name !== ':status') return `unknown pseudo-header ${name}`;
      if (hasStatus) return 'duplicate :status';
      if (!/^[1-5][0-9][0-9]$/.test(headers[i + 1])) return 'invalid :status';
      hasStatus = true;
    } else {
      regularSeen = true;
    }
    const problem = responseFields.problem(i >> 1, name, headers[i + 1]);
    if (problem !== null) return problem;
  }
  return hasStatus ? null : 'missing :status';
}

/** Null when `headers` is a well-formed trailer list (no pseudo-headers), else the reason. */
export function trailersProblem(headers: readonly string[]): string | null {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i].charCodeAt(0) === 0x3a) return `pseudo-header ${headers[i]} in trailers`;
    const problem = trailerFields.problem(i >> 1, headers[i], headers[i + 1]);
    if (problem !== null) return problem;
  }
  return null;
}

/** The declared content-length, -1 when absent, or -2 when it is malformed or given twice with different values. */
export function declaredContentLength(headers: readonly string[]): number {
  let length = -1;
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] !== 'content-length') continue;
    const value = headers[i + 1];
    if (!/^[0-9]{1,15}$/.test(value)) return -2;
    const parsed = Number(value);
    if (length !== -1 && length !== parsed) return -2;
    length = parsed;
  }
  return length;
}
