// API objects as a real cluster serves them (shapes from the Kubernetes API reference and kube-controller-manager), for the projection tests.

/** A deep copy, so that a test may change a fixture freely. */
export function copy<T>(value: T): T {
  return structuredClone(value);
}

const MANAGED_FIELDS = [
  {
    manager: 'kubectl-client-side-apply',
    operation: 'Update',
    apiVersion: 'v1',
    time: '2024-05-01T10:00:00Z',
    fieldsType: 'FieldsV1',
    fieldsV1: { 'f:metadata': { 'f:annotations': { '.': {} } }, 'f:spec': { 'f:ports': {} } },
  },
];

/** Dual-stack, three ports: gRPC by appProtocol (with a named targetPort), metrics over HTTP/1, DNS over UDP. */
export const DUAL_STACK_SERVICE = {
  kind: 'Service',
  apiVersion: 'v1',
  metadata: {
    name: 'greeter',
    namespace: 'shop',
    uid: '3f0c7a52-1d8e-4c1b-9a55-0e3c2b7d9f10',
    resourceVersion: '48213',
    creationTimestamp: '2024-05-01T10:00:00Z',
    labels: { app: 'greeter' },
    annotations: {
      'kubectl.kubernetes.io/last-applied-configuration': '{"apiVersion":"v1","kind":"Service","metadata":{"name":"greeter"}}\n',
      'meshlite.io/balancer': 'round-robin',
    },
    managedFields: MANAGED_FIELDS,
  },
  spec: {
    ports: [
      { name: 'api', protocol: 'TCP', appProtocol: 'kubernetes.io/h2c', port: 50051, targetPort: 'grpc' },
      { name: 'metrics', protocol: 'TCP', appProtocol: 'http', port: 9090, targetPort: 9090 },
      { name: 'dns', protocol: 'UDP', port: 53, targetPort: 53 },
    ],
    selector: { app: 'greeter' },
    clusterIP: '10.96.12.34',
    clusterIPs: ['10.96.12.34', 'fd00:10:96:0:0:0:0:1a2b'],
    type: 'ClusterIP',
    sessionAffinity: 'None',
    ipFamilies: ['IPv4', 'IPv6'],
    ipFamilyPolicy: 'PreferDualStack',
    internalTrafficPolicy: 'Cluster',
  },
  status: { loadBalancer: {} },
};

/** Headless (clusterIP None), ports recognised by name only. */
export const HEADLESS_SERVICE = {
  kind: 'Service',
  apiVersion: 'v1',
  metadata: { name: 'ledger', namespace: 'bank', resourceVersion: '901', labels: { app: 'ledger' } },
  spec: {
    ports: [
      { name: 'grpc', protocol: 'TCP', port: 7000, targetPort: 7000 },
      { name: 'h2c-internal', protocol: 'TCP', port: 7001, targetPort: 'internal' },
      { name: 'admin', protocol: 'TCP', port: 7002, targetPort: 7002 },
    ],
    selector: { app: 'ledger' },
    clusterIP: 'None',
    clusterIPs: ['None'],
    type: 'ClusterIP',
    sessionAffinity: 'None',
    ipFamilies: ['IPv4'],
    ipFamilyPolicy: 'SingleStack',
  },
  status: { loadBalancer: {} },
};

export const EXTERNAL_NAME_SERVICE = {
  kind: 'Service',
  apiVersion: 'v1',
  metadata: { name: 'payments', namespace: 'shop', resourceVersion: '77', annotations: { 'meshlite.io/protocol': 'grpc' } },
  spec: {
    type: 'ExternalName',
    externalName: 'payments.example.com',
    ports: [{ name: 'grpc', protocol: 'TCP', port: 443, targetPort: 443 }],
    sessionAffinity: 'None',
  },
  status: { loadBalancer: {} },
};

/** A web Service: nothing gRPC about it. */
export const WEB_SERVICE = {
  kind: 'Service',
  apiVersion: 'v1',
  metadata: { name: 'frontend', namespace: 'shop', resourceVersion: '555', annotations: { 'meshlite.io/balancer': 'least-request' } },
  spec: {
    ports: [
      { name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 },
      { name: 'https', protocol: 'TCP', port: 443, targetPort: 8443 },
    ],
    selector: { app: 'frontend' },
    clusterIP: '10.96.0.80',
    clusterIPs: ['10.96.0.80'],
    type: 'LoadBalancer',
    externalTrafficPolicy: 'Cluster',
    ipFamilies: ['IPv4'],
    ipFamilyPolicy: 'SingleStack',
  },
  status: { loadBalancer: { ingress: [{ ip: '203.0.113.10', ipMode: 'VIP' }] } },
};

function controllerEndpoint(ip: string, pod: string, node: string, zone: string, conditions: Record<string, boolean>) {
  return {
    addresses: [ip],
    conditions,
    targetRef: { kind: 'Pod', namespace: 'shop', name: pod, uid: `uid-${pod}` },
    nodeName: node,
    zone,
    hints: { forZones: [{ name: zone }] },
  };
}

