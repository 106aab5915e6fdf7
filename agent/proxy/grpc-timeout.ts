// The gRPC `grpc-timeout` header: parse it into milliseconds and write the time left back in the same format.

const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** Milliseconds, or -1 when the value is malformed (1 to 8 ASCII digits followed by one unit, per the gRPC spec). */
export function parseGrpcTimeout(value: string): number {
  const length = value.length;
  if (length < 2 || length > 9) return -1;
  const unit = UNIT_MS[value[length - 1]];
  if (unit === undefined) return -1;
  let amount = 0;
  for (let i = 0; i < length - 1; i++) {
    const digit = value.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return -1;
    amount = amount * 10 + digit;
  }
  return amount * unit;
}

/** The header value for `ms` milliseconds left, in the finest unit that fits 8 digits. */
export function formatGrpcTimeout(ms: number): string {
  const left = Math.max(0, ms);
  const micros = Math.ceil(left * 1000);
  if (micros < 100_000_000) return `${micros}u`;
  const millis = Math.ceil(left);
  if (millis < 100_000_000) return `${millis}m`;
  const seconds = Math.ceil(left / 1000);
  if (seconds < 100_000_000) return `${seconds}S`;
  return `${Math.min(99_999_999, Math.ceil(left / 3_600_000))}H`;
}

/** The request headers for an attempt with `leftMs` of the client's deadline left: grpc-timeout says the time left
 *  (the same array when there is no deadline). */
export function headersWithTimeLeft(headers: readonly string[], leftMs: number): readonly string[] {
  if (leftMs === Number.POSITIVE_INFINITY) return headers;
  const copy = headers.slice();
  for (let i = 0; i < copy.length; i += 2) if (copy[i] === 'grpc-timeout') copy[i + 1] = formatGrpcTimeout(leftMs);
  return copy;
}
