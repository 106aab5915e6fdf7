// The platform components (manifests/platforms/): on GKE and k3s the DaemonSets mount the platform's CNI directories,
// the installer, the uninstall and `meshlite check` still work in the mounted paths, and nothing else changes.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { cniDirectoriesFrom } from '../../agent/preflight/cni-check.ts';
import { type KubeObject, renderKustomization } from '../support/kustomize-render.ts';
import { kustomizationsIn, PLATFORM_CNI, PLATFORM_COMPONENTS, PLATFORMS, type Platform, type Variant, variants } from './platform-variants.ts';

interface Container {
  name: string;
  env?: Array<{ name: string; value?: string }>;
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
}
interface Volume {
  name: string;
  hostPath?: { path: string; type?: string };
}
interface DaemonSet extends KubeObject {
  spec: { template: { spec: { priorityClassName?: string; initContainers: Container[]; containers: Container[]; volumes: Volume[] } } };
}

// GKE's largest cluster (65,000 nodes), two agent pods on each during an upgrade.
const GKE_MOST_AGENT_PODS = 2 * 65_000;

let all: Variant[] = [];
let dispose = async () => {};
const rendered = new Map<string, KubeObject[]>();

before(async () => {
  ({ all, dispose } = await variants());
  for (const variant of all) rendered.set(variant.name, await renderKustomization(variant.directory));
});
after(() => dispose());

function objects(platform: Platform | null, part: 'install' | 'uninstall'): KubeObject[] {
  const variant = all.find((v) => v.platform === platform && v.part === part) as Variant;
  return rendered.get(variant.name) as KubeObject[];
}

function daemonSet(platform: Platform | null, part: 'install' | 'uninstall'): DaemonSet {
  const found = objects(platform, part).filter((o) => o.kind === 'DaemonSet');
  assert.equal(found.length, 1);
  return found[0] as DaemonSet;
}

function environment(container: Container): Record<string, string> {
  return Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value ?? '']));
}

/** The host directory behind a path as a container sees it: the volume mounted exactly there, and its hostPath. */
function hostDirectory(ds: DaemonSet, container: Container, path: string): string | undefined {
  const mount = container.volumeMounts?.find((m) => m.mountPath === path);
  return ds.spec.template.spec.volumes.find((v) => v.name === mount?.name)?.hostPath?.path;
}

describe('manifests/ kustomizations', () => {
  it('are the install and the uninstall, and every component is one a platform adds (so each is rendered and tested)', async () => {
    const found = await kustomizationsIn();
    assert.deepEqual(
      found.filter((k) => k.kind === 'Kustomization').map((k) => k.path),
      ['', 'uninstall'],
    );
    // A platform's install component, and the one of its uninstall (which the install's includes).
    const added = PLATFORMS.flatMap((p) => [PLATFORM_COMPONENTS[p].install, PLATFORM_COMPONENTS[p].uninstall.replace(/^\.\.\//, '')]);
    assert.deepEqual(
      found.filter((k) => k.kind === 'Component').map((k) => k.path),
      added.sort(),
    );
    assert.deepEqual(found.filter((k) => k.kind !== 'Kustomization' && k.kind !== 'Component'), []);
  });
});

for (const platform of PLATFORMS) {
  const { binDir, confDir } = PLATFORM_CNI[platform];

  describe(`on ${platform}`, () => {
    it(`the agent's DaemonSet mounts ${binDir} and ${confDir}, where the installer and \`meshlite check\` work`, () => {
      const ds = daemonSet(platform, 'install');
      const installer = ds.spec.template.spec.initContainers.find((c) => c.name === 'cni-installer') as Container;
      const agent = ds.spec.template.spec.containers.find((c) => c.name === 'agent') as Container;
      const installs = cniDirectoriesFrom(environment(installer));
      assert.equal(hostDirectory(ds, installer, installs.binDir), binDir, `the installer's ${installs.binDir}`);
      assert.equal(hostDirectory(ds, installer, installs.confDir), confDir, `the installer's ${installs.confDir}`);
      // `meshlite check` runs in the agent's container with its environment and reads the same host directories.
      const checks = cniDirectoriesFrom(environment(agent));
      assert.equal(hostDirectory(ds, agent, checks.binDir), binDir, `the agent's ${checks.binDir}`);
      assert.equal(hostDirectory(ds, agent, checks.confDir), confDir, `the agent's ${checks.confDir}`);
    });

    it(`the uninstall's DaemonSet removes the plugin from ${binDir} and ${confDir}`, () => {
      const ds = daemonSet(platform, 'uninstall');
      const remover = ds.spec.template.spec.initContainers.find((c) => c.name === 'remove-cni-plugin') as Container;
      const removes = cniDirectoriesFrom(environment(remover));
      assert.equal(hostDirectory(ds, remover, removes.binDir), binDir);
      assert.equal(hostDirectory(ds, remover, removes.confDir), confDir);
    });

    it('changes nothing else: only the host paths that differ, which must then exist on the node', () => {
      for (const part of ['install', 'uninstall'] as const) {
        const expected = structuredClone(objects(null, part));
        const ds = expected.find((o) => o.kind === 'DaemonSet') as DaemonSet;
        for (const volume of ds.spec.template.spec.volumes) {
          const path = volume.name === 'cni-bin' ? binDir : volume.name === 'cni-conf' ? confDir : volume.hostPath?.path;
          // Directory: where it is missing (another platform, an older k3s) the pod waits with the kubelet's reason
          // rather than install the plugin where the runtime never looks.
          if (path !== volume.hostPath?.path) volume.hostPath = { path: path as string, type: 'Directory' };
        }
        const extra = objects(platform, part).filter((o) => o.kind === 'ResourceQuota');
        assert.deepEqual(
          objects(platform, part).filter((o) => o.kind !== 'ResourceQuota'),
          expected,
          part,
        );
        assert.equal(extra.length, platform === 'gke' && part === 'install' ? 1 : 0, `${part}: ResourceQuotas`);
      }
    });
  });
}

describe('on gke', () => {
  it("gives the agent's priority class a quota in its namespace, without which GKE admits none of its pods", () => {
    const ds = daemonSet('gke', 'install');
    const quota = objects('gke', 'install').find((o) => o.kind === 'ResourceQuota') as KubeObject & {
      spec: { hard: Record<string, string>; scopeSelector: { matchExpressions: unknown[] } };
    };
    assert.equal(quota.metadata.namespace, ds.metadata.namespace);
    assert.deepEqual(quota.spec.scopeSelector.matchExpressions, [
      { scopeName: 'PriorityClass', operator: 'In', values: [ds.spec.template.spec.priorityClassName] },
    ]);
    // It counts pods only: a quota on cpu or memory would refuse every pod that does not state them.
    assert.deepEqual(Object.keys(quota.spec.hard), ['pods']);
    assert.ok(Number(quota.spec.hard.pods) >= GKE_MOST_AGENT_PODS, `${quota.spec.hard.pods} pods`);
    // The namespace is created before the quota, and the quota before the DaemonSet's pods.
    const order = objects('gke', 'install').map((o) => o.kind);
    assert.ok(order.indexOf('Namespace') < order.indexOf('ResourceQuota') && order.indexOf('ResourceQuota') < order.indexOf('DaemonSet'));
  });
});
