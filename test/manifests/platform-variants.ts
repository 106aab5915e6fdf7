// Every kustomization an operator can apply: manifests/ and manifests/uninstall/ as they are, and both again with a
// platform's components added the way the install instructions say, each in a scratch copy of manifests/.

import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse, stringify } from 'yaml';

export const MANIFESTS = new URL('../../manifests/', import.meta.url);

export type Platform = 'gke' | 'k3s';

/** Where each platform's container runtime finds the CNI plugins and their configuration (see the components). */
export const PLATFORM_CNI: Record<Platform, { binDir: string; confDir: string }> = {
  gke: { binDir: '/home/kubernetes/bin', confDir: '/etc/cni/net.d' },
  k3s: { binDir: '/var/lib/rancher/k3s/data/cni', confDir: '/var/lib/rancher/k3s/agent/etc/cni/net.d' },
};

/** What the instructions add to the components of each kustomization, relative to it. */
export const PLATFORM_COMPONENTS: Record<Platform, { install: string; uninstall: string }> = {
  gke: { install: 'platforms/gke', uninstall: '../platforms/gke/cni-directories' },
  k3s: { install: 'platforms/k3s', uninstall: '../platforms/k3s/cni-directories' },
};

export const PLATFORMS = Object.keys(PLATFORM_CNI) as Platform[];

export interface Variant {
  /** e.g. "manifests/", "manifests/uninstall/ + gke". */
  name: string;
  directory: URL;
  platform: Platform | null;
  part: 'install' | 'uninstall';
}

/** The directories of manifests/ holding a kustomization file, relative to it ('' for itself), with its kind. */
export async function kustomizationsIn(root: URL = MANIFESTS): Promise<Array<{ path: string; kind: string }>> {
  const found: Array<{ path: string; kind: string }> = [];
  const top = fileURLToPath(root);
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) await walk(join(dir, entry.name));
      else if (entry.name === 'kustomization.yaml') {
        const { kind } = parse(await readFile(join(dir, entry.name), 'utf8')) as { kind: string };
        found.push({ path: relative(top, dir), kind });
      }
    }
  };
  await walk(top);
  return found.sort((a, b) => a.path.localeCompare(b.path));
}

/**
 * The variants to render, with `dispose` removing the scratch copies: the two kustomizations as they are, and for
 * each platform both of them in a copy of manifests/ whose kustomization files list the platform's components.
 */
export async function variants(): Promise<{ all: Variant[]; dispose: () => Promise<void> }> {
  const all: Variant[] = [
    { name: 'manifests/', directory: MANIFESTS, platform: null, part: 'install' },
    { name: 'manifests/uninstall/', directory: new URL('uninstall/', MANIFESTS), platform: null, part: 'uninstall' },
  ];
  const scratch: string[] = [];
  for (const platform of PLATFORMS) {
    const copy = await mkdtemp(join(tmpdir(), `meshlite-manifests-${platform}-`));
    scratch.push(copy);
    await cp(fileURLToPath(MANIFESTS), copy, { recursive: true });
    await addComponent(join(copy, 'kustomization.yaml'), PLATFORM_COMPONENTS[platform].install);
    await addComponent(join(copy, 'uninstall', 'kustomization.yaml'), PLATFORM_COMPONENTS[platform].uninstall);
    const directory = pathToFileURL(`${copy}/`);
    all.push(
      { name: `manifests/ + ${platform}`, directory, platform, part: 'install' },
      { name: `manifests/uninstall/ + ${platform}`, directory: new URL('uninstall/', directory), platform, part: 'uninstall' },
    );
  }
  const dispose = async () => {
    await Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true })));
  };
  return { all, dispose };
}

/** As `kustomize edit add component` does: the path appended to the kustomization's components. */
async function addComponent(file: string, component: string): Promise<void> {
  const kustomization = parse(await readFile(file, 'utf8')) as { components?: string[] };
  kustomization.components = [...(kustomization.components ?? []), component];
  await writeFile(file, stringify(kustomization));
}
