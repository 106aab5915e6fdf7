// Kubernetes' own schemas for every kind meshlite's manifests hold (kubernetes-models, generated from the API's
// OpenAPI; the Prometheus Operator's for the ServiceMonitor), and a check for fields those schemas do not know.

import { fileURLToPath } from 'node:url';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { ResourceQuota } from 'kubernetes-models/v1/ResourceQuota';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import ts from 'typescript';
import type { KubeObject } from '../support/kustomize-render.ts';

interface Schema {
  /** The model's validate() throws what the schema refuses: wrong types, missing required fields, bad formats. */
  model: new (data: never) => { validate(): void };
  /** Where the model's TypeScript interface is, for unknownFields. */
  module: string;
  type: string;
}

const SCHEMAS: Record<string, Schema> = {
  'v1 Namespace': { model: Namespace, module: 'kubernetes-models/v1/Namespace', type: 'INamespace' },
  'v1 ServiceAccount': { model: ServiceAccount, module: 'kubernetes-models/v1/ServiceAccount', type: 'IServiceAccount' },
  'v1 Service': { model: Service, module: 'kubernetes-models/v1/Service', type: 'IService' },
  'v1 ResourceQuota': { model: ResourceQuota, module: 'kubernetes-models/v1/ResourceQuota', type: 'IResourceQuota' },
  'rbac.authorization.k8s.io/v1 ClusterRole': {
    model: ClusterRole,
    module: 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole',
    type: 'IClusterRole',
  },
  'rbac.authorization.k8s.io/v1 ClusterRoleBinding': {
    model: ClusterRoleBinding,
    module: 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding',
    type: 'IClusterRoleBinding',
  },
  'apps/v1 DaemonSet': { model: DaemonSet, module: 'kubernetes-models/apps/v1/DaemonSet', type: 'IDaemonSet' },
  'monitoring.coreos.com/v1 ServiceMonitor': {
    model: ServiceMonitor,
    module: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor',
    type: 'IServiceMonitor',
  },
};

function schemaOf(object: KubeObject): Schema {
  const schema = SCHEMAS[`${object.apiVersion} ${object.kind}`];
  if (schema === undefined) throw new Error(`no schema for ${object.apiVersion} ${object.kind}: add its model to test/manifests/kube-schemas.ts`);
  return schema;
}

/** Throws what the object's schema refuses (an unknown kind included). */
export function validate(object: KubeObject): void {
  const Model = schemaOf(object).model;
  new Model(structuredClone(object) as never).validate();
}

/**
 * The fields no schema knows, one message each: the API server refuses them (kubectl's strict field validation), and
 * the OpenAPI schemas, open to extra properties, do not. Each object becomes a TypeScript literal of the model's
 * interface, whose excess-property check names them at any depth; type errors there are reported too.
 */
export function unknownFields(objects: KubeObject[]): string[] {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const file = `${root}test/manifests/__unknown_fields__.ts`;
  const imports = new Set<string>();
  const starts: number[] = [];
  let body = '';
  for (const [index, object] of objects.entries()) {
    const { module, type } = schemaOf(object);
    imports.add(`import type { ${type} } from '${module}';\n`);
    starts.push(body.length);
    body += `export const object${index}: ${type} = ${JSON.stringify(object, null, 1)};\n`;
  }
  const head = [...imports].join('');
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    lib: ['lib.es2022.d.ts'],
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists } = host;
  host.getSourceFile = (name, language, ...rest) =>
    name === file ? ts.createSourceFile(name, head + body, language) : getSourceFile.call(host, name, language, ...rest);
  host.fileExists = (name) => name === file || fileExists.call(host, name);
  const program = ts.createProgram([file], options, host);
  return ts.getPreEmitDiagnostics(program).map((diagnostic) => {
    const at = (diagnostic.start ?? 0) - head.length;
    const index = starts.findLastIndex((start) => start <= at);
    const object = objects[index];
    const where = object === undefined ? 'the check itself' : `${object.kind} ${object.metadata.namespace ?? '-'}/${object.metadata.name}`;
    return `${where}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, ' ')}`;
  });
}
