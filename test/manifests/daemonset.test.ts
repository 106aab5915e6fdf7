// The DaemonSet as the design needs it: surge upgrades, the node's network, settings the agent and installer accept.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { parseConfig, SETTINGS } from '../../agent/config.ts';

const MANIFESTS = new URL('../../manifests/', import.meta.url);

interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  restartPolicy?: string;
  env?: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
  ports?: Array<{ containerPort: number; hostPort?: number }>;
  securityContext?: { capabilities?: { add?: string[]; drop?: string[] } };
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}

interface PodSpec {
  hostNetwork?: boolean;
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

async function daemonSet(file: string): Promise<DaemonSet> {
  const docs = parseAllDocuments(await readFile(new URL(file, MANIFESTS), 'utf8'));
  assert.equal(docs.length, 1);
  assert.deepEqual(docs[0].errors, []);
  const value = docs[0].toJS() as DaemonSet;
  assert.equal(value.kind, 'DaemonSet');
  return value;
}

/** What the downward API gives a pod on a dual-stack node. */
const DOWNWARD: Record<string, string> = { 'spec.nodeName': 'node-a', 'status.hostIP': '10.0.0.5', 'status.hostIPs': '10.0.0.5,fd00::5' };

function environment(container: Container): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of container.env ?? []) {
    const path = entry.valueFrom?.fieldRef?.fieldPath;
    env[entry.name] = entry.value ?? (path === undefined ? '' : DOWNWARD[path]);
  }
  return env;
}

describe('manifests/daemonset.yaml', () => {
  it('is applied after its namespace and RBAC (kustomization order)', async () => {
    const kustomization = parse(await readFile(new URL('kustomization.yaml', MANIFESTS), 'utf8')) as { resources: string[] };
    assert.deepEqual(kustomization.resources, ['namespace.yaml', 'rbac.yaml', 'daemonset.yaml']);
  });

  it('upgrades by surge, on the node network, with no host port and the ServiceAccount of rbac.yaml', async () => {
    const ds = await daemonSet('daemonset.yaml');
    assert.equal(ds.metadata.namespace, 'meshlite-system');
    assert.deepEqual(ds.spec.updateStrategy, { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
    const pod = ds.spec.template.spec;
    assert.equal(pod.hostNetwork, true);
    assert.equal(pod.serviceAccountName, 'meshlite');
    assert.ok((pod.terminationGracePeriodSeconds ?? 30) * 1000 > 25_000, 'grace period above the drain timeout');
    for (const container of [...(pod.initContainers ?? []), ...pod.containers]) {
      for (const port of container.ports ?? []) assert.equal(port.hostPort, undefined, `${container.name} uses a hostPort`);
    }
    assert.equal(ds.spec.template.metadata.annotations?.['meshlite.io/inject'], 'disabled', 'the agent never intercepts itself');
  });

  it("gives the agent settings it accepts: kubernetes discovery, interception on, the node's name and IPs", async () => {
    const pod = (await daemonSet('daemonset.yaml')).spec.template.spec;
    const agent = pod.containers.find((c) => c.name === 'agent') as Container;
    const env = environment(agent);
    const known = new Set(SETTINGS.map((s) => s.env));
    for (const name of Object.keys(env)) {
      if (name.startsWith('MESHLITE_') && !known.has(name)) assert.ok((agent.args ?? []).some((a) => a.includes(`$(${name})`)), `${name} is neither a setting nor used in args`);
    }
    const args = (agent.args ?? []).map((arg) => arg.replace(/\$\((\w+)\)/g, (_, name: string) => env[name]));
    const result = parseConfig(args, env);
    assert.equal(result.action, 'run');
    const config = result.action === 'run' ? result.config : null;
    assert.equal(config?.discovery, 'kubernetes');
    assert.equal(config?.kubeconfig, null);
    assert.equal(config?.intercept, true);
    assert.equal(config?.nodeName, 'node-a');
    assert.deepEqual(config?.nodeIPs, { v4: '10.0.0.5', v6: 'fd00::5' });
    assert.equal(config?.cniSocket, '/run/meshlite/cni.sock');
    // Not 0.0.0.0: the node IPs are added by the agent, and a wildcard would also serve the pods' bridge gateways.
    assert.deepEqual(config?.listen, { host: '127.0.0.1', port: 15001 });
    assert.deepEqual(agent.securityContext?.capabilities, { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] });
    assert.ok(agent.volumeMounts?.some((m) => m.mountPath === '/run/meshlite'), 'the CNI socket is on the host');
  });

  it('keeps the CNI plugin installed with a native sidecar that talks to the same socket', async () => {
    const pod = (await daemonSet('daemonset.yaml')).spec.template.spec;
    const installer = pod.initContainers?.find((c) => c.name === 'cni-installer') as Container;
    assert.equal(installer.restartPolicy, 'Always');
    assert.deepEqual(installer.command, ['node', 'cni/install-main.ts', 'watch']);
    const source = await readFile(new URL('../../cni/install-main.ts', import.meta.url), 'utf8');
    for (const name of Object.keys(environment(installer))) assert.ok(source.includes(`'${name}'`), `the installer reads ${name}`);
    assert.equal(environment(installer).MESHLITE_CNI_AGENT_SOCKET, '/run/meshlite/cni.sock');
    const mounts = new Set(installer.volumeMounts?.map((m) => m.mountPath));
    assert.ok(mounts.has('/host/opt/cni/bin') && mounts.has('/host/etc/cni/net.d'));
  });
});

describe('manifests/uninstall/daemonset.yaml', () => {
  it("removes the agent's rules and the CNI plugin on every node", async () => {
    const pod = (await daemonSet('uninstall/daemonset.yaml')).spec.template.spec;
    assert.equal(pod.hostNetwork, true);
    const [rules, plugin] = pod.initContainers ?? [];
    assert.deepEqual(rules.args, ['uninstall']);
    assert.equal(parseConfig(rules.args ?? [], {}).action, 'uninstall');
    assert.deepEqual(plugin.command, ['node', 'cni/install-main.ts', 'uninstall']);
  });
});
