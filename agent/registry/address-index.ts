// The registry's index of addresses: which service a client meant when it dialled a ClusterIP:port or an endpoint's ip:port.

import { normalizeIp } from '../vocabulary/ip-address.ts';
import type { ServiceSpec } from './endpoint.ts';

/** How a service claims an address: its ClusterIP:port, or one of its endpoints' ip:port. */
type ClaimKind = 'cluster' | 'endpoint';

interface AddressClaim {
  readonly key: string;
  readonly kind: ClaimKind;
}

interface ClaimedAddress {
  readonly ip: string;
  readonly port: number;
  readonly kind: ClaimKind;
}

/** An address became claimed (its first claim, by any service) or was given up (its last claim went). */
export type AddressListener = (ip: string, port: number, claimed: boolean) => void;

/** ip → port → the services that claim it; the registry keeps it equal to its stored specs. */
export class AddressIndex {
  /** ip → port → claims, ClusterIP claims first, then in the order services claimed the address. */
  private readonly byAddress = new Map<string, Map<number, AddressClaim[]>>();
  private listeners: AddressListener[] = [];

  /**
   * `listener` hears every address claimed now (as claimed), then each address as it becomes claimed or is given
   * up, synchronously, as the claims change: not when a second service claims an address or an endpoint changes
   * state. Returns the unsubscribe function.
   */
  subscribe(listener: AddressListener): () => void {
    this.listeners = [...this.listeners, listener];
    for (const [ip, ports] of this.byAddress) for (const port of ports.keys()) listener(ip, port, true);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  /** IPs with at least one claim (0 once every service is gone: nothing is left behind). */
  get size(): number {
    return this.byAddress.size;
  }

  /** The key of the service that holds `ip:port` (ClusterIP claims first, then the first service to list it). */
  keyAt(ip: string, port: number): string | undefined {
    let ports = this.byAddress.get(ip);
    if (ports === undefined) {
      // The exact form is what the kernel and the API report; other spellings are the rare path.
      const normalized = normalizeIp(ip);
      if (normalized === ip) return undefined;
      ports = this.byAddress.get(normalized);
      if (ports === undefined) return undefined;
    }
    const claims = ports.get(port);
    return claims === undefined ? undefined : claims[0].key;
  }

  /** Moves the claims of a service from its old to its new state, touching only addresses that changed. */
  reindex(old: ServiceSpec | undefined, next: ServiceSpec): void {
    const before = old === undefined ? new Map<string, CountedClaim>() : claimedAddresses(old);
    const after = claimedAddresses(next);
    for (const [id, { claimed, count }] of before) {
      for (let n = count - (after.get(id)?.count ?? 0); n > 0; n--) this.unclaim(next.key, claimed);
    }
    for (const [id, { claimed, count }] of after) {
      for (let n = count - (before.get(id)?.count ?? 0); n > 0; n--) this.claim(next.key, claimed);
    }
  }

  /** One endpoint's ip:port newly listed by service `key` (a patch: the service's other claims stand). */
  claimEndpoint(key: string, ip: string, port: number): void {
    this.claim(key, { ip, port, kind: 'endpoint' });
  }

  unclaimEndpoint(key: string, ip: string, port: number): void {
    this.unclaim(key, { ip, port, kind: 'endpoint' });
  }

  /** Takes away every claim of a service that is gone. */
  unindex(service: ServiceSpec): void {
    for (const { claimed, count } of claimedAddresses(service).values()) for (let n = count; n > 0; n--) this.unclaim(service.key, claimed);
  }

  private claim(key: string, { ip, port, kind }: ClaimedAddress): void {
    let ports = this.byAddress.get(ip);
    if (ports === undefined) {
      ports = new Map();
      this.byAddress.set(ip, ports);
    }
    let claims = ports.get(port);
    if (claims === undefined) {
      claims = [];
      ports.set(port, claims);
      for (const listener of this.listeners) listener(ip, port, true);
    }
    const claim: AddressClaim = { key, kind };
    if (kind === 'cluster') {
      // A ClusterIP belongs to exactly one service; it outranks a pod address some other service also lists.
      const firstEndpoint = claims.findIndex((c) => c.kind === 'endpoint');
      claims.splice(firstEndpoint === -1 ? claims.length : firstEndpoint, 0, claim);
    } else {
      claims.push(claim);
    }
  }

  private unclaim(key: string, { ip, port, kind }: ClaimedAddress): void {
    const ports = this.byAddress.get(ip);
    const claims = ports?.get(port);
    if (ports === undefined || claims === undefined) return;
    const index = claims.findIndex((c) => c.key === key && c.kind === kind);
    if (index !== -1) claims.splice(index, 1);
    if (claims.length > 0) return;
    ports.delete(port);
    if (ports.size === 0) this.byAddress.delete(ip);
    for (const listener of this.listeners) listener(ip, port, false);
  }
}

interface CountedClaim {
  readonly claimed: ClaimedAddress;
  /** How many of the service's endpoints claim it (two spellings of one IP, `10.1.0.5` and `::ffff:10.1.0.5`, are
   *  two endpoints of one host), each a claim of its own, as patches make them one endpoint at a time. */
  count: number;
}

/** Every address through which clients may reach the service, keyed by a string unique per (kind, ip, port). */
function claimedAddresses(service: ServiceSpec): Map<string, CountedClaim> {
  const claims = new Map<string, CountedClaim>();
  const add = (id: string, claimed: ClaimedAddress): void => {
    const counted = claims.get(id);
    if (counted === undefined) claims.set(id, { claimed, count: 1 });
    else counted.count++;
  };
  for (const ip of service.clusterIPs) add(`c ${ip} ${service.port}`, { ip, port: service.port, kind: 'cluster' });
  for (const endpoint of service.endpoints) add(`e ${endpoint.host} ${endpoint.port}`, { ip: endpoint.host, port: endpoint.port, kind: 'endpoint' });
  return claims;
}
