// The resources the test Kubernetes API server serves: kinds, groups, URL paths, field selector labels, discovery documents.

export type ResourceName = 'namespaces' | 'services' | 'pods' | 'endpointslices';

/** Reads one field selector label from a stored object (without kind/apiVersion); a missing field reads as "". */
export type FieldGetter = (object: Readonly<Record<string, unknown>>) => string;

export interface ResourceInfo {
  readonly name: ResourceName;
  readonly singularName: string;
  readonly kind: string;
  readonly listKind: string;
  /** '' for the core group. */
  readonly group: string;
  /** What objects carry in `apiVersion`: "v1" or "discovery.k8s.io/v1". */
  readonly apiVersion: string;
  readonly namespaced: boolean;
  readonly shortNames: readonly string[];
  /** The field selector labels the real API server accepts for this resource; any other is a 400. */
  readonly fields: ReadonlyMap<string, FieldGetter>;
}

function fieldAt(label: string): FieldGetter {
  const path = label.split('.');
  // A boolean field (spec.hostNetwork) is rendered "true"/"false" by the API server's field set, absent as "false".
  const absent = label === 'spec.hostNetwork' ? 'false' : '';
  return (object) => {
    let value: unknown = object;
    for (const step of path) {
      if (value === null || typeof value !== 'object') return absent;
      value = (value as Record<string, unknown>)[step];
    }
    if (typeof value === 'boolean') return String(value);
    return typeof value === 'string' ? value : absent;
  };
}

function fields(namespaced: boolean, extra: readonly string[]): ReadonlyMap<string, FieldGetter> {
  // Every object has metadata.name; only namespaced ones have metadata.namespace (generic.ObjectMetaFieldsSet).
  const labels = ['metadata.name', ...(namespaced ? ['metadata.namespace'] : []), ...extra];
  return new Map(labels.map((label) => [label, fieldAt(label)]));
}

function resource(
  name: ResourceName,
  singularName: string,
  kind: string,
  group: string,
  namespaced: boolean,
  shortNames: readonly string[],
  extraFields: readonly string[],
): ResourceInfo {
  const apiVersion = group === '' ? 'v1' : `${group}/v1`;
  return {
    name,
    singularName,
    kind,
    listKind: `${kind}List`,
    group,
    apiVersion,
    namespaced,
    shortNames,
    fields: fields(namespaced, extraFields),
  };
}

export const RESOURCES: Readonly<Record<ResourceName, ResourceInfo>> = {
  namespaces: resource('namespaces', 'namespace', 'Namespace', '', false, ['ns'], ['status.phase']),
  services: resource('services', 'service', 'Service', '', true, ['svc'], []),
  // The pod field labels of k8s.io/kubernetes pkg/apis/core/v1/conversion.go that can matter to a node agent.
  pods: resource('pods', 'pod', 'Pod', '', true, ['po'], [
    'spec.nodeName',
    'spec.restartPolicy',
    'spec.schedulerName',
    'spec.serviceAccountName',
    'spec.hostNetwork',
    'status.phase',
    'status.podIP',
    'status.nominatedNodeName',
  ]),
  endpointslices: resource('endpointslices', 'endpointslice', 'EndpointSlice', 'discovery.k8s.io', true, [], []),
};

export const RESOURCE_NAMES: readonly ResourceName[] = Object.keys(RESOURCES) as ResourceName[];

/** A request path that names a resource collection or one object. */
export interface ResourceRoute {
  readonly resource: ResourceInfo;
  /** The namespace of a namespaced path; undefined for all namespaces (or a cluster-scoped resource). */
  readonly namespace: string | undefined;
  /** The object's name for a single-object path. */
  readonly name: string | undefined;
  /** The deprecated `/api/v1/watch/...` form: a watch whatever the query says. */
  readonly legacyWatch: boolean;
}

/** Parses `/api/v1/...` and `/apis/discovery.k8s.io/v1/...`; null when the path is not a served resource. */
export function parseResourcePath(pathname: string): ResourceRoute | null {
  let segments: string[];
  try {
    segments = pathname.split('/').filter((segment) => segment !== '').map((segment) => decodeURIComponent(segment));
  } catch {
    return null; // A malformed escape names nothing served: 404, as for any unknown path.
  }
  let group: string;
  let rest: string[];
  if (segments[0] === 'api' && segments[1] === 'v1') {
    group = '';
    rest = segments.slice(2);
  } else if (segments[0] === 'apis' && segments.length >= 3 && segments[2] === 'v1') {
    group = segments[1]!;
    rest = segments.slice(3);
  } else {
    return null;
  }
  const legacyWatch = rest[0] === 'watch';
  if (legacyWatch) rest = rest.slice(1);
  let namespace: string | undefined;
  // `/namespaces/{ns}/{resource}...` scopes a namespaced resource; `/namespaces` and `/namespaces/{name}` are the
  // cluster-scoped Namespace resource itself.
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  if (rest.length === 0 || rest.length > 2) return null;
  const info = RESOURCE_NAMES.map((name) => RESOURCES[name]).find((candidate) => candidate.name === rest[0]);
  if (info === undefined || info.group !== group) return null;
  if (namespace !== undefined && !info.namespaced) return null;
  const name = rest[1];
  // A namespaced object is only addressable inside its namespace.
  if (name !== undefined && info.namespaced && namespace === undefined) return null;
  return { resource: info, namespace, name, legacyWatch };
}

const SERVER_VERSION = {
  major: '1',
  minor: '33',
  gitVersion: 'v1.33.0-meshlite-test',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2025-01-01T00:00:00Z',
  goVersion: 'go1.24.0',
  compiler: 'gc',
  platform: 'linux/amd64',
};

function resourceList(group: string): unknown {
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: group === '' ? 'v1' : `${group}/v1`,
    resources: RESOURCE_NAMES.map((name) => RESOURCES[name])
      .filter((info) => info.group === group)
      .map((info) => ({
        name: info.name,
        singularName: info.singularName,
        namespaced: info.namespaced,
        kind: info.kind,
        // Only what this fixture implements; a real server also lists create, update, patch, delete.
        verbs: ['get', 'list', 'watch'],
        ...(info.shortNames.length > 0 ? { shortNames: info.shortNames } : {}),
      })),
  };
}

const DISCOVERY_GROUP = {
  name: 'discovery.k8s.io',
  versions: [{ groupVersion: 'discovery.k8s.io/v1', version: 'v1' }],
  preferredVersion: { groupVersion: 'discovery.k8s.io/v1', version: 'v1' },
};

/** The discovery documents (`/api`, `/apis`, `/version`, group and resource lists) for `pathname`, if it is one. */
export function discoveryDocument(pathname: string, serverAddress: string): unknown {
  switch (pathname.replace(/\/+$/, '')) {
    case '/version':
      return SERVER_VERSION;
    case '/api':
      return {
        kind: 'APIVersions',
        versions: ['v1'],
        serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
      };
    case '/apis':
      return { kind: 'APIGroupList', apiVersion: 'v1', groups: [DISCOVERY_GROUP] };
    case '/apis/discovery.k8s.io':
      return { kind: 'APIGroup', apiVersion: 'v1', ...DISCOVERY_GROUP };
    case '/api/v1':
      return resourceList('');
    case '/apis/discovery.k8s.io/v1':
      return resourceList('discovery.k8s.io');
    default:
      return undefined;
  }
}
