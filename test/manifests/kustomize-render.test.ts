// test/support/kustomize-render.ts on its own: what each feature renders, and that everything else is refused.
// (kubectl-parity.test.ts checks the same fixtures against kustomize itself where kubectl is installed.)

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type KubeObject, renderKustomization, sortLikeKustomize, splitImage } from '../support/kustomize-render.ts';
import { COMPONENT, COMPONENT_PATCH, DIGEST, type Files, HEADER, IMAGES, ORDER, PATCH, writeFixture } from './kustomize-fixtures.ts';

async function render(files: Files): Promise<KubeObject[]> {
  const { directory, dispose } = await writeFixture(files);
  try {
    return await renderKustomization(directory);
  } finally {
    await dispose();
  }
}

const ids = (objects: KubeObject[]) => objects.map((o) => `${o.kind} ${o.metadata.namespace ?? '-'}/${o.metadata.name}`);

type Container = { name: string; image: string };
type PodSpec = { containers?: Container[]; initContainers?: Container[] };
const images = (spec: PodSpec) => [...(spec.initContainers ?? []), ...(spec.containers ?? [])].map((c) => `${c.name}=${c.image}`);

describe('renderKustomization: resources', () => {
  it("takes files and directories' kustomizations, skips empty documents, and orders as kustomize does", async () => {
    assert.deepEqual(ids(await render(ORDER)), [
      'Namespace -/z',
      // Same kind: by namespace then name, with no namespace after every namespace.
      'ConfigMap a/b',
      'ConfigMap z/a',
      'ConfigMap -/c',
      // Kinds outside kustomize's list: by group_version_kind, the core group ("~G") last.
      'DaemonSet z/agent',
      'Widget -/w',
      'Pod z/p',
      'ValidatingWebhookConfiguration -/hook',
    ]);
  });

  it('sorts kinds of its list in the list order, before every other kind', () => {
    const object = (apiVersion: string, kind: string): KubeObject => ({ apiVersion, kind, metadata: { name: kind.toLowerCase() } });
    const sorted = sortLikeKustomize([
      object('apps/v1', 'DaemonSet'),
      object('v1', 'Service'),
      object('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding'),
      object('v1', 'ServiceAccount'),
      object('rbac.authorization.k8s.io/v1', 'ClusterRole'),
      object('v1', 'ResourceQuota'),
      object('v1', 'Namespace'),
    ]);
    assert.deepEqual(
      sorted.map((o) => o.kind),
      ['Namespace', 'ResourceQuota', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Service', 'DaemonSet'],
    );
  });
});

describe('renderKustomization: images', () => {
  it('sets the new name, tag or digest of every matching container and init container image, and nothing else', async () => {
    const objects = await render(IMAGES);
    const byKind = (kind: string) => objects.find((o) => o.kind === kind) as KubeObject & { spec: Record<string, unknown> };
    const daemonSet = byKind('DaemonSet').spec as { template: { spec: PodSpec } };
    assert.deepEqual(images(daemonSet.template.spec), [
      // A new tag replaces a digest too.
      'i=meshlite:0.2.0',
      'a=meshlite:0.2.0',
      'b=meshlite:0.2.0',
      // Another registry's "meshlite" is another image.
      'c=registry.example.com/meshlite:1',
      // A new name keeps the tag; a registry's port is not a tag.
      'e=registry.example.com:5000/team/agent:1',
    ]);
    const cronJob = byKind('CronJob').spec as { jobTemplate: { spec: { template: { spec: PodSpec } } } };
    assert.deepEqual(images(cronJob.jobTemplate.spec.template.spec), [`p=pinned@${DIGEST}`]);
    assert.deepEqual(images(byKind('Pod').spec as PodSpec), [`b=both:2@${DIGEST}`, 'm=meshlite:0.2.0']);
    assert.deepEqual(byKind('ConfigMap').data, { image: 'meshlite' }, 'only container images');
  });

  it('splits an image into name, tag and digest', () => {
    assert.deepEqual(splitImage('meshlite'), { name: 'meshlite', tag: '', digest: '' });
    assert.deepEqual(splitImage('reg:5000/a/meshlite'), { name: 'reg:5000/a/meshlite', tag: '', digest: '' });
    assert.deepEqual(splitImage('reg:5000/meshlite:1.2@sha256:ab'), { name: 'reg:5000/meshlite', tag: '1.2', digest: 'sha256:ab' });
  });
});

describe('renderKustomization: patches and components', () => {
  it('merges a patch into the object of its id: maps recursively, keyed lists by key in patch order, args replaced', async () => {
    const [daemonSet, ...rest] = await render(PATCH);
    assert.deepEqual(rest, []);
    assert.deepEqual(daemonSet, {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'd', namespace: 'n', labels: { a: '1', b: '2' } },
      spec: {
        template: {
          spec: {
            containers: [
              { name: 'zero', image: 'z' },
              {
                name: 'one',
                image: 'x',
                args: ['c'],
                env: [
                  { name: 'C', value: 'x' },
                  { name: 'D', value: '4' },
                  { name: 'A', value: 'y' },
                  { name: 'B', value: '2' },
                ],
                // Keyed by mountPath: /b keeps its place in the patch and takes the patch's volume name.
                volumeMounts: [
                  { name: 'v3', mountPath: '/b' },
                  { name: 'v4', mountPath: '/c' },
                  { name: 'v1', mountPath: '/a' },
                ],
              },
              { name: 'two', image: 'y' },
            ],
            volumes: [
              { name: 'v2', emptyDir: { medium: 'Memory' } },
              { name: 'v1', hostPath: { path: '/two', type: 'DirectoryOrCreate' } },
              { name: 'v0', emptyDir: {} },
            ],
          },
        },
      },
    });
  });

  it("adds a component's resources and applies its targeted patch to every DaemonSet, whatever the patch's name", async () => {
    const objects = await render(COMPONENT_PATCH);
    assert.deepEqual(ids(objects), ['ResourceQuota n/q', 'ConfigMap n/untouched', 'DaemonSet n/a', 'DaemonSet n/b']);
    const volumes = (o: KubeObject) => (o.spec as { template: { spec: { volumes: unknown[] } } }).template.spec.volumes;
    assert.deepEqual(volumes(objects[2]!), [
      { name: 'data', hostPath: { path: '/new', type: 'Directory' } },
      { name: 'other', emptyDir: {} },
    ]);
    assert.deepEqual(volumes(objects[3]!), [{ name: 'data', hostPath: { path: '/new' } }]);
  });
});

