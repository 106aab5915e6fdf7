// The relay's route table over a real balancer set: lookups by service key and by dialled address, and misses as null.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BalancerSet } from '../../agent/balancer/balancer-set.ts';
import { BalancerRoutes } from '../../agent/proxy/balancer-routes.ts';
import { EndpointRegistry } from '../../agent/registry/endpoint-registry.ts';
import type { EndpointSpec, ServiceSpec } from '../../agent/registry/endpoint.ts';

function endpoint(ip: string): EndpointSpec {
  return { address: `${ip}:8080`, host: ip, port: 8080, ready: true, serving: true, terminating: false };
}

function service(name: string, port: number, clusterIPs: string[], endpoints: EndpointSpec[]): ServiceSpec {
  return { key: `default/${name}:${port}`, namespace: 'default', name, port, clusterIPs, balancer: null, endpoints };
}

function setup() {
  const registry = new EndpointRegistry();
  registry.replaceAll([
    service('echo', 50051, ['10.96.0.10'], [endpoint('10.0.0.1')]),
    service('other', 9000, ['10.96.0.20'], [endpoint('10.0.0.2')]),
  ]);
  const balancers = new BalancerSet(registry, { defaultBalancer: 'round-robin', randomInt: () => 0 });
  return { registry, balancers, routes: new BalancerRoutes(balancers) };
}

describe('BalancerRoutes.routeForKey', () => {
  it('is the balancer of that key: its key and its live picker', () => {
    const { balancers, routes } = setup();
    const route = routes.routeForKey('default/echo:50051');
    assert.equal(route, balancers.get('default/echo:50051'));
    assert.equal(route?.key, 'default/echo:50051');
    assert.equal(route?.picker.pick()?.address, '10.0.0.1:8080');
    assert.equal(routes.routeForKey('default/other:9000'), balancers.get('default/other:9000'));
  });

  it('is null, not undefined, for a key with no balancer', () => {
    const { routes } = setup();
    assert.equal(routes.routeForKey('default/missing:50051'), null);
    assert.equal(routes.routeForKey('default/echo:50052'), null);
    assert.equal(routes.routeForKey(''), null);
  });

  it('follows the balancer set: a deleted service is no longer a route', () => {
    const { registry, routes } = setup();
    registry.remove('default/echo:50051');
    assert.equal(routes.routeForKey('default/echo:50051'), null);
  });
});

describe('BalancerRoutes.routeForAddress', () => {
  it('finds the service by its ClusterIP and service port', () => {
    const { balancers, routes } = setup();
    assert.equal(routes.routeForAddress('10.96.0.10', 50051), balancers.get('default/echo:50051'));
    assert.equal(routes.routeForAddress('10.96.0.20', 9000), balancers.get('default/other:9000'));
  });

  it('finds the service by an endpoint ip and endpoint port', () => {
    const { balancers, routes } = setup();
    assert.equal(routes.routeForAddress('10.0.0.1', 8080), balancers.get('default/echo:50051'));
    assert.equal(routes.routeForAddress('10.0.0.2', 8080), balancers.get('default/other:9000'));
  });

  it('is null, not undefined, for an unknown ip or a known ip on another port', () => {
    const { routes } = setup();
    assert.equal(routes.routeForAddress('10.96.0.99', 50051), null);
    assert.equal(routes.routeForAddress('10.96.0.10', 9000), null);
    assert.equal(routes.routeForAddress('10.0.0.1', 50051), null);
  });

  it('is null once the service is deleted', () => {
    const { registry, routes } = setup();
    registry.remove('default/echo:50051');
    assert.equal(routes.routeForAddress('10.96.0.10', 50051), null);
    assert.equal(routes.routeForAddress('10.0.0.1', 8080), null);
  });
});
