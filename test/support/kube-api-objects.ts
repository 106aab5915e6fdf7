// Kubernetes API objects as a cluster would hold them (Services, EndpointSlices), built for tests that drive the agent.

import type { KubeObject } from './kube-api-server.ts';

export interface ServiceObjectOptions {
  namespace?: string;
  clusterIP?: string;
  /** The Service port; its name is `grpc` so that the agent selects it, its targetPort the named port `grpc-api`. */
  port?: number;
  annotations?: Record<string, string>;
}

export function grpcServiceObject(name: string, options: ServiceObjectOptions = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: options.namespace ?? 'default', annotations: options.annotations ?? {} },
    spec: {
      type: 'ClusterIP',
      clusterIP: options.clusterIP ?? '10.96.0.10',
      clusterIPs: [options.clusterIP ?? '10.96.0.10'],
      selector: { app: name },
      ports: [{ name: 'grpc', protocol: 'TCP', port: options.port ?? 80, targetPort: 'grpc-api' }],
    },
  };
}

export interface SliceEndpointState {
  ip: string;
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
}

export interface SliceObjectOptions {
  namespace?: string;
  /** Epoch ms written as endpoints.kubernetes.io/last-change-trigger-time, as the EndpointSlice controller does. */
  triggerTimeMs?: number;
}

/** One slice of `service`, every endpoint on `port` (the resolved target port), conditions as given (defaults: ready). */
export function endpointSliceObject(name: string, service: string, port: number, endpoints: SliceEndpointState[], options: SliceObjectOptions = {}): KubeObject {
  const annotations: Record<string, string> = {};
  if (options.triggerTimeMs !== undefined) {
    annotations['endpoints.kubernetes.io/last-change-trigger-time'] = new Date(options.triggerTimeMs).toISOString();
  }
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name,
      namespace: options.namespace ?? 'default',
      labels: { 'kubernetes.io/service-name': service, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' },
      annotations,
    },
    addressType: 'IPv4',
    ports: [{ name: 'grpc', protocol: 'TCP', port }],
    endpoints: endpoints.map((endpoint, i) => ({
      addresses: [endpoint.ip],
      conditions: {
        ready: endpoint.ready ?? true,
        serving: endpoint.serving ?? endpoint.ready ?? true,
        terminating: endpoint.terminating ?? false,
      },
      nodeName: 'node-a',
      targetRef: { kind: 'Pod', namespace: options.namespace ?? 'default', name: `${service}-${i}` },
    })),
  };
}
