// Choosing one attempt's endpoint on its own: the route's pick, up to three re-picks around endpoints in reconnect
// backoff, and a backing-off endpoint taken when the re-picks find nothing better.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EndpointLoad } from '../../agent/balancer/endpoint-load.ts';
import type { Picker } from '../../agent/balancer/picker.ts';
import { pickEndpoint } from '../../agent/proxy/endpoint-pick.ts';
import type { Route } from '../../agent/proxy/route.ts';
import type { EndpointPools } from '../../agent/upstream/endpoint-pools.ts';

const A = new EndpointLoad('10.0.0.1:50051');
const B = new EndpointLoad('10.0.0.2:50051');
const C = new EndpointLoad('10.0.0.3:50051');
const D = new EndpointLoad('10.0.0.4:50051');
const E = new EndpointLoad('10.0.0.5:50051');

/** A route whose picker returns `picks` in order (and fails the test if asked once more), and pools in which the
 *  addresses of `backingOff` are in backoff; `calls` records every pick and backoff question. */
function setup(picks: ReadonlyArray<EndpointLoad | null>, backingOff: readonly EndpointLoad[]) {
  const calls: string[] = [];
  let next = 0;
  const picker: Picker = {
    pick() {
      assert.ok(next < picks.length, 'picked more often than expected');
      const endpoint = picks[next++];
      calls.push(`pick ${endpoint?.address ?? null}`);
      return endpoint;
    },
  };
  const route: Route = { key: 'default/greeter:50051', picker };
  const backoff = new Set(backingOff.map((endpoint) => endpoint.address));
  const pools = {
    inBackoff(address: string) {
      calls.push(`inBackoff ${address}`);
      return backoff.has(address);
    },
  } as unknown as EndpointPools<unknown>;
  return { calls, route, pools };
}

describe('pickEndpoint', () => {
  it('returns null when the route has no endpoint, asking nothing of the pools', () => {
    const { calls, route, pools } = setup([null], []);
    assert.equal(pickEndpoint(route, pools), null);
    assert.deepEqual(calls, ['pick null']);
  });

  it('takes the first pick when it is not backing off', () => {
    const { calls, route, pools } = setup([A], [B]);
    assert.equal(pickEndpoint(route, pools), A);
    assert.deepEqual(calls, ['pick 10.0.0.1:50051', 'inBackoff 10.0.0.1:50051']);
  });

  it('picks again around an endpoint in backoff', () => {
    const { calls, route, pools } = setup([A, B], [A]);
    assert.equal(pickEndpoint(route, pools), B);
    assert.deepEqual(calls, ['pick 10.0.0.1:50051', 'inBackoff 10.0.0.1:50051', 'pick 10.0.0.2:50051', 'inBackoff 10.0.0.2:50051']);
  });

  it('takes the third re-pick when it is the first not backing off', () => {
    const { calls, route, pools } = setup([A, B, C, D], [A, B, C]);
    assert.equal(pickEndpoint(route, pools), D);
    assert.deepEqual(calls, [
      'pick 10.0.0.1:50051',
      'inBackoff 10.0.0.1:50051',
      'pick 10.0.0.2:50051',
      'inBackoff 10.0.0.2:50051',
      'pick 10.0.0.3:50051',
      'inBackoff 10.0.0.3:50051',
      'pick 10.0.0.4:50051',
    ]);
  });

  it('after three re-picks, takes the last one even though it is backing off', () => {
    const { calls, route, pools } = setup([A, B, C, D, E], [A, B, C, D, E]);
    assert.equal(pickEndpoint(route, pools), D);
    assert.deepEqual(calls, [
      'pick 10.0.0.1:50051',
      'inBackoff 10.0.0.1:50051',
      'pick 10.0.0.2:50051',
      'inBackoff 10.0.0.2:50051',
      'pick 10.0.0.3:50051',
      'inBackoff 10.0.0.3:50051',
      'pick 10.0.0.4:50051',
    ]);
  });

  it('picks again around the endpoints that declined earlier attempts (asking no pool about them), and keeps one only when nothing else turns up', () => {
    const { calls, route, pools } = setup([A, B, C], []);
    assert.equal(pickEndpoint(route, pools, [A.address, B.address]), C);
    assert.deepEqual(calls, ['pick 10.0.0.1:50051', 'pick 10.0.0.2:50051', 'pick 10.0.0.3:50051', 'inBackoff 10.0.0.3:50051']);
    const alone = setup([A, A, A, A], []);
    assert.equal(pickEndpoint(alone.route, alone.pools, [A.address]), A);
  });

  it('may re-pick the same endpoint and keep it when nothing better turns up', () => {
    const { route, pools } = setup([A, A, A, A], [A]);
    assert.equal(pickEndpoint(route, pools), A);
  });

  it('returns null when a re-pick finds no endpoint, and stops there', () => {
    const { calls, route, pools } = setup([A, null], [A]);
    assert.equal(pickEndpoint(route, pools), null);
    assert.deepEqual(calls, ['pick 10.0.0.1:50051', 'inBackoff 10.0.0.1:50051', 'pick null']);
  });
});
