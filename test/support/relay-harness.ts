// Starts the relay and its listener on loopback with a fixed route table, for relay tests without discovery.

import type { AddressInfo } from 'node:net';
import { EndpointLoad } from '../../agent/balancer/endpoint-load.ts';
import type { BalancingPolicy } from '../../agent/balancer/picker.ts';
import { RoundRobinPolicy } from '../../agent/balancer/round-robin.ts';
import { AuthorityParser } from '../../agent/proxy/authority.ts';
import { type OriginalDestination, ProxyListener } from '../../agent/proxy/listener.ts';
import type { RelayObserver } from '../../agent/proxy/relay-observer.ts';
import { Relay } from '../../agent/proxy/relay.ts';
import type { Route, RouteTable } from '../../agent/proxy/route.ts';
import { type Clock, realClock } from '../../agent/vocabulary/clock.ts';

export const SERVICE_KEY = 'default/greeter:50051';
export const SERVICE_AUTHORITY = 'greeter.default.svc.cluster.local:50051';

class FixedRoutes implements RouteTable {
  route: Route | null = null;
  routeForKey(key: string): Route | null {
    return key === SERVICE_KEY ? this.route : null;
  }
  routeForAddress(): Route | null {
    return null;
  }
}

export interface Outcome {
  status: number;
  code: string | null;
}

export interface RelayHarness {
  port: number;
  relay: Relay;
  listener: ProxyListener;
  outcomes: Outcome[];
  loads: Map<string, EndpointLoad>;
  setEndpoints(addresses: string[]): void;
  close(): Promise<void>;
}

export interface RelayHarnessOptions {
  /** Stands in for interception: where every accepted connection "was going" (null: dialled directly). */
  originalDestination?: () => OriginalDestination | null;
  sniffTimeoutMs?: number;
  /** The relay's clock (deadlines, time left): a FakeTimers lets a test say exactly how much time passed. */
  clock?: Clock;
  /** Connections per endpoint (default 4); 1 makes a request wait for a stream of the one connection to end. */
  maxConnectionsPerEndpoint?: number;
}

export async function startRelay(
  addresses: string[],
  policy: BalancingPolicy = new RoundRobinPolicy(),
  options: RelayHarnessOptions = {},
): Promise<RelayHarness> {
  const routes = new FixedRoutes();
  const outcomes: Outcome[] = [];
  const observer: RelayObserver = {
    onExchangeFinished: (_exchange, status, code) => outcomes.push({ status, code }),
    onRequestRejected: (status, code) => outcomes.push({ status, code }),
    onUpstreamConnectionState: () => {},
    onTransparentRetry: () => {},
    onResponseStarted: () => {},
  };
  const relay = new Relay({
    routes,
    authority: new AuthorityParser('cluster.local'),
    clock: options.clock ?? realClock,
    random: Math.random,
    connectTimeoutMs: 2000,
    maxConnectionsPerEndpoint: options.maxConnectionsPerEndpoint ?? 4,
    streamHeadroom: 8,
    observer,
  });
  const loads = new Map<string, EndpointLoad>();
  const setEndpoints = (list: string[]): void => {
    const current = list.map((address) => loads.get(address) ?? new EndpointLoad(address));
    for (const load of current) loads.set(load.address, load);
    for (const address of [...loads.keys()]) {
      if (!list.includes(address)) {
        loads.delete(address);
        relay.drainEndpoint(address);
      }
    }
    routes.route = { key: SERVICE_KEY, picker: policy.createPicker(current) };
  };
  setEndpoints(addresses);
  const listener = new ProxyListener({
    relay,
    routes,
    originalDestination: options.originalDestination ?? (() => null),
    sniffTimeoutMs: options.sniffTimeoutMs ?? 1000,
    connectTimeoutMs: 2000,
    events: { onPassthroughError: () => {}, onOriginalDestinationError: () => {}, onConnectionOpened: () => {}, onConnectionClosed: () => {} },
  });
  const address: AddressInfo = await listener.listen('127.0.0.1', 0);
  return {
    port: address.port,
    relay,
    listener,
    outcomes,
    loads,
    setEndpoints,
    close: async () => {
      const drained = listener.drain(performance.now());
      listener.destroyAll();
      await drained;
      relay.close();
    },
  };
}
