// The DaemonSet as the design needs it: surge upgrades, the node's network, settings the agent and installer accept.
// Read as kubectl apply -k sends it: rendered from manifests/ (and manifests/uninstall/) by their kustomizations.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { metricsAddresses, parseConfig, SETTINGS } from '../../agent/config.ts';
import { type KubeObject, renderKustomization } from '../support/kustomize-render.ts';

const MANIFESTS = new URL('../../manifests/', import.meta.url);

interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  restartPolicy?: string;
  env?: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
  ports?: Array<{ containerPort: number; hostPort?: number }>;
  securityContext?: {
    capabilities?: { add?: string[]; drop?: string[] };
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
  };
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
}

interface Probe {
  exec?: { command: string[] };
  httpGet?: unknown;
  periodSeconds?: number;
  timeoutSeconds?: number;
  failureThreshold?: number;
}

interface PodSpec {
  hostNetwork?: boolean;
  nodeSelector?: Record<string, string>;
  serviceAccountName?: string;
  terminationGracePeriodSeconds?: number;
  initContainers?: Container[];
  containers: Container[];
  volumes: Array<{ name: string; hostPath?: { path: string } }>;
}

interface DaemonSet {
  kind: string;
  metadata: { name: string; namespace: string };
  spec: {
    updateStrategy?: { type: string; rollingUpdate?: { maxSurge?: number; maxUnavailable?: number } };
    template: { metadata: { annotations?: Record<string, string> }; spec: PodSpec };
  };
}

/** The one object of a kind in a kustomization's rendering ('' for manifests/, 'uninstall/'). */
async function renderedOne(directory: '' | 'uninstall/', kind: string): Promise<KubeObject> {
  const found = (await renderKustomization(new URL(directory, MANIFESTS))).filter((o) => o.kind === kind);
  assert.equal(found.length, 1, `one ${kind} in manifests/${directory}`);
  return found[0];
}

async function daemonSet(directory: '' | 'uninstall/'): Promise<DaemonSet> {
  return (await renderedOne(directory, 'DaemonSet')) as unknown as DaemonSet;
}

/** A DaemonSet's file as written, before the kustomization names its image. */
async function daemonSetFile(file: string): Promise<DaemonSet> {
  const docs = parseAllDocuments(await readFile(new URL(file, MANIFESTS), 'utf8'));
  assert.equal(docs.length, 1);
  assert.deepEqual(docs[0].errors, []);
  const value = docs[0].toJS() as DaemonSet;
  assert.equal(value.kind, 'DaemonSet');
  return value;
}

/** What the downward API gives a pod on a dual-stack node. */
const DUAL_STACK: Record<string, string> = { 'spec.nodeName': 'node-a', 'status.hostIP': '10.0.0.5', 'status.hostIPs': '10.0.0.5,fd00::5' };
/** ... and on an IPv6-only node. */
const IPV6_ONLY: Record<string, string> = { 'spec.nodeName': 'node-b', 'status.hostIP': 'fd00::1', 'status.hostIPs': 'fd00::1' };

function environment(container: Container, downward: Record<string, string> = DUAL_STACK): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of container.env ?? []) {
    const path = entry.valueFrom?.fieldRef?.fieldPath;
    env[entry.name] = entry.value ?? (path === undefined ? '' : downward[path]);
  }
  return env;
}

/** The agent's settings as the kubelet would start it: args with $(VAR) substituted, and its environment. */
function agentConfig(agent: Container, downward: Record<string, string>) {
  const env = environment(agent, downward);
  const args = (agent.args ?? []).map((arg) => arg.replace(/\$\((\w+)\)/g, (_, name: string) => env[name]));
  const result = parseConfig(args, env);
  assert.equal(result.action, 'run');
  return result.action === 'run' ? result.config : assert.fail('not a run');
}

