import type { BalancerName } from '../vocabulary/balancer-names.ts';
// What meshlite keeps of each Kubernetes object it watches: small records projected from the API's JSON, never the whole object.


/** Annotations meshlite reads (on Pods, Namespaces and Services). */
export const ANNOTATIONS = {
  /** `enabled | disabled` on a Pod or its Namespace; the Pod's own value wins. */
  inject: 'meshlite.io/inject',
  /** `grpc` on a Service: every TCP port of it is gRPC, whatever its name or appProtocol. */
  protocol: 'meshlite.io/protocol',
  /** A balancing policy for every gRPC port of the Service (`p2c-ewma | least-request | round-robin`). */
  balancer: 'meshlite.io/balancer',
  /** Set by the EndpointSlice controller: when the change that produced this version of the slice happened. */
  lastChangeTriggerTime: 'endpoints.kubernetes.io/last-change-trigger-time',
} as const;

/** The label that ties an EndpointSlice to its Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/**
 * Identity and version, the part of `metadata` the informer cache needs (it files objects by namespace and name
 * and compares resourceVersion). Cluster-scoped objects (Namespaces) have namespace ''.
 */
export interface ObjectIdentity {
  name: string;
  namespace: string;
  resourceVersion: string;
}

/**
 * A record is either usable or carries the reason it is not: an invalid object is still filed under its identity
 * (so that its later deletion or correction is seen) but contributes nothing.
 */
export interface RecordBase {
  metadata: ObjectIdentity;
  /** Why the object was skipped (logged once with ML_KUBE_OBJECT_INVALID); null when it is usable. */
  invalid: string | null;
  /**
   * What was skipped or ignored in an object that stays usable (an endpoint whose address is not an IP, an unknown
   * balancer annotation), each naming its field; worth logging once per object version. The projections always set
   * it ([] when nothing was skipped; an invalid record has none, its `invalid` says it all); optional so that
   * records built by hand need not.
   */
  warnings?: readonly string[];
}

/** A Service port that carries gRPC (see docs/architecture.md, Discovery); other ports are not kept at all. */
export interface GrpcServicePort {
  /** The Service port's name, '' for the single unnamed port; EndpointSlice ports carry the same name. */
  name: string;
  /** The port clients dial on the ClusterIP. */
  port: number;
}

export interface ServiceRecord extends RecordBase {
  kind: 'Service';
  /** Normalised IPs (IPv6 lower-case, compressed); [] for a headless Service (`None`) or none at all. */
  clusterIPs: string[];
  /** Only the gRPC ports; [] for a Service with none (it then costs only its identity). */
  ports: GrpcServicePort[];
  /** From the balancer annotation; null when absent. */
  balancer: BalancerName | null;
}

export type SliceAddressType = 'IPv4' | 'IPv6';

/** One endpoint of a slice, with its conditions already resolved by the API's rules for absent values. */
export interface SliceEndpoint {
  /** Normalised IPs; Kubernetes puts exactly one here today, the field is a list for the future. */
  addresses: string[];
  ready: boolean;
  serving: boolean;
  terminating: boolean;
}

export interface SlicePort {
  /** '' when unnamed; matches GrpcServicePort.name. */
  name: string;
  port: number;
}

export interface EndpointSliceRecord extends RecordBase {
  kind: 'EndpointSlice';
  /** From the kubernetes.io/service-name label; null when absent (such a slice belongs to no Service). */
  serviceName: string | null;
  /** FQDN slices are recorded as invalid: meshlite dials IPs only. */
  addressType: SliceAddressType;
  /** TCP ports only. */
  ports: SlicePort[];
  endpoints: SliceEndpoint[];
  /** Epoch ms from the last-change-trigger-time annotation; null when absent or unparsable. */
  lastChangeTriggerTimeMs: number | null;
}

export type InjectSetting = 'enabled' | 'disabled';

export interface PodRecord extends RecordBase {
  kind: 'Pod';
  nodeName: string;
  /** status.podIPs (or status.podIP), normalised; [] until the pod has one. */
  ips: string[];
  /** Such a pod has the node's IP: it is never enrolled. */
  hostNetwork: boolean;
  /** Succeeded and Failed pods have given their IP back. */
  phase: string;
  /** The pod's own annotation; null when absent or any other value. */
  inject: InjectSetting | null;
}

export interface NamespaceRecord extends RecordBase {
  kind: 'Namespace';
  inject: InjectSetting | null;
}

export type KubeRecord = ServiceRecord | EndpointSliceRecord | PodRecord | NamespaceRecord;