describe('renderKustomization refuses what it does not implement, or what kustomize refuses', () => {
  const DAEMONSET = 'apiVersion: apps/v1\nkind: DaemonSet\nmetadata: { name: d, namespace: n }\nspec:\n  template:\n    spec:\n';
  const WITH_VOLUME = `${DAEMONSET}      volumes: [{ name: v, hostPath: { path: /a } }]\n      tolerations: [{ operator: Exists }]\n`;
  const HOST_NETWORK = `${DAEMONSET}      hostNetwork: true\n`;
  const patched = (patch: string, target = ''): Files => ({
    'kustomization.yaml': `${HEADER}resources: [ds.yaml]\npatches:\n  - path: patch.yaml\n${target}`,
    'ds.yaml': WITH_VOLUME,
    'patch.yaml': patch,
  });
  const cases: Array<[string, Files, RegExp]> = [
    ['an unknown kustomization field', { 'kustomization.yaml': `${HEADER}namespace: other\nresources: []\n` }, /field "namespace" is not implemented/],
    ['labels', { 'kustomization.yaml': `${HEADER}commonLabels: { a: b }\n` }, /field "commonLabels" is not implemented/],
    ['a kustomization without kind', { 'kustomization.yaml': 'resources: []\n' }, /kind undefined where a Kustomization is expected/],
    ['a Component as a resource', { 'kustomization.yaml': `${HEADER}resources: [c]\n`, 'c/kustomization.yaml': COMPONENT }, /kind Component where a Kustomization/],
    ['a Kustomization as a component', { 'kustomization.yaml': `${HEADER}components: [c]\n`, 'c/kustomization.yaml': HEADER }, /kind Kustomization where a Component/],
    ['no kustomization file', { 'a.yaml': '' }, /no kustomization file/],
    ['two kustomization files', { 'kustomization.yaml': HEADER, 'kustomization.yml': HEADER }, /more than one kustomization file/],
    ['a remote resource', { 'kustomization.yaml': `${HEADER}resources: [https://example.com/x.yaml]\n` }, /remote resource/],
    ['a missing resource', { 'kustomization.yaml': `${HEADER}resources: [gone.yaml]\n` }, /resource gone.yaml does not exist/],
    ['a file outside the kustomization', { 'k/kustomization.yaml': `${HEADER}resources: [../ds.yaml]\n`, 'kustomization.yaml': `${HEADER}resources: [k]\n`, 'ds.yaml': DAEMONSET }, /is outside/],
    ['an overlay inside its base', { 'kustomization.yaml': `${HEADER}resources: [overlay]\n`, 'overlay/kustomization.yaml': `${HEADER}resources: [..]\n` }, /cycle/],
    ['the same object twice', { 'kustomization.yaml': `${HEADER}resources: [ds.yaml, copy]\n`, 'ds.yaml': DAEMONSET, 'copy/kustomization.yaml': `${HEADER}resources: [ds.yaml]\n`, 'copy/ds.yaml': DAEMONSET }, /already there/],
    ['a List', { 'kustomization.yaml': `${HEADER}resources: [l.yaml]\n`, 'l.yaml': 'apiVersion: v1\nkind: List\nmetadata: { name: l }\nitems: []\n' }, /List is not implemented/],
    ['an object without a name', { 'kustomization.yaml': `${HEADER}resources: [o.yaml]\n`, 'o.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n' }, /metadata.name is required/],
    ['YAML with errors', { 'kustomization.yaml': `${HEADER}resources: [o.yaml]\n`, 'o.yaml': 'a: [\n' }, /o.yaml document 0/],
    ['an unknown images field', { 'kustomization.yaml': `${HEADER}images: [{ name: a, newTag: "1", tagSuffix: x }]\n` }, /images field "tagSuffix"/],
    ['a numeric tag', { 'kustomization.yaml': `${HEADER}images: [{ name: a, newTag: 1 }]\n` }, /quote a numeric tag/],
    ['an images entry that changes nothing', { 'kustomization.yaml': `${HEADER}images: [{ name: a }]\n` }, /needs a name and a new name/],
    ['an inline patch', { 'kustomization.yaml': `${HEADER}patches: [{ patch: "{}" }]\n` }, /patches field "patch" is not implemented/],
    ['a patch target by name', patched(HOST_NETWORK, '    target: { kind: DaemonSet, name: d }\n'), /patch target field "name"/],
    ['a patch target that selects nothing', patched(HOST_NETWORK, '    target: { kind: Deployment }\n'), /selects no object/],
    ['a patch of a missing object', patched(HOST_NETWORK.replace('name: d', 'name: e')), /no object apps\/v1 DaemonSet n\/e to patch/],
    ['a patch without the namespace (kustomize finds no match)', patched(HOST_NETWORK.replace(', namespace: n', '')), /no object .* -\/d to patch/],
    ['$patch: delete', patched(`${DAEMONSET}      volumes: [{ name: v, $patch: delete }]\n`), /directive \$patch/],
    ['null (delete a field)', patched(`${DAEMONSET}      hostNetwork: null\n`), /null at \/spec\/template\/spec\/hostNetwork/],
    ['a list whose patch strategy it does not know (tolerations)', patched(`${DAEMONSET}      tolerations: [{ operator: Equal }]\n`), /merging the list .*tolerations/],
    ['a new volume source beside the old one', patched(`${DAEMONSET}      volumes: [{ name: v, emptyDir: {} }]\n`), /changes the source of volume v/],
    ['a mapping over a list', patched(`${DAEMONSET}      volumes: { v: {} }\n`), /volumes is a mapping in the patch, not in the object/],
  ];
  for (const [what, files, message] of cases) {
    it(what, async () => {
      await assert.rejects(render(files), message);
    });
  }
});