describe('manifests/daemonset.yaml', () => {
  it('is applied after its namespace and RBAC (kustomization order)', async () => {
    const kustomization = parse(await readFile(new URL('kustomization.yaml', MANIFESTS), 'utf8')) as { resources: string[] };
    assert.deepEqual(kustomization.resources, ['namespace.yaml', 'rbac.yaml', 'daemonset.yaml', 'metrics-service.yaml']);
    // And in the order kubectl apply -k sends them (kustomize sorts by kind).
    const kinds = (await renderKustomization(MANIFESTS)).map((o) => o.kind);
    assert.deepEqual(kinds, ['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Service', 'DaemonSet']);
  });

  it('upgrades by surge, on the node network, with no host port and the ServiceAccount of rbac.yaml', async () => {
    const ds = await daemonSet('');
    assert.equal(ds.metadata.namespace, 'meshlite-system');
    assert.deepEqual(ds.spec.updateStrategy, { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
    const pod = ds.spec.template.spec;
    assert.equal(pod.hostNetwork, true);
    assert.equal(pod.serviceAccountName, 'meshlite');
    assert.ok((pod.terminationGracePeriodSeconds ?? 30) * 1000 > 25_000, 'grace period above the drain timeout');
    // On the host network every declared containerPort is a host port (kubernetes/kubernetes#106417): the surge pod
    // of an upgrade could not be scheduled beside the old one. No container may declare one.
    for (const container of [...(pod.initContainers ?? []), ...pod.containers]) {
      assert.deepEqual(container.ports ?? [], [], `${container.name} declares a port, a host port on the host network`);
    }
    assert.deepEqual(pod.nodeSelector, { 'kubernetes.io/os': 'linux' });
    assert.equal(ds.spec.template.metadata.annotations?.['meshlite.io/inject'], 'disabled', 'the agent never intercepts itself');
  });

  it("gives the agent settings it accepts: kubernetes discovery, interception on, the node's name and IPs", async () => {
    const pod = (await daemonSet('')).spec.template.spec;
    const agent = pod.containers.find((c) => c.name === 'agent') as Container;
    const env = environment(agent);
    const known = new Set(SETTINGS.map((s) => s.env));
    for (const name of Object.keys(env)) {
      if (name.startsWith('MESHLITE_') && !known.has(name)) assert.ok((agent.args ?? []).some((a) => a.includes(`$(${name})`)), `${name} is neither a setting nor used in args`);
    }
    const config = agentConfig(agent, DUAL_STACK);
    assert.equal(config?.discovery, 'kubernetes');
    assert.equal(config?.kubeconfig, null);
    assert.equal(config?.intercept, true);
    assert.equal(config?.nodeName, 'node-a');
    assert.deepEqual(config?.nodeIPs, { v4: '10.0.0.5', v6: 'fd00::5' });
    assert.equal(config?.cniSocket, '/run/meshlite/cni.sock');
    // On the /run/meshlite hostPath: it outlives the agent's container, not the node's boot.
    assert.equal(config?.stateFile, '/run/meshlite/state.json');
    // Not 0.0.0.0: the node IPs are added by the agent, and a wildcard would also serve the pods' bridge gateways.
    assert.deepEqual(config?.listen, { host: '127.0.0.1', port: 15001 });
    assert.deepEqual(agent.securityContext, {
      capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
    });
    assert.ok(agent.volumeMounts?.some((m) => m.mountPath === '/run/meshlite'), 'the CNI socket is on the host');
    // `meshlite check` runs in this container and reads the CNI directories where the installer writes them.
    const installer = pod.initContainers?.find((c) => c.name === 'cni-installer') as Container;
    const installerEnv = environment(installer);
    for (const dir of [installerEnv.MESHLITE_CNI_BIN_DIR, installerEnv.MESHLITE_CNI_CONF_DIR]) {
      const mount = agent.volumeMounts?.find((m) => m.mountPath === dir);
      assert.equal(mount?.readOnly, true, `the agent mounts ${dir} read-only`);
      assert.equal(mount?.name, installer.volumeMounts?.find((m) => m.mountPath === dir)?.name, `${dir}: the installer's volume`);
    }
    assert.deepEqual(metricsAddresses(config), [
      { host: '10.0.0.5', port: 15090 },
      { host: 'fd00::5', port: 15090 },
    ]);
  });

  it('starts on an IPv6-only node: metrics on its IPv6 address, interception of IPv6 only', async () => {
    const agent = (await daemonSet('')).spec.template.spec.containers.find((c) => c.name === 'agent') as Container;
    const config = agentConfig(agent, IPV6_ONLY);
    assert.deepEqual(config.nodeIPs, { v4: null, v6: 'fd00::1' });
    assert.deepEqual(metricsAddresses(config), [{ host: 'fd00::1', port: 15090 }]);
  });

  it("probes ask the agent's own socket in the pod's own /tmp, with curl -f, and health never waits on the API", async () => {
    const pod = (await daemonSet('')).spec.template.spec;
    const agent = pod.containers.find((c) => c.name === 'agent') as Container;
    const socket = agentConfig(agent, DUAL_STACK).probeSocket;
    assert.equal(socket, '/tmp/meshlite/probes.sock');
    const tmp = agent.volumeMounts?.find((m) => m.mountPath === '/tmp');
    assert.ok(pod.volumes.some((v) => v.name === tmp?.name && v.hostPath === undefined), "/tmp is the pod's own volume, not the host's");
    const command = (path: string) => ['curl', '-fsS', '--max-time', '2', '--unix-socket', socket, `http://agent${path}`];
    assert.deepEqual(agent.startupProbe?.exec?.command, command('/healthz'));
    assert.deepEqual(agent.readinessProbe?.exec?.command, command('/readyz'));
    assert.deepEqual(agent.livenessProbe?.exec?.command, command('/healthz'));
    for (const probe of [agent.startupProbe, agent.readinessProbe, agent.livenessProbe]) {
      assert.ok((probe?.timeoutSeconds ?? 1) > 2, 'the kubelet waits longer than curl does');
    }
  });

  it('keeps the CNI plugin installed with a native sidecar that talks to the same socket', async () => {
    const pod = (await daemonSet('')).spec.template.spec;
    const installer = pod.initContainers?.find((c) => c.name === 'cni-installer') as Container;
    assert.equal(installer.restartPolicy, 'Always');
    assert.deepEqual(installer.command, ['node', 'cni/install-main.ts', 'watch']);
    const source = await readFile(new URL('../../cni/install-main.ts', import.meta.url), 'utf8');
    for (const name of Object.keys(environment(installer))) assert.ok(source.includes(`'${name}'`), `the installer reads ${name}`);
    assert.equal(environment(installer).MESHLITE_CNI_AGENT_SOCKET, '/run/meshlite/cni.sock');
    assert.deepEqual(installer.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    const mounts = new Set(installer.volumeMounts?.map((m) => m.mountPath));
    assert.ok(mounts.has('/host/opt/cni/bin') && mounts.has('/host/etc/cni/net.d'));
  });
});

describe('the image', () => {
  it('is named once per kustomization: every container says "meshlite", and the images entry gives the tag', async () => {
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    for (const dir of ['', 'uninstall/'] as const) {
      const kustomization = parse(await readFile(new URL(`${dir}kustomization.yaml`, MANIFESTS), 'utf8')) as {
        images: Array<{ name: string; newName?: string; newTag: string }>;
      };
      assert.deepEqual(kustomization.images, [{ name: 'meshlite', newTag: pkg.version }], `${dir}kustomization.yaml: the tag is the version`);
      const pod = (await daemonSetFile(`${dir}daemonset.yaml`)).spec.template.spec;
      for (const container of [...(pod.initContainers ?? []), ...pod.containers]) {
        assert.equal(container.image, 'meshlite', `${dir}daemonset.yaml: ${container.name}`);
      }
      // What the cluster gets: every container runs the version's image.
      const rendered = (await daemonSet(dir)).spec.template.spec;
      for (const container of [...(rendered.initContainers ?? []), ...rendered.containers]) {
        assert.equal(container.image, `meshlite:${pkg.version}`, `manifests/${dir}: ${container.name}`);
      }
    }
  });
});

describe('manifests/metrics-service.yaml', () => {
  it("selects the DaemonSet's pods, headless, at the port the agent's metrics listener binds", async () => {
    const service = (await renderedOne('', 'Service')) as unknown as {
      metadata: { namespace: string };
      spec: { clusterIP: string; selector: Record<string, string>; ports: Array<{ name: string; port: number; targetPort: number }> };
    };
    const ds = await daemonSet('');
    assert.equal(service.metadata.namespace, ds.metadata.namespace);
    assert.equal(service.spec.clusterIP, 'None');
    const labels = (ds.spec.template.metadata as { labels?: Record<string, string> }).labels ?? {};
    for (const [key, value] of Object.entries(service.spec.selector)) assert.equal(labels[key], value, `the pods carry ${key}=${value}`);
    const agent = ds.spec.template.spec.containers.find((c) => c.name === 'agent') as Container;
    const bound = new Set(metricsAddresses(agentConfig(agent, DUAL_STACK)).map((address) => address.port));
    assert.deepEqual(service.spec.ports.map((p) => [p.name, p.targetPort]), [['metrics', [...bound][0]]]);
    assert.equal(bound.size, 1);
  });
});

describe('manifests/uninstall/daemonset.yaml', () => {
  it("removes the agent's rules and the CNI plugin on every node", async () => {
    const pod = (await daemonSet('uninstall/')).spec.template.spec;
    assert.equal(pod.hostNetwork, true);
    const [rules, plugin] = pod.initContainers ?? [];
    assert.deepEqual(rules.args, ['uninstall']);
    assert.equal(parseConfig(rules.args ?? [], {}).action, 'uninstall');
    assert.deepEqual(plugin.command, ['node', 'cni/install-main.ts', 'uninstall']);
  });
});
