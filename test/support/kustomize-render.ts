// Renders a kustomization the way `kubectl kustomize` (kustomize v5) does, for exactly the features meshlite's
// manifests use, and refuses everything else: a test must never read something other than what a cluster would get.

import { readFile, stat } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

/** One Kubernetes object as rendered. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

type Mapping = Record<string, unknown>;
type KustomizationKind = 'Kustomization' | 'Component';

const API_VERSION: Record<KustomizationKind, string> = {
  Kustomization: 'kustomize.config.k8s.io/v1beta1',
  Component: 'kustomize.config.k8s.io/v1alpha1',
};
const KUSTOMIZATION_FILES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];
// Every field this renderer implements. Anything else (namespace, labels, generators, replacements...) is refused,
// since ignoring it would render something kustomize does not.
const FIELDS = new Set(['apiVersion', 'kind', 'resources', 'components', 'patches', 'images']);

/**
 * The objects `kubectl kustomize <directory>` prints, in its order: resources (files, and directories holding a
 * kustomization, recursively), then components, then patches, then images, then kustomize's legacy kind order.
 */
export async function renderKustomization(directory: URL): Promise<KubeObject[]> {
  return sortLikeKustomize(await build(resolve(fileURLToPath(directory)), 'Kustomization', [], []));
}

