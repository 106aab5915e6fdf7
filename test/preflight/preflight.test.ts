// The preflight as a whole: which checks run for which settings, the addresses probed, the report's format and exit code.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ConfigError, parseConfig } from '../../agent/config.ts';
import { fail, ok } from '../../agent/preflight/check-result.ts';
import { runCheckCommand } from '../../agent/preflight/check-command.ts';
import { exitCodeOf, formatReport, portTargets, runPreflight } from '../../agent/preflight/preflight.ts';
import { ScriptedRunner } from './scripted-runner.ts';

function configOf(argv: string[]) {
  const result = parseConfig(['check', ...argv], {});
  assert.equal(result.action, 'check');
  if (result.action !== 'check') throw new Error('unreachable');
  return result.config;
}

describe('runPreflight', () => {
  it('checks neither netfilter, CNI nor the API for an explicit-mode agent with a static file: ports only', async () => {
    const script = new ScriptedRunner();
    const probed: string[] = [];
    const lines = await runPreflight({
      config: configOf(['--discovery', 'static', '--static-file', '/etc/meshlite/services.yaml', '--listen', '127.0.0.1:15201', '--admin', '127.0.0.1:15200']),
      runner: script.runner,
      files: { list: async () => [], read: async () => '', stat: async () => null },
      cni: { confDir: '/c', binDir: '/b', pluginName: 'meshlite' },
      kube: async () => {
        throw new Error('not called');
      },
      bind: async (address) => {
        probed.push(`${address.host}:${address.port}`);
        return { bound: true };
      },
      sysctl: { read: async () => '1\n' },
      pid: 1,
    });
    assert.deepEqual(formatReport(lines).split('\n'), [
      'ok    interception off (--intercept off): iptables, ipset and CNI not needed',
      'ok    static discovery (/etc/meshlite/services.yaml): the Kubernetes API is not needed',
      'ok    proxy 127.0.0.1:15201: free',
      'ok    admin 127.0.0.1:15200: free',
      'ok    upgrade hand-over (net.ipv4.tcp_migrate_req): 1, connections queued on a closing agent go to the next',
      '',
    ]);
    assert.deepEqual(script.calls, []);
    assert.deepEqual(probed, ['127.0.0.1:15201', '127.0.0.1:15200']);
    assert.equal(exitCodeOf(lines), 0);
  });

  it("probes the proxy port on each node IP in transparent mode, and the metrics listener's addresses", () => {
    const config = configOf(['--intercept', 'on', '--discovery', 'static', '--node-ip', '10.0.0.7,fd00::7', '--listen', '127.0.0.1:15001', '--metrics', 'node:15090']);
    assert.deepEqual(
      portTargets(config).map((target) => `${target.what} ${target.flag} ${target.address.host}:${target.address.port}`),
      [
        'proxy --listen 127.0.0.1:15001',
        'proxy on the node IP --node-ip 10.0.0.7:15001',
        'proxy on the node IP --node-ip fd00::7:15001',
        'admin --admin 127.0.0.1:15000',
        'metrics --metrics 10.0.0.7:15090',
        'metrics --metrics fd00::7:15090',
      ],
    );
  });
});

describe('the report', () => {
  it('is one line per check, FAIL with the problem and what to do, and exits 1 on any problem', () => {
    const lines = [ok('ipset IPv4: fine'), fail('RBAC pods', 'the agent may not list pods in every namespace', 'apply manifests/rbac.yaml')];
    assert.equal(formatReport(lines), 'ok    ipset IPv4: fine\nFAIL  RBAC pods: the agent may not list pods in every namespace — apply manifests/rbac.yaml\n');
    assert.equal(exitCodeOf(lines), 1);
  });

  it('is one FAIL line for settings the agent would refuse', async () => {
    let output = '';
    let error: unknown;
    try {
      parseConfig(['check', '--intercept', 'on', '--discovery', 'static'], {});
    } catch (caught) {
      error = caught;
    }
    const code = await runCheckCommand(error as Error as ConfigError, { runner: new ScriptedRunner().runner, env: {}, pid: 1, write: (text) => (output += text) });
    assert.equal(code, 1);
    assert.equal(
      output,
      'FAIL  settings: --intercept on needs the node IP: set --node-ip (env MESHLITE_NODE_IP; the DaemonSet passes status.hostIPs) — fix the setting: node agent/main.ts --help lists every one\n',
    );
  });
});
