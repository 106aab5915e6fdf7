// The relay's route table, backed by the balancer set: a service balancer is a route (its key and live picker).

import type { BalancerSet } from '../balancer/balancer-set.ts';
import type { Route, RouteTable } from './route.ts';

export class BalancerRoutes implements RouteTable {
  private readonly balancers: BalancerSet;

  constructor(balancers: BalancerSet) {
    this.balancers = balancers;
  }

  routeForKey(key: string): Route | null {
    return this.balancers.get(key) ?? null;
  }

  routeForAddress(ip: string, port: number): Route | null {
    return this.balancers.forAddress(ip, port) ?? null;
  }
}
