// The service index: Service and EndpointSlice records → one ServiceSpec per gRPC Service port, kept in the registry.

import type { EndpointRegistry } from '../registry/endpoint-registry.ts';
import type { ServiceSpec } from '../registry/endpoint.ts';
import type { EndpointSliceRecord, ObjectIdentity, ServiceRecord } from './kube-objects.ts';
import { PortEndpoints } from './port-endpoints.ts';
import { RegistryCalls } from './registry-calls.ts';
import { portSpec, sameServiceFields, sameSpec } from './service-port-spec.ts';
import { serviceKey } from '../vocabulary/service-key.ts';

/** What the index holds, for the debug endpoint and gauges. */
export interface ServiceIndexView {
  /** Services held: every one whose current or last readable version is known. */
  services: number;
  /** Of those, the ones with at least one gRPC port. */
  grpcServices: number;
  /** Service keys this index keeps in the registry (one per gRPC port). */
  grpcServicePorts: number;
  /** EndpointSlices held (the ones that name a Service), gRPC or not. */
  slices: number;
  /** Of those, the ones whose Service is not known (yet, or any more). */
  slicesWaiting: number;
  /** Services whose latest version was invalid; `servicesOnLastGood` of them are still used as last read. */
  invalidServices: number;
  servicesOnLastGood: number;
  /** The same for EndpointSlices. */
  invalidSlices: number;
  slicesOnLastGood: number;
}

interface HeldService {
  /** The latest valid version. */
  record: ServiceRecord;
  /** The keys this Service has in the registry, in port order. */
  keys: readonly string[];
  /** The endpoints of each key's port, `ports[i]` for `keys[i]`. */
  ports: readonly PortEndpoints[];
}

/** A slice filed under its Service: `order` is its place among the Service's slices (the merge's tie-break). */
interface FiledSlice {
  record: EndpointSliceRecord;
  order: number;
}

const NONE: readonly string[] = Object.freeze([]);
const NO_PORTS: readonly PortEndpoints[] = Object.freeze([]);

/** Where the index keeps its specs: the registry, or the sync gate in front of it (discovery/sync-gate.ts). */
export type ServiceStore = Pick<EndpointRegistry, 'get' | 'upsert' | 'patch' | 'remove'>;

/**
 * Keeps the registry equal to: for every Service and each of its gRPC ports, one ServiceSpec keyed
 * `namespace/name:port` with the Service's clusterIPs and balancer, and as endpoints the union, over every
 * EndpointSlice labelled with the Service's name in its namespace, of the endpoints on the slice port of the same
 * name (one per address). Informer events may come in any order across the two resources: a slice whose Service is
 * not known is held and used when the Service arrives; a Service without slices has a spec with no endpoints (the
 * target is known, it just has nothing to send to).
 *
 * Every method returns the service keys whose spec it changed in the registry (upserted, patched or removed); for
 * slice events this is what "time from EndpointSlice change to new picker" is measured on, as the registry's
 * subscribers rebuild pickers synchronously. The registry is only called when a spec really changed.
 *
 * Cost: a slice event costs O(that slice's size), whatever the size of its Service: each gRPC port keeps what every
 * slice lists on it (port-endpoints.ts), the slice's new listing is compared with its previous one, and only the
 * endpoints whose merged state changed go to the registry, as a patch (registry.patch), which its subscribers apply
 * as deltas too. A Service event that changes its ports, clusterIPs or balancer rebuilds that Service's specs,
 * O(its slices' size); one that changes none of them (labels, other annotations) costs nothing more. A slice of a
 * Service without gRPC ports (most of them) costs one map insertion: the record is held, as an annotation change
 * can make the Service gRPC later and its endpoints must then be there at once. Records are the informer's own
 * compact objects, held by reference; a gRPC port also holds one EndpointSpec per slice listing of an address.
 *
 * Invalid records (`invalid !== null`): the last valid version of that object stays in use. The API server accepted
 * the object, so an invalid record says that meshlite cannot read this version, not that the Service or its pods
 * went away; treating it as a deletion would turn one unreadable field into withdrawn endpoints (ML_NO_ENDPOINT) or
 * a withdrawn Service for every client, while everything else keeps working either way. The risk taken instead is
 * that one slice's endpoint states go stale until a readable version or its deletion arrives: a pod that has gone
 * fails at connect, which the relay retries on another endpoint (nothing was sent yet). A deletion always applies,
 * whatever the last record was; an object never seen valid contributes nothing. The source logs
 * ML_KUBE_OBJECT_INVALID for each invalid version; describe() counts the objects in that state.
 *
 * resourceVersions are not compared. The API defines them as opaque and tells clients not to order them; a watch
 * delivers the events of one object in order, a relist delivers state at least as new as what is held, and the
 * informer already drops a version equal to the one it holds. Ordering them numerically would be wrong exactly when
 * it matters: after an etcd restore from a backup versions can go back, and an index that ignored "older" versions
 * would freeze those objects for good. Re-applying a version is harmless: specs are compared before any update.
 */
