// Where a request goes: the service a client asked for, with the picker of its current endpoints.

import type { Picker } from '../balancer/picker.ts';

export interface Route {
  /** The service key, `namespace/name:port`. */
  readonly key: string;
  /** The current picker snapshot; replaced (never mutated) when endpoints change. */
  readonly picker: Picker;
}

/** Looks routes up for the relay; backed by the balancer set. */
export interface RouteTable {
  /** By service key (explicit mode, from `:authority`). */
  routeForKey(key: string): Route | null;
  /** By an address a client dialled (transparent mode: ClusterIP:port or endpoint IP:port). */
  routeForAddress(ip: string, port: number): Route | null;
}
