// The route contract: a type-only module (nothing to run on the request path) that the balancer routes implement.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BalancerRoutes } from '../../agent/proxy/balancer-routes.ts';
import type { RouteTable } from '../../agent/proxy/route.ts';

describe('route.ts', () => {
  it('exports no runtime values: Route and RouteTable are types only', async () => {
    const module: object = await import('../../agent/proxy/route.ts');
    assert.deepEqual(Object.keys(module), []);
  });

  it('BalancerRoutes is a RouteTable with both lookups', () => {
    const table: RouteTable = BalancerRoutes.prototype;
    assert.equal(typeof table.routeForKey, 'function');
    assert.equal(typeof table.routeForAddress, 'function');
    assert.deepEqual(Object.getOwnPropertyNames(BalancerRoutes.prototype).sort(), ['constructor', 'routeForAddress', 'routeForKey']);
  });
});