export class ServiceIndex {
  private readonly registry: ServiceStore;
  /** `namespace/name` of the Service → its latest valid version and registry keys. */
  private readonly services = new Map<string, HeldService>();
  /** `namespace/name` of the slice → its latest valid version; only slices that name a Service. */
  private readonly slices = new Map<string, EndpointSliceRecord>();
  /** `namespace/serviceName` → that Service's slices by slice id, in the order they were filed under it. */
  private readonly slicesByService = new Map<string, Map<string, FiledSlice>>();
  /** The next slice's `order`: slices filed later come after, as in the map above. */
  private nextOrder = 0;
  /** Ids of objects whose latest version is invalid. */
  private readonly invalidServices = new Set<string>();
  private readonly invalidSlices = new Set<string>();

  constructor(registry: ServiceStore) {
    this.registry = registry;
  }

  applyService(record: ServiceRecord): readonly string[] {
    const id = objectId(record.metadata);
    if (record.invalid !== null) {
      this.invalidServices.add(id);
      return NONE;
    }
    this.invalidServices.delete(id);
    let held = this.services.get(id);
    if (held === undefined) {
      held = { record, keys: NONE, ports: NO_PORTS };
      this.services.set(id, held);
    } else if (sameServiceFields(held.record, record)) {
      // Nothing the specs are made of changed (the registry holds them already).
      held.record = record;
      return NONE;
    } else {
      held.record = record;
    }
    return this.sync(held);
  }

  /** `record` is the last one the informer knew; only its identity is used. The Service's slices stay held (their
   *  own deletions follow), waiting in case the Service is created again. */
  deleteService(record: ServiceRecord): readonly string[] {
    const id = objectId(record.metadata);
    this.invalidServices.delete(id);
    const held = this.services.get(id);
    if (held === undefined) return NONE;
    this.services.delete(id);
    const changed: string[] = [];
    const calls = new RegistryCalls();
    for (const key of held.keys) {
      calls.run(() => this.registry.remove(key));
      changed.push(key);
    }
    calls.finish();
    return changed;
  }

  applySlice(record: EndpointSliceRecord): readonly string[] {
    const id = objectId(record.metadata);
    if (record.invalid !== null) {
      this.invalidSlices.add(id);
      return NONE;
    }
    this.invalidSlices.delete(id);
    const previous = this.slices.get(id);
    const previousOwner = previous === undefined ? null : ownerOf(previous);
    const owner = ownerOf(record);
    const moved = previousOwner !== null && previousOwner !== owner;
    if (moved) this.unfile(id, previousOwner);
    let filed: FiledSlice | null = null;
    if (owner === null) {
      // Without the service-name label a slice belongs to no Service; if the label comes back, so does the slice.
      this.slices.delete(id);
    } else {
      this.slices.set(id, record);
      filed = this.file(id, owner, record);
    }
    const left = moved ? this.syncSlice(previousOwner, id, null) : NONE;
    const joined = filed === null ? NONE : this.syncSlice(owner as string, id, filed);
    return left.length === 0 ? joined : [...left, ...joined];
  }

  /** `record` is the last one the informer knew; the slice held under its identity is what is taken away. */
  deleteSlice(record: EndpointSliceRecord): readonly string[] {
    const id = objectId(record.metadata);
    this.invalidSlices.delete(id);
    const previous = this.slices.get(id);
    if (previous === undefined) return NONE;
    this.slices.delete(id);
    const owner = ownerOf(previous) as string;
    this.unfile(id, owner);
    return this.syncSlice(owner, id, null);
  }

  describe(): ServiceIndexView {
    let grpcServices = 0;
    let grpcServicePorts = 0;
    for (const held of this.services.values()) {
      if (held.keys.length === 0) continue;
      grpcServices++;
      grpcServicePorts += held.keys.length;
    }
    let slicesWaiting = 0;
    for (const [owner, slices] of this.slicesByService) if (!this.services.has(owner)) slicesWaiting += slices.size;
    let servicesOnLastGood = 0;
    for (const id of this.invalidServices) if (this.services.has(id)) servicesOnLastGood++;
    let slicesOnLastGood = 0;
    for (const id of this.invalidSlices) if (this.slices.has(id)) slicesOnLastGood++;
    return {
      services: this.services.size,
      grpcServices,
      grpcServicePorts,
      slices: this.slices.size,
      slicesWaiting,
      invalidServices: this.invalidServices.size,
      servicesOnLastGood,
      invalidSlices: this.invalidSlices.size,
      slicesOnLastGood,
    };
  }

