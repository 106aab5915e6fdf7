// The RBAC manifests: exactly read access to what discovery watches, bound to the agent's ServiceAccount, nothing more.

import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';

const MANIFESTS = new URL('../../manifests/', import.meta.url);
const NAMESPACE = 'meshlite-system';
const NAME = 'meshlite';

type Manifest = Record<string, unknown> & {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
};

/** Every non-empty document of a file (kubectl skips empty ones too), refusing YAML with errors or warnings. */
async function load(fileName: string): Promise<Manifest[]> {
  const text = await readFile(new URL(fileName, MANIFESTS), 'utf8');
  const manifests: Manifest[] = [];
  parseAllDocuments(text).forEach((doc, i) => {
    assert.deepEqual(doc.errors, [], `${fileName} document ${i}`);
    assert.deepEqual(doc.warnings, [], `${fileName} document ${i}`);
    const value: unknown = doc.toJS();
    if (value === null) return;
    assert.ok(typeof value === 'object' && !Array.isArray(value), `${fileName} document ${i} is not a mapping`);
    manifests.push(value as Manifest);
  });
  return manifests;
}

function only(manifests: Manifest[], kind: string): Manifest {
  const found = manifests.filter((m) => m.kind === kind);
  assert.equal(found.length, 1, `exactly one ${kind}`);
  return found[0];
}

/** Every string anywhere in a value: where a wildcard could hide. */
function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (typeof value === 'object' && value !== null) return Object.entries(value).flatMap(([k, v]) => [k, ...strings(v)]);
  return [];
}

describe('manifests/rbac.yaml', () => {
  it('holds a ServiceAccount, a ClusterRole and its ClusterRoleBinding, in that order', async () => {
    const manifests = await load('rbac.yaml');
    assert.deepEqual(
      manifests.map((m) => `${m.apiVersion} ${m.kind} ${m.metadata.namespace ?? '-'}/${m.metadata.name}`),
      [
        `v1 ServiceAccount ${NAMESPACE}/${NAME}`,
        `rbac.authorization.k8s.io/v1 ClusterRole -/${NAME}`,
        `rbac.authorization.k8s.io/v1 ClusterRoleBinding -/${NAME}`,
      ],
    );
  });

  it('keeps the ServiceAccount token mounted: the agent authenticates with it', async () => {
    const account = only(await load('rbac.yaml'), 'ServiceAccount');
    assert.notEqual(account.automountServiceAccountToken, false);
  });

  it('grants exactly get, list and watch on services, pods, namespaces and endpointslices', async () => {
    const role = only(await load('rbac.yaml'), 'ClusterRole');
    assert.deepEqual(Object.keys(role).sort(), ['apiVersion', 'kind', 'metadata', 'rules'], 'no aggregationRule');
    const rules = role.rules as Array<Record<string, unknown>>;
    const grants: string[] = [];
    for (const rule of rules) {
      // resourceNames would narrow, nonResourceURLs would widen: neither has a place here.
      assert.deepEqual(Object.keys(rule).sort(), ['apiGroups', 'resources', 'verbs']);
      for (const group of rule.apiGroups as string[]) {
        for (const resource of rule.resources as string[]) {
          for (const verb of rule.verbs as string[]) grants.push(`${group === '' ? 'core' : group} ${resource} ${verb}`);
        }
      }
    }
    assert.deepEqual(grants.sort(), [
      'core namespaces get',
      'core namespaces list',
      'core namespaces watch',
      'core pods get',
      'core pods list',
      'core pods watch',
      'core services get',
      'core services list',
      'core services watch',
      'discovery.k8s.io endpointslices get',
      'discovery.k8s.io endpointslices list',
      'discovery.k8s.io endpointslices watch',
    ]);
    assert.equal(new Set(grants).size, grants.length, 'no grant listed twice');
    assert.deepEqual(strings(rules).filter((s) => s.includes('*')), [], 'no wildcard');
  });

  it('binds that ClusterRole to the ServiceAccount of the same file, and to nothing else', async () => {
    const manifests = await load('rbac.yaml');
    const account = only(manifests, 'ServiceAccount');
    const role = only(manifests, 'ClusterRole');
    const binding = only(manifests, 'ClusterRoleBinding');
    assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.metadata.name });
    assert.deepEqual(binding.subjects, [
      { kind: 'ServiceAccount', name: account.metadata.name, namespace: account.metadata.namespace },
    ]);
  });
});

describe('manifests/namespace.yaml', () => {
  it('creates the namespace of the ServiceAccount, at the Pod Security level a hostNetwork NET_ADMIN agent needs', async () => {
    const manifests = await load('namespace.yaml');
    assert.equal(manifests.length, 1);
    const [namespace] = manifests;
    assert.equal(`${namespace.apiVersion} ${namespace.kind} ${namespace.metadata.name}`, `v1 Namespace ${NAMESPACE}`);
    assert.equal(namespace.metadata.namespace, undefined);
    assert.equal(namespace.metadata.labels?.['pod-security.kubernetes.io/enforce'], 'privileged');
    assert.equal(only(await load('rbac.yaml'), 'ServiceAccount').metadata.namespace, namespace.metadata.name);
  });
});

describe('manifests/', () => {
  it('grants nothing outside rbac.yaml: no other Role, ClusterRole or binding in any manifest', async () => {
    const files = (await readdir(MANIFESTS)).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml')).sort();
    const rbacKinds = new Set(['Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding']);
    const found: string[] = [];
    for (const file of files) {
      for (const manifest of await load(file)) {
        if (rbacKinds.has(manifest.kind)) found.push(`${file} ${manifest.kind} ${manifest.metadata.name}`);
      }
    }
    assert.deepEqual(found, [`rbac.yaml ClusterRole ${NAME}`, `rbac.yaml ClusterRoleBinding ${NAME}`]);
  });
});
