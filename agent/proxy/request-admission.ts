// Admitting a new request: its route (the connection's original destination, else its `:authority`) and its deadline
// (`grpc-timeout`), or the reason the agent answers it itself.

import type { ErrorCode } from '../vocabulary/errors.ts';
import type { AuthorityParser } from './authority.ts';
import { parseGrpcTimeout } from './grpc-timeout.ts';
import type { Route, RouteTable } from './route.ts';

export type Admission =
  /** `timeoutMs` is -1 when the client set no deadline. */
  | { admitted: true; route: Route; timeoutMs: number }
  | { admitted: false; code: ErrorCode; message: string };

/** `connectionRoute`: transparent mode's route of the connection's original destination; null in explicit mode. */
export function admitRequest(
  connectionRoute: Route | null,
  headers: readonly string[],
  routes: RouteTable,
  authority: AuthorityParser,
): Admission {
  let route = connectionRoute;
  if (route === null) {
    const name = headerValue(headers, ':authority') ?? '';
    const key = authority.serviceKey(name);
    route = key === null ? null : routes.routeForKey(key);
    if (route === null) return { admitted: false, code: 'ML_UNKNOWN_TARGET', message: `unknown target "${name}"` };
  }
  const timeoutText = headerValue(headers, 'grpc-timeout');
  if (timeoutText === undefined) return { admitted: true, route, timeoutMs: -1 };
  const timeoutMs = parseGrpcTimeout(timeoutText);
  if (timeoutMs < 0) return { admitted: false, code: 'ML_BAD_TIMEOUT', message: `invalid grpc-timeout "${timeoutText}"` };
  return { admitted: true, route, timeoutMs };
}

function headerValue(headers: readonly string[], name: string): string | undefined {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === name) return headers[i + 1];
  return undefined;
}
