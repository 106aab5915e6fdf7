// Every object an operator can apply, checked against Kubernetes' schemas: each rendered kustomization (install,
// uninstall, each platform) and manifests/monitoring/. And the checks refuse what the API server would.

import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { type KubeObject, renderKustomization } from '../support/kustomize-render.ts';
import { unknownFields, validate } from './kube-schemas.ts';
import { MANIFESTS, type Variant, variants } from './platform-variants.ts';

const MONITORING = new URL('monitoring/', MANIFESTS);

async function monitoringObjects(): Promise<Array<[string, KubeObject]>> {
  const found: Array<[string, KubeObject]> = [];
  for (const name of (await readdir(MONITORING)).filter((f) => f.endsWith('.yaml')).sort()) {
    for (const doc of parseAllDocuments(await readFile(new URL(name, MONITORING), 'utf8'))) {
      assert.deepEqual(doc.errors, [], name);
      const value = doc.toJS() as KubeObject | null;
      if (value !== null) found.push([`manifests/monitoring/${name}`, value]);
    }
  }
  return found;
}

let all: Variant[] = [];
let dispose = async () => {};
/** [where it comes from, the object], for every object of every rendering and of manifests/monitoring/. */
const applied: Array<[string, KubeObject]> = [];

before(async () => {
  ({ all, dispose } = await variants());
  for (const variant of all) {
    for (const object of await renderKustomization(variant.directory)) applied.push([variant.name, object]);
  }
  applied.push(...(await monitoringObjects()));
});
after(() => dispose());

const name = (o: KubeObject) => `${o.kind} ${o.metadata.namespace ?? '-'}/${o.metadata.name}`;

describe('the manifests against the Kubernetes schemas', () => {
  it('checks every rendering (install, uninstall, each platform) and the ServiceMonitor', () => {
    assert.equal(all.length, 6);
    const kinds = new Set(applied.map(([, o]) => o.kind));
    for (const kind of ['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'DaemonSet', 'Service', 'ResourceQuota', 'ServiceMonitor']) {
      assert.ok(kinds.has(kind), `a ${kind} is checked`);
    }
  });

  it('every object is valid for its schema', () => {
    for (const [where, object] of applied) {
      assert.doesNotThrow(() => validate(object), `${where}: ${name(object)}`);
    }
  });

  it('no object has a field its schema does not know (the API server would refuse it)', () => {
    assert.deepEqual(
      unknownFields(applied.map(([, o]) => o)),
      [],
    );
  });
});

describe('the schema checks refuse', () => {
  const daemonSet = () => structuredClone(applied.find(([, o]) => o.kind === 'DaemonSet')?.[1]) as KubeObject & {
    spec: { template: { spec: Record<string, unknown> & { initContainers: Array<Record<string, unknown>>; containers: Array<Record<string, unknown>> } } };
  };

  it('a field of the wrong type', () => {
    const ds = daemonSet();
    ds.spec.template.spec.hostNetwork = 'true';
    assert.throws(() => validate(ds), /spec\/template\/spec\/hostNetwork must be boolean/);
    assert.match(unknownFields([ds]).join('\n'), /DaemonSet meshlite-system\/meshlite: Type 'string' is not assignable to type 'boolean | undefined'/);
  });

  it("a missing required field (a container's name)", () => {
    const ds = daemonSet();
    delete ds.spec.template.spec.containers[0]!.name;
    assert.throws(() => validate(ds), /containers\/0 must have required property name$/);
  });

  it("a bad native sidecar: the schema knows an init container's restartPolicy (Kubernetes 1.29 and later)", () => {
    const ds = daemonSet();
    assert.equal(ds.spec.template.spec.initContainers[0]!.restartPolicy, 'Always');
    ds.spec.template.spec.initContainers[0]!.restartPolicy = 1;
    assert.throws(() => validate(ds), /initContainers\/0\/restartPolicy must be string/);
  });

  it('a misspelt field, which only the unknown-field check sees', () => {
    const ds = daemonSet();
    const agent = ds.spec.template.spec.containers[0]!;
    agent.securityContext = { ...(agent.securityContext as object), readOnlyRootFilesytem: true };
    // The OpenAPI schemas allow properties they do not list, so validate() lets the typo through...
    assert.doesNotThrow(() => validate(ds));
    // ...where the API server's strict field validation would refuse the apply.
    assert.deepEqual(
      unknownFields([ds]).map((m) => m.replace(/ Did you mean .*$/, '')),
      [`DaemonSet meshlite-system/meshlite: Object literal may only specify known properties, and '"readOnlyRootFilesytem"' does not exist in type 'ISecurityContext'.`],
    );
  });

  it("a ServiceMonitor's interval that is not a duration string", () => {
    const monitor = structuredClone(applied.find(([, o]) => o.kind === 'ServiceMonitor')?.[1]) as KubeObject & { spec: { endpoints: Array<Record<string, unknown>> } };
    monitor.spec.endpoints[0]!.interval = 15;
    assert.throws(() => validate(monitor), /endpoints\/0\/interval must be string/);
  });

  it('a kind it has no schema for', () => {
    const object: KubeObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } };
    assert.throws(() => validate(object), /no schema for v1 ConfigMap/);
  });
});