  /** Files `record` under its Service, in the place the slice already has there, or after the others. */
  private file(id: string, owner: string, record: EndpointSliceRecord): FiledSlice {
    let slices = this.slicesByService.get(owner);
    if (slices === undefined) {
      slices = new Map();
      this.slicesByService.set(owner, slices);
    }
    let filed = slices.get(id);
    if (filed === undefined) {
      filed = { record, order: this.nextOrder++ };
      slices.set(id, filed);
    } else {
      filed.record = record;
    }
    return filed;
  }

  private unfile(id: string, owner: string): void {
    const slices = this.slicesByService.get(owner);
    if (slices === undefined) return;
    slices.delete(id);
    if (slices.size === 0) this.slicesByService.delete(owner);
  }

  /** After slice `id` of `owner` changed (`filed` null: it is not the Service's any more): nothing to do unless that
   *  Service is known and has gRPC ports; otherwise each port's delta, as a patch of its key. */
  private syncSlice(owner: string, id: string, filed: FiledSlice | null): readonly string[] {
    const held = this.services.get(owner);
    if (held === undefined || held.ports.length === 0) return NONE;
    const changed: string[] = [];
    const calls = new RegistryCalls();
    for (let i = 0; i < held.ports.length; i++) {
      const key = held.keys[i];
      const port = held.ports[i];
      const changes = port.setSlice(id, filed?.order ?? 0, filed?.record ?? null);
      if (changes.listed.length === 0 && changes.unlisted.length === 0) continue;
      // A key the store does not hold (it cannot happen while the index is its only writer) is put there whole.
      calls.run(() => this.registry.patch(key, changes) || this.registry.upsert(this.specOf(held, i)));
      changed.push(key);
    }
    calls.finish();
    return changed;
  }

  /** The spec of the i-th port of `held`, complete. */
  private specOf(held: HeldService, i: number): ServiceSpec {
    const record = held.record;
    const owner = `${record.metadata.namespace}/${record.metadata.name}`;
    const sliceIds = this.slicesByService.get(owner)?.keys() ?? [];
    const port = record.ports.find((p) => p.name === held.ports[i].name) as (typeof record.ports)[number];
    return portSpec(record, port, held.ports[i].endpoints(sliceIds));
  }

  /** Brings the registry to the specs of `held`: removes keys of ports that are gone, upserts changed specs. A port
   *  whose key and name stay keeps its endpoints; a new one is filled from the Service's slices. */
  private sync(held: HeldService): readonly string[] {
    const record = held.record;
    if (record.ports.length === 0 && held.keys.length === 0) return NONE;
    const owner = `${record.metadata.namespace}/${record.metadata.name}`;
    const slices = this.slicesByService.get(owner);
    const keys: string[] = [];
    const ports: PortEndpoints[] = [];
    const specs: ServiceSpec[] = [];
    for (const port of record.ports) {
      const key = serviceKeyOf(record, port.port);
      // The API rejects two ports with one number; should such a record come anyway, the first port keeps the key.
      if (keys.includes(key)) continue;
      const at = held.keys.indexOf(key);
      let endpoints = at === -1 ? undefined : held.ports[at];
      if (endpoints === undefined || endpoints.name !== port.name) {
        endpoints = new PortEndpoints(port.name);
        if (slices !== undefined) for (const [id, filed] of slices) endpoints.setSlice(id, filed.order, filed.record);
      }
      keys.push(key);
      ports.push(endpoints);
      specs.push(portSpec(record, port, endpoints.endpoints(slices?.keys() ?? [])));
    }
    const changed: string[] = [];
    const calls = new RegistryCalls();
    // Removals first: a renumbered port's endpoints are then claimed in the address index by the new key at once.
    for (const key of held.keys) {
      if (keys.includes(key)) continue;
      calls.run(() => this.registry.remove(key));
      changed.push(key);
    }
    held.keys = keys;
    held.ports = ports;
    for (const spec of specs) {
      if (sameSpec(this.registry.get(spec.key), spec)) continue;
      calls.run(() => this.registry.upsert(spec));
      changed.push(spec.key);
    }
    calls.finish();
    return changed;
  }
}

function serviceKeyOf(record: ServiceRecord, port: number): string {
  return serviceKey(record.metadata.namespace, record.metadata.name, port);
}

function objectId(metadata: ObjectIdentity): string {
  return `${metadata.namespace}/${metadata.name}`;
}

/** The id of the Service a slice belongs to, or null when it names none. */
function ownerOf(slice: EndpointSliceRecord): string | null {
  return slice.serviceName === null ? null : `${slice.metadata.namespace}/${slice.serviceName}`;
}