/** What the EndpointSlice controller writes for DUAL_STACK_SERVICE's IPv4 family during a rollout. */
export const CONTROLLER_SLICE = {
  kind: 'EndpointSlice',
  apiVersion: 'discovery.k8s.io/v1',
  metadata: {
    name: 'greeter-7x2kq',
    generateName: 'greeter-',
    namespace: 'shop',
    uid: '9d1e2f4a-6b7c-4d8e-9f00-112233445566',
    resourceVersion: '48377',
    generation: 4,
    creationTimestamp: '2024-05-01T10:00:01Z',
    labels: {
      'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
      'kubernetes.io/service-name': 'greeter',
      app: 'greeter',
    },
    annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': '2024-05-01T10:02:03.456789Z' },
    ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: 'greeter', uid: '3f0c7a52-1d8e-4c1b-9a55-0e3c2b7d9f10', controller: true, blockOwnerDeletion: true }],
    managedFields: MANAGED_FIELDS,
  },
  addressType: 'IPv4',
  endpoints: [
    controllerEndpoint('10.244.1.17', 'greeter-5d8f7-abcde', 'node-a', 'eu-west-1a', { ready: true, serving: true, terminating: false }),
    controllerEndpoint('10.244.2.9', 'greeter-5d8f7-fghij', 'node-b', 'eu-west-1b', { ready: false, serving: true, terminating: true }),
    controllerEndpoint('10.244.3.4', 'greeter-6a1b2-klmno', 'node-c', 'eu-west-1c', { ready: false, serving: false, terminating: false }),
  ],
  ports: [
    { name: 'api', protocol: 'TCP', port: 8443, appProtocol: 'kubernetes.io/h2c' },
    { name: 'metrics', protocol: 'TCP', port: 9090, appProtocol: 'http' },
    { name: 'dns', protocol: 'UDP', port: 53 },
  ],
};

/** The IPv6 slice of the same Service, written by a hand-rolled controller that leaves out what it may. */
export const SPARSE_IPV6_SLICE = {
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name: 'greeter-v6', namespace: 'shop', resourceVersion: '48380', labels: { 'kubernetes.io/service-name': 'greeter' } },
  addressType: 'IPv6',
  endpoints: [{ addresses: ['FD00:10:244:1:0:0:0:11'] }, { addresses: ['fd00:10:244:2::9'], conditions: { terminating: true, ready: false } }],
  ports: [{ name: 'api', port: 8443 }],
};

export const CLIENT_POD = {
  kind: 'Pod',
  apiVersion: 'v1',
  metadata: {
    name: 'client-6c9f8-xk2pq',
    generateName: 'client-6c9f8-',
    namespace: 'shop',
    uid: 'a1b2c3d4-0000-4000-8000-000000000001',
    resourceVersion: '50111',
    labels: { app: 'client', 'pod-template-hash': '6c9f8' },
    annotations: { 'meshlite.io/inject': 'enabled' },
    ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'client-6c9f8', uid: 'rs-uid', controller: true, blockOwnerDeletion: true }],
  },
  spec: {
    containers: [{ name: 'app', image: 'registry.example.com/client:1.4.2', ports: [{ containerPort: 8080, protocol: 'TCP' }] }],
    restartPolicy: 'Always',
    terminationGracePeriodSeconds: 30,
    dnsPolicy: 'ClusterFirst',
    serviceAccountName: 'default',
    nodeName: 'node-a',
    schedulerName: 'default-scheduler',
  },
  status: {
    phase: 'Running',
    conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: '2024-05-01T10:05:00Z' }],
    hostIP: '192.168.1.10',
    hostIPs: [{ ip: '192.168.1.10' }],
    podIP: '10.244.1.30',
    podIPs: [{ ip: '10.244.1.30' }, { ip: 'fd00:10:244:1::1e' }],
    startTime: '2024-05-01T10:04:55Z',
  },
};

/** kube-proxy's pod: on the node's network. */
export const HOST_NETWORK_POD = {
  kind: 'Pod',
  apiVersion: 'v1',
  metadata: { name: 'kube-proxy-7h2kd', namespace: 'kube-system', resourceVersion: '880' },
  spec: { containers: [{ name: 'kube-proxy', image: 'registry.k8s.io/kube-proxy:v1.30.0' }], hostNetwork: true, nodeName: 'node-a' },
  status: { phase: 'Running', hostIP: '192.168.1.10', podIP: '192.168.1.10' },
};

/** Just created: not scheduled, no IP, no status beyond the phase. */
export const PENDING_POD = {
  kind: 'Pod',
  apiVersion: 'v1',
  metadata: { name: 'batch-1', namespace: 'jobs', resourceVersion: '12', annotations: { 'meshlite.io/inject': 'disabled' } },
  spec: { containers: [{ name: 'job', image: 'busybox' }] },
  status: { phase: 'Pending', qosClass: 'BestEffort' },
};

export const NAMESPACE = {
  kind: 'Namespace',
  apiVersion: 'v1',
  metadata: {
    name: 'shop',
    uid: 'ns-uid',
    resourceVersion: '312',
    labels: { 'kubernetes.io/metadata.name': 'shop' },
    annotations: { 'meshlite.io/inject': 'enabled' },
  },
  spec: { finalizers: ['kubernetes'] },
  status: { phase: 'Active' },
};
