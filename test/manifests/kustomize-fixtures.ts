// Small kustomizations that exercise each feature of test/support/kustomize-render.ts: its own tests state what they
// render to, and the kubectl comparison checks that kustomize renders them the same way.

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

export type Files = Record<string, string>;

const HEADER = 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n';
const COMPONENT = 'apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n';
export const DIGEST = `sha256:${'1'.repeat(64)}`;

/** Writes the files into a new scratch directory; the URL ends with a slash, as renderKustomization wants. */
export async function writeFixture(files: Files): Promise<{ directory: URL; dispose: () => Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'meshlite-kustomize-'));
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), text);
  }
  return { directory: pathToFileURL(`${root}/`), dispose: () => rm(root, { recursive: true, force: true }) };
}

/** Files in a file, then a directory's kustomization, then more files: kustomize's kind order decides the output. */
export const ORDER: Files = {
  'kustomization.yaml': `${HEADER}resources:\n  - objects.yaml\n  - base\n`,
  'objects.yaml': `apiVersion: v1
kind: ConfigMap
metadata: { name: a, namespace: z }
---
apiVersion: apps/v1
kind: DaemonSet
metadata: { name: agent, namespace: z }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: b, namespace: a }
---
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: { name: hook }
`,
  'base/kustomization.yaml': `${HEADER}resources:\n  - more.yaml\n`,
  'base/more.yaml': `apiVersion: example.com/v1
kind: Widget
metadata: { name: w }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: c }
---
apiVersion: v1
kind: Namespace
metadata: { name: z }
---
apiVersion: v1
kind: Pod
metadata: { name: p, namespace: z }
`,
};

/** Each kind of image entry, on containers and init containers of a DaemonSet, a CronJob and a Pod. */
export const IMAGES: Files = {
  'kustomization.yaml': `${HEADER}resources:
  - workloads.yaml
images:
  - { name: meshlite, newTag: "0.2.0" }
  - { name: agent, newName: "registry.example.com:5000/team/agent" }
  - { name: pinned, digest: "${DIGEST}" }
  - { name: both, newTag: "2", digest: "${DIGEST}" }
`,
  'workloads.yaml': `apiVersion: apps/v1
kind: DaemonSet
metadata: { name: d, namespace: n }
spec:
  template:
    spec:
      initContainers:
        - { name: i, image: "meshlite@sha256:${'0'.repeat(64)}" }
      containers:
        - { name: a, image: meshlite }
        - { name: b, image: "meshlite:0.1.0" }
        - { name: c, image: "registry.example.com/meshlite:1" }
        - { name: e, image: "agent:1" }
---
apiVersion: batch/v1
kind: CronJob
metadata: { name: j, namespace: n }
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - { name: p, image: "pinned:1" }
---
apiVersion: v1
kind: Pod
metadata: { name: p, namespace: n }
spec:
  initContainers:
    - { name: b, image: "both:1" }
  containers:
    - { name: m, image: meshlite }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: c, namespace: n }
data: { image: meshlite }
`,
};

/** A strategic merge patch by id: maps merged, lists merged by their keys (patch order first), args replaced. */
export const PATCH: Files = {
  'kustomization.yaml': `${HEADER}resources:\n  - daemonset.yaml\npatches:\n  - path: patch.yaml\n`,
  'daemonset.yaml': `apiVersion: apps/v1
kind: DaemonSet
metadata: { name: d, namespace: n, labels: { a: "1" } }
spec:
  template:
    spec:
      containers:
        - name: one
          image: x
          args: [a, b]
          env: [{ name: A, value: "1" }, { name: B, value: "2" }, { name: C, value: "3" }]
          volumeMounts: [{ name: v1, mountPath: /a }, { name: v2, mountPath: /b }]
        - { name: two, image: y }
      volumes:
        - { name: v1, hostPath: { path: /one, type: DirectoryOrCreate } }
        - { name: v2, emptyDir: {} }
`,
  'patch.yaml': `apiVersion: apps/v1
kind: DaemonSet
metadata: { name: d, namespace: n, labels: { b: "2" } }
spec:
  template:
    spec:
      containers:
        - { name: zero, image: z }
        - name: one
          args: [c]
          env: [{ name: C, value: "x" }, { name: D, value: "4" }, { name: A, value: "y" }]
          volumeMounts: [{ name: v3, mountPath: /b }, { name: v4, mountPath: /c }]
      volumes:
        - { name: v2, emptyDir: { medium: Memory } }
        - { name: v1, hostPath: { path: /two } }
        - { name: v0, emptyDir: {} }
`,
};

/** A component adding a resource and patching every DaemonSet it selects, whatever the patch names. */
export const COMPONENT_PATCH: Files = {
  'kustomization.yaml': `${HEADER}resources:\n  - daemonsets.yaml\ncomponents:\n  - extra\n`,
  'daemonsets.yaml': `apiVersion: apps/v1
kind: DaemonSet
metadata: { name: b, namespace: n }
spec:
  template:
    spec:
      volumes: [{ name: data, hostPath: { path: /old } }]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: { name: a, namespace: n }
spec:
  template:
    spec:
      volumes: [{ name: other, emptyDir: {} }, { name: data, hostPath: { path: /old, type: Directory } }]
---
apiVersion: v1
kind: ConfigMap
metadata: { name: untouched, namespace: n }
`,
  'extra/kustomization.yaml': `${COMPONENT}resources:\n  - quota.yaml\npatches:\n  - path: paths.yaml\n    target:\n      kind: DaemonSet\n`,
  'extra/quota.yaml': 'apiVersion: v1\nkind: ResourceQuota\nmetadata: { name: q, namespace: n }\n',
  'extra/paths.yaml': `apiVersion: apps/v1
kind: DaemonSet
metadata: { name: not-a-target }
spec:
  template:
    spec:
      volumes: [{ name: data, hostPath: { path: /new } }]
`,
};

/** The fixtures kustomize renders (the refused ones are in the renderer's tests). */
export const RENDERABLE: Record<string, Files> = { ORDER, IMAGES, PATCH, COMPONENT_PATCH };

export { COMPONENT, HEADER };