/** Applies the kustomization of `root` to `input` (empty for a Kustomization; what the includer has for a Component). */
async function build(root: string, kind: KustomizationKind, input: KubeObject[], chain: string[]): Promise<KubeObject[]> {
  // kustomize refuses a root that is, or contains, one it is already building: overlays cannot sit inside their base.
  for (const visited of chain) {
    if (visited === root || visited.startsWith(root + sep)) throw new Error(`cycle: ${root} contains ${visited}, which includes it`);
  }
  const [file, fields] = await readKustomization(root, kind);
  const inner = [...chain, root];
  let objects = input;
  for (const entry of stringList(fields, 'resources', file)) {
    if (/^[a-z]+:\/\/|^git@|^github\.com\//.test(entry)) throw new Error(`${file}: remote resource ${entry} is not implemented`);
    const path = resolve(root, entry);
    const info = await stat(path).catch(() => undefined);
    assert(info !== undefined, `${file}: resource ${entry} does not exist`);
    const added = info.isDirectory() ? await build(path, 'Kustomization', [], inner) : await loadObjects(inside(root, entry, file));
    objects = accumulate(objects, added, `${file}: resource ${entry}`);
  }
  for (const entry of stringList(fields, 'components', file)) objects = await build(resolve(root, entry), 'Component', objects, inner);
  for (const entry of list(fields, 'patches', file)) objects = await applyPatch(root, file, entry, objects);
  for (const entry of list(fields, 'images', file)) objects = applyImage(file, entry, objects);
  return objects;
}

async function readKustomization(root: string, kind: KustomizationKind): Promise<[string, Mapping]> {
  const found: string[] = [];
  for (const name of KUSTOMIZATION_FILES) {
    if (await stat(resolve(root, name)).then((s) => s.isFile(), () => false)) found.push(resolve(root, name));
  }
  assert(found.length === 1, `${root}: ${found.length === 0 ? 'no kustomization file' : `more than one kustomization file: ${found.join(', ')}`}`);
  const file = found[0]!;
  const documents = await loadDocuments(file);
  assert(documents.length === 1, `${file}: one document expected, found ${documents.length}`);
  const fields = documents[0]!;
  for (const key of Object.keys(fields)) assert(FIELDS.has(key), `${file}: field "${key}" is not implemented by this renderer`);
  // kustomize takes a missing kind as Kustomization; ours always say what they are, so a missing one is a mistake here.
  assert(fields.kind === kind, `${file}: kind ${String(fields.kind)} where a ${kind} is expected`);
  assert(fields.apiVersion === API_VERSION[kind], `${file}: apiVersion ${String(fields.apiVersion)}, not ${API_VERSION[kind]}`);
  return [file, fields];
}

/** Every non-empty YAML document of a file, each a mapping; YAML errors and warnings are refused. */
async function loadDocuments(file: string): Promise<Mapping[]> {
  const documents: Mapping[] = [];
  for (const [index, doc] of parseAllDocuments(await readFile(file, 'utf8')).entries()) {
    const problems = [...doc.errors, ...doc.warnings];
    assert(problems.length === 0, `${file} document ${index}: ${problems.map((p) => p.message).join('; ')}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    assert(isMapping(value), `${file} document ${index} is not a mapping`);
    documents.push(value);
  }
  return documents;
}

async function loadObjects(file: string): Promise<KubeObject[]> {
  return (await loadDocuments(file)).map((value, index) => {
    const metadata = value.metadata;
    const where = `${file} document ${index}`;
    assert(typeof value.apiVersion === 'string' && typeof value.kind === 'string', `${where}: apiVersion and kind are required`);
    assert(!value.kind.endsWith('List'), `${where}: ${value.kind} is not implemented`);
    assert(isMapping(metadata) && typeof metadata.name === 'string', `${where}: metadata.name is required`);
    assert(metadata.namespace === undefined || typeof metadata.namespace === 'string', `${where}: metadata.namespace is not a string`);
    return value as KubeObject;
  });
}

function accumulate(objects: KubeObject[], added: KubeObject[], where: string): KubeObject[] {
  const ids = new Set(objects.map(id));
  for (const object of added) {
    assert(!ids.has(id(object)), `${where}: ${id(object)} is already there`);
    ids.add(id(object));
  }
  return [...objects, ...added];
}

function id(object: KubeObject): string {
  return `${object.apiVersion} ${object.kind} ${object.metadata.namespace ?? '-'}/${object.metadata.name}`;
}

// --- patches: strategic merge, from a file, on the object of the same id or on every object a target selects

const TARGET_FIELDS = new Set(['group', 'version', 'kind']);
// Lists kustomize merges by key in the kinds below, from the Kubernetes schema; the keys are those of its
// x-kubernetes-patch-merge-key (volumeMounts merge by mountPath, not by name).
const MERGE_KEYS: Record<string, string> = { containers: 'name', initContainers: 'name', volumes: 'name', env: 'name', volumeMounts: 'mountPath' };
const REPLACED_LISTS = new Set(['args', 'command']);
const POD_TEMPLATE_KINDS = new Set(['Pod', 'DaemonSet', 'Deployment', 'StatefulSet', 'ReplicaSet', 'Job', 'CronJob']);

async function applyPatch(root: string, file: string, entry: unknown, objects: KubeObject[]): Promise<KubeObject[]> {
  assert(isMapping(entry), `${file}: a patches entry is not a mapping`);
  for (const key of Object.keys(entry)) assert(key === 'path' || key === 'target', `${file}: patches field "${key}" is not implemented`);
  assert(typeof entry.path === 'string', `${file}: a patch without a path (inline) is not implemented`);
  const patchFile = inside(root, entry.path, file);
  const documents = await loadDocuments(patchFile);
  assert(documents.length === 1, `${patchFile}: one patch per file, found ${documents.length}`);
  const patch = documents[0]!;
  refuseDirectives(patch, patchFile);
  const selected = entry.target === undefined ? sameId(objects, patch, patchFile) : selectedBy(objects, entry.target, file);
  // The id is the target's own: kustomize applies a selected patch whatever its apiVersion, kind and name say.
  const { apiVersion: _apiVersion, kind: _kind, metadata, ...rest } = patch;
  const { name: _name, namespace: _namespace, ...otherMetadata } = isMapping(metadata) ? metadata : {};
  const body: Mapping = Object.keys(otherMetadata).length > 0 ? { ...rest, metadata: otherMetadata } : rest;
  return objects.map((object) => (selected.includes(object) ? (merge(object, body, object.kind, patchFile) as KubeObject) : object));
}

function sameId(objects: KubeObject[], patch: Mapping, file: string): KubeObject[] {
  const metadata = isMapping(patch.metadata) ? patch.metadata : {};
  const found = objects.filter(
    (o) => o.apiVersion === patch.apiVersion && o.kind === patch.kind && o.metadata.name === metadata.name && o.metadata.namespace === metadata.namespace,
  );
  assert(found.length === 1, `${file}: no object ${String(patch.apiVersion)} ${String(patch.kind)} ${String(metadata.namespace ?? '-')}/${String(metadata.name)} to patch`);
  return found;
}

function selectedBy(objects: KubeObject[], target: unknown, file: string): KubeObject[] {
  assert(isMapping(target), `${file}: a patch target is not a mapping`);
  for (const key of Object.keys(target)) assert(TARGET_FIELDS.has(key), `${file}: patch target field "${key}" is not implemented`);
  const found = objects.filter((o) => {
    const [group, version] = groupVersion(o.apiVersion);
    return (target.kind ?? o.kind) === o.kind && (target.group ?? group) === group && (target.version ?? version) === version;
  });
  // Stricter than kustomize, which applies a patch that selects nothing silently: here that is a mistake.
  assert(found.length > 0, `${file}: patch target ${JSON.stringify(target)} selects no object`);
  return found;
}

/** SMP directives ($patch, $setElementOrder...) and null (delete) are not implemented: refused wherever they appear. */
function refuseDirectives(value: unknown, file: string, path = ''): void {
  assert(value !== null, `${file}: null at ${path} (delete) is not implemented`);
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) refuseDirectives(item, file, `${path}[${i}]`);
  }
  if (!isMapping(value)) return;
  for (const [key, item] of Object.entries(value)) {
    assert(!key.startsWith('$'), `${file}: directive ${key} at ${path || '/'} is not implemented`);
    refuseDirectives(item, file, `${path}/${key}`);
  }
}

/** Strategic merge of `patch` into `target`: maps recursively, keyed lists by key (patch order first), the rest replaced. */
function merge(target: unknown, patch: unknown, kind: string, file: string, path = ''): unknown {
  if (target === undefined) return structuredClone(patch);
  if (isMapping(patch)) {
    assert(isMapping(target), `${file}: ${path} is a mapping in the patch, not in the object`);
    const result: Mapping = { ...target };
    for (const [key, value] of Object.entries(patch)) result[key] = merge(target[key], value, kind, file, `${path}/${key}`);
    return result;
  }
  if (!Array.isArray(patch)) {
    assert(!isMapping(target) && !Array.isArray(target), `${file}: ${path} is a scalar in the patch, not in the object`);
    return patch;
  }
  assert(Array.isArray(target), `${file}: ${path} is a list in the patch, not in the object`);
  const field = path.slice(path.lastIndexOf('/') + 1);
  if (REPLACED_LISTS.has(field)) return structuredClone(patch);
  const key = MERGE_KEYS[field];
  assert(key !== undefined && POD_TEMPLATE_KINDS.has(kind), `${file}: merging the list ${path} of a ${kind} is not implemented`);
  const keyOf = (item: unknown, side: string): string => {
    assert(isMapping(item) && typeof item[key] === 'string', `${file}: an item of ${path} in the ${side} has no ${key}`);
    return item[key] as string;
  };
  const patched = new Set<string>();
  const merged = patch.map((item) => {
    const k = keyOf(item, 'patch');
    assert(!patched.has(k), `${file}: ${path} names ${k} twice`);
    patched.add(k);
    const existing = target.find((t) => keyOf(t, 'object') === k);
    // Volumes are a union (one source each); kustomize would keep the old source beside a new one, an invalid volume.
    if (field === 'volumes' && isMapping(existing)) {
      const keys = (m: Mapping) => Object.keys(m).sort().join(',');
      assert(keys(existing) === keys(item as Mapping), `${file}: the patch changes the source of volume ${k}`);
    }
    return merge(existing, item, kind, file, `${path}[${key}=${k}]`);
  });
  return [...merged, ...target.filter((t) => !patched.has(keyOf(t, 'object')))];
}

// --- images: name → newName, newTag, digest on every container and init container of a pod (template)

const IMAGE_FIELDS = new Set(['name', 'newName', 'newTag', 'digest']);
const POD_SPEC_PATHS = [['spec'], ['spec', 'template', 'spec'], ['spec', 'jobTemplate', 'spec', 'template', 'spec']];

function applyImage(file: string, entry: unknown, objects: KubeObject[]): KubeObject[] {
  assert(isMapping(entry), `${file}: an images entry is not a mapping`);
  for (const [key, value] of Object.entries(entry)) {
    assert(IMAGE_FIELDS.has(key), `${file}: images field "${key}" is not implemented`);
    assert(typeof value === 'string' && value !== '', `${file}: images ${key} must be a non-empty string (quote a numeric tag)`);
  }
  const { name, newName, newTag, digest } = entry as Record<string, string | undefined>;
  assert(name !== undefined && (newName ?? newTag ?? digest) !== undefined, `${file}: an images entry needs a name and a new name, tag or digest`);
  const replace = (image: string): string => {
    const parts = splitImage(image);
    if (parts.name !== name) return image;
    // A new tag or digest replaces both the old tag and the old digest.
    const tag = newTag ?? (digest === undefined ? parts.tag : '');
    const sum = digest ?? (newTag === undefined ? parts.digest : '');
    return `${newName ?? parts.name}${tag ? `:${tag}` : ''}${sum ? `@${sum}` : ''}`;
  };
  return objects.map((object) => {
    const copy = structuredClone(object);
    for (const path of POD_SPEC_PATHS) {
      const spec = path.reduce<unknown>((node, key) => (isMapping(node) ? node[key] : undefined), copy);
      if (!isMapping(spec)) continue;
      for (const containers of [spec.containers, spec.initContainers]) {
        if (!Array.isArray(containers)) continue;
        for (const container of containers) if (isMapping(container) && typeof container.image === 'string') container.image = replace(container.image);
      }
    }
    return copy;
  });
}

/** registry:5000/name:tag@sha256:… → name part, tag and digest (each '' when absent). */
export function splitImage(image: string): { name: string; tag: string; digest: string } {
  const at = image.indexOf('@');
  const withoutDigest = at >= 0 ? image.slice(0, at) : image;
  const colon = withoutDigest.lastIndexOf(':');
  const hasTag = colon > withoutDigest.lastIndexOf('/');
  return {
    name: hasTag ? withoutDigest.slice(0, colon) : withoutDigest,
    tag: hasTag ? withoutDigest.slice(colon + 1) : '',
    digest: at >= 0 ? image.slice(at + 1) : '',
  };
}

// --- output order: kustomize's "legacy" sort, which kubectl kustomize and kubectl apply -k use

const FIRST = [
  'Namespace', 'ResourceQuota', 'StorageClass', 'CustomResourceDefinition', 'ServiceAccount', 'PodSecurityPolicy', 'Role',
  'ClusterRole', 'RoleBinding', 'ClusterRoleBinding', 'ConfigMap', 'Secret', 'Endpoints', 'Service', 'LimitRange',
  'PriorityClass', 'PersistentVolume', 'PersistentVolumeClaim', 'Deployment', 'StatefulSet', 'CronJob', 'PodDisruptionBudget',
];
const LAST = ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration'];

/** Namespaces first, webhooks last, the rest by group_version_kind, then by namespace and name (byte order, as Go compares). */
export function sortLikeKustomize(objects: KubeObject[]): KubeObject[] {
  const rank = (kind: string): number => {
    const first = FIRST.indexOf(kind);
    return first >= 0 ? first - FIRST.length : LAST.indexOf(kind) + 1;
  };
  const gvk = (o: KubeObject): string => {
    const [group, version] = groupVersion(o.apiVersion);
    return `${group || '~G'}_${version || '~V'}_${o.kind || '~K'}`;
  };
  const sortKey = (o: KubeObject): string => `${gvk(o)}|${o.metadata.namespace || '~X'}|${o.metadata.name || '~N'}`;
  const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  return [...objects].sort((a, b) => rank(a.kind) - rank(b.kind) || compare(gvk(a), gvk(b)) || compare(sortKey(a), sortKey(b)));
}

// --- small helpers

function groupVersion(apiVersion: string): [string, string] {
  const slash = apiVersion.indexOf('/');
  return slash >= 0 ? [apiVersion.slice(0, slash), apiVersion.slice(slash + 1)] : ['', apiVersion];
}

/** A file named in a kustomization, refused outside its directory as kustomize's default load restrictor does. */
function inside(root: string, entry: string, file: string): string {
  const path = resolve(root, entry);
  assert(path.startsWith(root + sep), `${file}: ${entry} is outside ${root} (kustomize refuses it)`);
  return path;
}

function list(fields: Mapping, key: string, file: string): unknown[] {
  const value = fields[key] ?? [];
  assert(Array.isArray(value), `${file}: ${key} is not a list`);
  return value;
}

function stringList(fields: Mapping, key: string, file: string): string[] {
  const value = list(fields, key, file);
  for (const item of value) assert(typeof item === 'string', `${file}: an entry of ${key} is not a path`);
  return value as string[];
}

function isMapping(value: unknown): value is Mapping {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`kustomize-render: ${message}`);
}
