// One gRPC Service port's endpoints, merged across the Service's slices and kept per slice, so that a slice's change costs that slice.

import { type EndpointChanges, type EndpointSpec, endpointRank } from '../registry/endpoint.ts';
import type { EndpointSliceRecord } from './kube-objects.ts';
import { mergeSliceEndpoints, slicePortNamed } from './slice-endpoints.ts';

/** One slice's listing of an address: the slice, its place in the Service's slice order, the state it gives. */
interface Source {
  readonly slice: string;
  readonly order: number;
  readonly spec: EndpointSpec;
}

/** An address listed by at least one slice: every such listing, by slice order, and the state that wins. */
interface Listing {
  /** Ascending `order`; usually one (an address is in two slices only while the controller moves it). */
  sources: Source[];
  winner: EndpointSpec | null;
}

const NOTHING: ReadonlyMap<string, EndpointSpec> = new Map();

/**
 * The merge rule is buildSpec's of old, kept incrementally: an address listed by several slices takes the most usable
 * state (registry/endpoint.ts, endpointRank), and of equally usable ones the one of the slice first filed under the
 * Service (within one slice, the first listing); so the result depends on the slices and their order only, never on
 * the order of the events. `setSlice` compares a slice's new listing with its previous one and re-decides only the
 * addresses whose listing changed, so its cost is that slice's size, whatever the Service's.
 */
export class PortEndpoints {
  /** The Service port's name: the slice port of the same name carries it. */
  readonly name: string;
  /** Slice id → what it lists on this port, one spec per address; slices listing nothing here are left out. */
  private readonly bySlice = new Map<string, ReadonlyMap<string, EndpointSpec>>();
  private readonly listings = new Map<string, Listing>();

  constructor(name: string) {
    this.name = name;
  }

  /** Endpoints (distinct addresses) listed now. */
  get size(): number {
    return this.listings.size;
  }

  /**
   * Puts what `slice` lists (null: nothing any more) in place of what slice `id` listed before; `order` is its place
   * among the Service's slices. Returns the addresses whose merged state changed: listed in a new state (or newly),
   * or no longer listed by any slice.
   */
  setSlice(id: string, order: number, slice: EndpointSliceRecord | null): EndpointChanges {
    const before = this.bySlice.get(id) ?? NOTHING;
    const after = slice === null ? NOTHING : this.listedBy(slice);
    if (after.size === 0) this.bySlice.delete(id);
    else this.bySlice.set(id, after);
    const touched: string[] = [];
    for (const address of before.keys()) {
      if (after.has(address)) continue;
      this.withdraw(address, id);
      touched.push(address);
    }
    for (const [address, spec] of after) {
      const old = before.get(address);
      if (old !== undefined && sameState(old, spec)) continue;
      this.offer(address, { slice: id, order, spec });
      touched.push(address);
    }
    const listed: EndpointSpec[] = [];
    const unlisted: string[] = [];
    for (const address of touched) {
      const listing = this.listings.get(address) as Listing;
      if (listing.sources.length === 0) {
        this.listings.delete(address);
        unlisted.push(address);
        continue;
      }
      const winner = best(listing.sources);
      if (listing.winner !== null && sameState(listing.winner, winner)) continue;
      listing.winner = winner;
      listed.push(winner);
    }
    return { listed, unlisted };
  }

  /** Every endpoint in the order of first listing, going through `sliceIds` (the Service's slices) in order. */
  endpoints(sliceIds: Iterable<string>): EndpointSpec[] {
    const seen = new Set<string>();
    const endpoints: EndpointSpec[] = [];
    for (const id of sliceIds) {
      const listed = this.bySlice.get(id);
      if (listed === undefined) continue;
      for (const address of listed.keys()) {
        if (seen.has(address)) continue;
        seen.add(address);
        endpoints.push((this.listings.get(address) as Listing).winner as EndpointSpec);
      }
    }
    return endpoints;
  }

  /** What `slice` lists on this port, by address (its own duplicates merged by the same rule). */
  private listedBy(slice: EndpointSliceRecord): ReadonlyMap<string, EndpointSpec> {
    const port = slicePortNamed(slice, this.name);
    if (port === undefined || slice.endpoints.length === 0) return NOTHING;
    const listed = new Map<string, EndpointSpec>();
    mergeSliceEndpoints(listed, slice, port.port);
    return listed;
  }

  private offer(address: string, source: Source): void {
    let listing = this.listings.get(address);
    if (listing === undefined) {
      listing = { sources: [], winner: null };
      this.listings.set(address, listing);
    }
    const sources = listing.sources;
    const at = sources.findIndex((s) => s.slice === source.slice);
    if (at !== -1) {
      sources[at] = source;
      return;
    }
    let i = sources.length;
    while (i > 0 && sources[i - 1].order > source.order) i--;
    sources.splice(i, 0, source);
  }

  private withdraw(address: string, slice: string): void {
    const listing = this.listings.get(address);
    if (listing === undefined) return;
    const at = listing.sources.findIndex((s) => s.slice === slice);
    if (at !== -1) listing.sources.splice(at, 1);
  }
}

/** The most usable state; of equals, the first slice's (sources are in slice order). */
function best(sources: readonly Source[]): EndpointSpec {
  let winner = sources[0].spec;
  let rank = endpointRank(winner);
  for (let i = 1; i < sources.length && rank < 2; i++) {
    const spec = sources[i].spec;
    const r = endpointRank(spec);
    if (r > rank) {
      winner = spec;
      rank = r;
    }
  }
  return winner;
}

/** Two specs of one address: whether they say the same (what the registry compares). */
function sameState(a: EndpointSpec, b: EndpointSpec): boolean {
  return a.host === b.host && a.port === b.port && a.ready === b.ready && a.serving === b.serving && a.terminating === b.terminating;
}
