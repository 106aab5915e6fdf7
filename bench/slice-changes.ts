// EndpointSlice changes of gRPC Services as the controller makes them: a pod's readiness flips, a pod comes, a pod goes.

import { MAX_ENDPOINTS_PER_SLICE, type SlicePlan } from './cluster-objects.ts';
import type { ClusterPlan } from './cluster-plan.ts';

export type ChangeKind = 'flip-ready' | 'add-endpoint' | 'remove-endpoint';

export interface SliceChange {
  kind: ChangeKind;
  slice: SlicePlan;
  /** The agent's key of the changed Service port: `namespace/name:port`. */
  serviceKey: string;
  /** `ip:targetPort` of the endpoint the change is about. */
  address: string;
  /** What /debug/endpoints shows once the change reached the balancer: the endpoint gone, or its ready condition. */
  expect: { present: false } | { present: true; ready: boolean };
}

/** Addresses of endpoints added by changes: 10.127.0.0/16, outside every node's pod CIDR. */
const ADDED_PREFIX = '10.127';

export class SliceChanger {
  private readonly plan: ClusterPlan;
  private readonly grpcSlices: SlicePlan[];
  private added = 0;

  constructor(plan: ClusterPlan) {
    this.plan = plan;
    this.grpcSlices = plan.slices.filter((slice) => slice.service.grpc);
    if (this.grpcSlices.length === 0) throw new Error('the cluster has no gRPC EndpointSlice to change');
  }

  /**
   * Draws the next change and applies it to its slice's plan, stamping `triggerTime` (RFC 3339 with milliseconds,
   * as the controller writes it); the caller writes the slice to the API server. Half flip readiness, a quarter add
   * a pod, a quarter remove one; a full slice flips instead of adding, a slice of one flips instead of removing.
   */
  next(triggerTime: string): SliceChange {
    const random = this.plan.random;
    const slice = this.grpcSlices[Math.floor(random() * this.grpcSlices.length)];
    const draw = random();
    let kind: ChangeKind = draw < 0.5 ? 'flip-ready' : draw < 0.75 ? 'add-endpoint' : 'remove-endpoint';
    if (kind === 'add-endpoint' && slice.endpoints.length >= MAX_ENDPOINTS_PER_SLICE) kind = 'flip-ready';
    if (kind === 'remove-endpoint' && slice.endpoints.length <= 1) kind = 'flip-ready';
    const grpcPort = slice.service.ports.find((p) => p.name === 'grpc');
    if (grpcPort === undefined) throw new Error(`${slice.service.name} has no grpc port`);
    const serviceKey = `${slice.service.namespace}/${slice.service.name}:${grpcPort.port}`;
    slice.triggerTime = triggerTime;
    if (kind === 'add-endpoint') {
      const n = this.added++;
      const node = this.plan.nodeAt(1 + Math.floor(random() * (this.plan.shape.nodes - 1)));
      const endpoint = {
        ip: `${ADDED_PREFIX}.${(n >> 8) & 255}.${n & 255}`,
        pod: `${slice.service.name}-${slice.service.templateHash}-${this.plan.names.suffix(5)}`,
        uid: this.plan.names.uid(),
        node: node.name,
        zone: node.zone,
        ready: true,
        serving: true,
        terminating: false,
      };
      slice.endpoints.push(endpoint);
      return { kind, slice, serviceKey, address: `${endpoint.ip}:${grpcPort.targetPort}`, expect: { present: true, ready: true } };
    }
    let index = Math.floor(random() * slice.endpoints.length);
    // A terminating pod does not become ready again: flip the next one that is not terminating.
    for (let step = 0; kind === 'flip-ready' && step < slice.endpoints.length && slice.endpoints[index].terminating; step++) {
      index = (index + 1) % slice.endpoints.length;
    }
    const endpoint = slice.endpoints[index];
    const address = `${endpoint.ip}:${grpcPort.targetPort}`;
    if (kind === 'remove-endpoint') {
      slice.endpoints.splice(index, 1);
      return { kind, slice, serviceKey, address, expect: { present: false } };
    }
    // A pod that fails its readiness probe is neither ready nor serving; one that passes again is both.
    const ready = !endpoint.ready;
    slice.endpoints[index] = { ...endpoint, ready, serving: ready, terminating: false };
    return { kind, slice, serviceKey, address, expect: { present: true, ready } };
  }
}
