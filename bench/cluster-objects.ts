// Kubernetes objects of the discovery benchmark's cluster, shaped as a real cluster holds them (controller labels, owners, conditions).

import type { KubeObject } from '../test/support/kube-api-server.ts';

/** The EndpointSlice controller puts at most this many endpoints in one slice (its --max-endpoints-per-slice default). */
export const MAX_ENDPOINTS_PER_SLICE = 100;
export const TRIGGER_TIME_ANNOTATION = 'endpoints.kubernetes.io/last-change-trigger-time';
const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
const MANAGED_BY_LABEL = 'endpointslice.kubernetes.io/managed-by';
const CONTROLLER = 'endpointslice-controller.k8s.io';

export interface PortPlan {
  /** `grpc` makes the port gRPC to the agent; `http` and `metrics` do not. */
  name: 'grpc' | 'http' | 'metrics';
  port: number;
  targetPort: number;
}

export interface EndpointPlan {
  ip: string;
  pod: string;
  /** The Pod's uid, as targetRef carries it. */
  uid: string;
  node: string;
  zone: string;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
}

export interface ServicePlan {
  namespace: string;
  name: string;
  grpc: boolean;
  clusterIP: string;
  ports: PortPlan[];
  /** The pod-template-hash of the Deployment behind it: pod names are `${name}-${hash}-${suffix}`. */
  templateHash: string;
  replicaSetUid: string;
  /** Filled in once the Service is stored (slices name it as their owner). */
  uid: string;
}

export interface SlicePlan {
  service: ServicePlan;
  name: string;
  endpoints: EndpointPlan[];
  /** RFC 3339 with milliseconds, as the controller writes last-change-trigger-time. */
  triggerTime: string;
}

export function namespaceObject(name: string, inject: boolean): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name,
      labels: { 'kubernetes.io/metadata.name': name },
      ...(inject ? { annotations: { 'meshlite.io/inject': 'enabled' } } : {}),
    },
    spec: { finalizers: ['kubernetes'] },
    status: { phase: 'Active' },
  };
}

export function serviceObject(s: ServicePlan): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: s.name, namespace: s.namespace, labels: { app: s.name } },
    spec: {
      type: 'ClusterIP',
      clusterIP: s.clusterIP,
      clusterIPs: [s.clusterIP],
      ipFamilies: ['IPv4'],
      ipFamilyPolicy: 'SingleStack',
      internalTrafficPolicy: 'Cluster',
      sessionAffinity: 'None',
      selector: { app: s.name },
      ports: s.ports.map((p) => ({ name: p.name, protocol: 'TCP', port: p.port, targetPort: p.targetPort })),
    },
    status: { loadBalancer: {} },
  };
}

/** An EndpointSlice as the controller writes it: its labels, owner, trigger time, every Service port resolved. */
export function endpointSliceObject(slice: SlicePlan): KubeObject {
  const s = slice.service;
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: slice.name,
      generateName: `${s.name}-`,
      namespace: s.namespace,
      labels: { app: s.name, [MANAGED_BY_LABEL]: CONTROLLER, [SERVICE_NAME_LABEL]: s.name },
      annotations: { [TRIGGER_TIME_ANNOTATION]: slice.triggerTime },
      ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: s.name, uid: s.uid, controller: true, blockOwnerDeletion: true }],
    },
    addressType: 'IPv4',
    endpoints: slice.endpoints.map((e) => ({
      addresses: [e.ip],
      conditions: { ready: e.ready, serving: e.serving, terminating: e.terminating },
      targetRef: { kind: 'Pod', namespace: s.namespace, name: e.pod, uid: e.uid },
      nodeName: e.node,
      zone: e.zone,
    })),
    ports: s.ports.map((p) => ({ name: p.name, protocol: 'TCP', port: p.targetPort })),
  };
}

/** A running Pod of `service` on `endpoint.node`, owned by its ReplicaSet; `inject` adds the opt-in annotation. */
export function podObject(service: ServicePlan, endpoint: EndpointPlan, hostIP: string, inject: boolean): KubeObject {
  const ready = endpoint.ready ? 'True' : 'False';
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: endpoint.pod,
      generateName: `${service.name}-${service.templateHash}-`,
      namespace: service.namespace,
      labels: { app: service.name, 'pod-template-hash': service.templateHash },
      ...(inject ? { annotations: { 'meshlite.io/inject': 'enabled' } } : {}),
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${service.name}-${service.templateHash}`, uid: service.replicaSetUid, controller: true, blockOwnerDeletion: true },
      ],
    },
    spec: {
      nodeName: endpoint.node,
      serviceAccountName: 'default',
      restartPolicy: 'Always',
      containers: [
        {
          name: 'app',
          image: `registry.example.com/${service.name}:1.0.0`,
          ports: service.ports.map((p) => ({ name: p.name, containerPort: p.targetPort, protocol: 'TCP' })),
        },
      ],
    },
    status: {
      phase: 'Running',
      hostIP,
      hostIPs: [{ ip: hostIP }],
      podIP: endpoint.ip,
      podIPs: [{ ip: endpoint.ip }],
      conditions: [
        { type: 'Initialized', status: 'True' },
        { type: 'Ready', status: ready },
        { type: 'ContainersReady', status: ready },
        { type: 'PodScheduled', status: 'True' },
      ],
    },
  };
}
