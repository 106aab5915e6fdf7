// Admitting a request: transparent and explicit routes, unknown targets, and the grpc-timeout deadline or its rejection.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EMPTY_PICKER } from '../../agent/balancer/picker.ts';
import { AuthorityParser } from '../../agent/proxy/authority.ts';
import { admitRequest } from '../../agent/proxy/request-admission.ts';
import type { Route, RouteTable } from '../../agent/proxy/route.ts';

/** A route table over a fixed set of routes that records every lookup as `key <key>` / `address <ip>:<port>`. */
class RecordingRoutes implements RouteTable {
  readonly lookups: string[] = [];
  private readonly routes: Map<string, Route>;

  constructor(routes: readonly Route[]) {
    this.routes = new Map(routes.map((route) => [route.key, route]));
  }

  routeForKey(key: string): Route | null {
    this.lookups.push(`key ${key}`);
    return this.routes.get(key) ?? null;
  }

  routeForAddress(ip: string, port: number): Route | null {
    this.lookups.push(`address ${ip}:${port}`);
    return null;
  }
}

const echo: Route = { key: 'default/echo:50051', picker: EMPTY_PICKER };
const other: Route = { key: 'other/pinned:9000', picker: EMPTY_PICKER };

function setup() {
  return { routes: new RecordingRoutes([echo]), authority: new AuthorityParser('cluster.local') };
}

describe('admitRequest in transparent mode (a connection route)', () => {
  it('admits on the connection route without looking at :authority or the route table', () => {
    const { routes, authority } = setup();
    const admission = admitRequest(other, [':method', 'POST', ':authority', 'echo.default:50051', ':path', '/a.B/C'], routes, authority);
    assert.deepEqual(admission, { admitted: true, route: other, timeoutMs: -1 });
    assert.equal(admission.admitted && admission.route, other);
    assert.deepEqual(routes.lookups, []);
  });

  it('admits even when :authority is missing or names nothing known', () => {
    const { routes, authority } = setup();
    assert.deepEqual(admitRequest(other, [':method', 'POST'], routes, authority), { admitted: true, route: other, timeoutMs: -1 });
    assert.deepEqual(admitRequest(other, [':authority', 'nope:1'], routes, authority), { admitted: true, route: other, timeoutMs: -1 });
    assert.deepEqual(routes.lookups, []);
  });

  it('still reads and checks grpc-timeout', () => {
    const { routes, authority } = setup();
    assert.deepEqual(admitRequest(other, ['grpc-timeout', '250m'], routes, authority), { admitted: true, route: other, timeoutMs: 250 });
    assert.deepEqual(admitRequest(other, ['grpc-timeout', '250'], routes, authority), {
      admitted: false,
      code: 'ML_BAD_TIMEOUT',
      message: 'invalid grpc-timeout "250"',
    });
  });
});

describe('admitRequest in explicit mode (no connection route)', () => {
  it('routes by the service :authority names, looked up by its key', () => {
    const { routes, authority } = setup();
    const admission = admitRequest(null, [':method', 'POST', ':authority', 'echo.default.svc.cluster.local:50051'], routes, authority);
    assert.deepEqual(admission, { admitted: true, route: echo, timeoutMs: -1 });
    assert.equal(admission.admitted && admission.route, echo);
    assert.deepEqual(routes.lookups, ['key default/echo:50051']);
  });

  it('answers ML_UNKNOWN_TARGET, quoting the authority, when the authority names a service the table does not know', () => {
    const { routes, authority } = setup();
    assert.deepEqual(admitRequest(null, [':authority', 'gone.default:50051'], routes, authority), {
      admitted: false,
      code: 'ML_UNKNOWN_TARGET',
      message: 'unknown target "gone.default:50051"',
    });
    assert.deepEqual(routes.lookups, ['key default/gone:50051']);
  });

  it('answers ML_UNKNOWN_TARGET without a table lookup when the authority is not a service name', () => {
    const { routes, authority } = setup();
    assert.deepEqual(admitRequest(null, [':authority', '10.96.0.10:50051'], routes, authority), {
      admitted: false,
      code: 'ML_UNKNOWN_TARGET',
      message: 'unknown target "10.96.0.10:50051"',
    });
    assert.deepEqual(routes.lookups, []);
  });

  it('treats a missing :authority as the empty name', () => {
    const { routes, authority } = setup();
    assert.deepEqual(admitRequest(null, [':method', 'POST', ':path', '/a.B/C'], routes, authority), {
      admitted: false,
      code: 'ML_UNKNOWN_TARGET',
      message: 'unknown target ""',
    });
    assert.deepEqual(admitRequest(null, [], routes, authority), { admitted: false, code: 'ML_UNKNOWN_TARGET', message: 'unknown target ""' });
    assert.deepEqual(routes.lookups, []);
  });

  it('an unknown target is answered before the timeout is read', () => {
    const { routes, authority } = setup();
    assert.deepEqual(admitRequest(null, [':authority', 'x', 'grpc-timeout', 'bad'], routes, authority), {
      admitted: false,
      code: 'ML_UNKNOWN_TARGET',
      message: 'unknown target "x"',
    });
  });
});

describe('admitRequest: grpc-timeout', () => {
  const target = [':authority', 'echo.default:50051'];

  it('without grpc-timeout the request has no deadline (-1)', () => {
    const { routes, authority } = setup();
    assert.deepEqual(admitRequest(null, target, routes, authority), { admitted: true, route: echo, timeoutMs: -1 });
  });

  it('converts grpc-timeout to milliseconds, zero included', () => {
    const { routes, authority } = setup();
    assert.deepEqual(admitRequest(null, [...target, 'grpc-timeout', '3S'], routes, authority), { admitted: true, route: echo, timeoutMs: 3000 });
    assert.deepEqual(admitRequest(null, [...target, 'grpc-timeout', '1m'], routes, authority), { admitted: true, route: echo, timeoutMs: 1 });
    assert.deepEqual(admitRequest(null, [...target, 'grpc-timeout', '0m'], routes, authority), { admitted: true, route: echo, timeoutMs: 0 });
    assert.deepEqual(admitRequest(null, [...target, 'grpc-timeout', '1n'], routes, authority), { admitted: true, route: echo, timeoutMs: 0.000001 });
  });

  it('answers ML_BAD_TIMEOUT, quoting the value, for a malformed grpc-timeout', () => {
    const { routes, authority } = setup();
    for (const bad of ['', '5', 'm', '5x', '-1m', '123456789S']) {
      assert.deepEqual(
        admitRequest(null, [...target, 'grpc-timeout', bad], routes, authority),
        { admitted: false, code: 'ML_BAD_TIMEOUT', message: `invalid grpc-timeout "${bad}"` },
        `"${bad}"`,
      );
    }
  });
});

describe('admitRequest: reading headers', () => {
  it('matches header names only, never a value that looks like a name', () => {
    const { routes, authority } = setup();
    const headers = ['x-note', ':authority', ':authority', 'echo.default:50051', 'x-other', 'grpc-timeout', 'grpc-timeout', '2S'];
    assert.deepEqual(admitRequest(null, headers, routes, authority), { admitted: true, route: echo, timeoutMs: 2000 });
  });

  it('a name in the last, value-less slot is not read past the end', () => {
    const { routes, authority } = setup();
    assert.deepEqual(admitRequest(null, [':authority', 'echo.default:50051', 'grpc-timeout'], routes, authority), {
      admitted: true,
      route: echo,
      timeoutMs: -1,
    });
  });

  it('uses the first of repeated headers', () => {
    const { routes, authority } = setup();
    const headers = [':authority', 'echo.default:50051', ':authority', 'gone.default:50051', 'grpc-timeout', '5m', 'grpc-timeout', 'bad'];
    assert.deepEqual(admitRequest(null, headers, routes, authority), { admitted: true, route: echo, timeoutMs: 5 });
    assert.deepEqual(routes.lookups, ['key default/echo:50051']);
  });

  it('header names are matched exactly, case included', () => {
    const { routes, authority } = setup();
    assert.deepEqual(admitRequest(null, [':authority', 'echo.default:50051', 'Grpc-Timeout', 'bad'], routes, authority), {
      admitted: true,
      route: echo,
      timeoutMs: -1,
    });
    assert.deepEqual(admitRequest(null, [':Authority', 'echo.default:50051'], routes, authority), {
      admitted: false,
      code: 'ML_UNKNOWN_TARGET',
      message: 'unknown target ""',
    });
  });
});
