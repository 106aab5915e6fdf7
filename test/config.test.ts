// Settings: defaults, environment, flags over environment, both flag forms, --help, and a clear error for each bad value.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Config, ConfigError, helpText, metricsAddresses, parseConfig, SETTINGS } from '../agent/config.ts';

/** Kubernetes discovery (the default) needs the node name, which the DaemonSet always passes: so do the tests. */
const NODE_ENV = { MESHLITE_NODE_NAME: 'node-a' };

function run(argv: string[], env: Record<string, string | undefined> = {}): Config {
  const result = parseConfig(argv, { ...NODE_ENV, ...env });
  assert.equal(result.action, 'run');
  return result.config;
}

/** Asserts a ConfigError whose message contains every fragment (the setting, the value, what is expected). */
function rejects(argv: string[], env: Record<string, string | undefined>, fragments: string[]): void {
  assert.throws(
    () => parseConfig(argv, { ...NODE_ENV, ...env }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError, `a ConfigError, got ${String(error)}`);
      assert.equal(error.code, 'ML_CONFIG_INVALID');
      for (const fragment of fragments) assert.ok(error.message.includes(fragment), `"${error.message}" mentions "${fragment}"`);
      return true;
    },
  );
}

describe('parseConfig', () => {
  it('has a default for every setting', () => {
    assert.deepEqual(run([]), {
      discovery: 'kubernetes',
      staticFile: 'meshlite.yaml',
      kubeconfig: null,
      stateFile: null,
      nodeName: 'node-a',
      intercept: false,
      nodeIPs: { v4: null, v6: null },
      iptablesBackend: 'auto',
      cniSocket: '/run/meshlite/cni.sock',
      reconcileIntervalMs: 10000,
      failMode: 'open',
      listen: { host: '0.0.0.0', port: 15001 },
      admin: { host: '127.0.0.1', port: 15000 },
      metrics: null,
      metricsEndpointLabel: true,
      probeSocket: null,
      balancer: 'p2c-ewma',
      logLevel: 'info',
      connectTimeoutMs: 1000,
      sniffTimeoutMs: 1000,
      maxClientConnections: 20000,
      maxBufferedBytes: 128 * 1024 * 1024,
      clientIdleTimeoutMs: 3_600_000,
      clientHandshakeTimeoutMs: 10_000,
      drainTimeoutMs: 25000,
      upstreamMaxConnections: 4,
      workers: 'auto',
      clusterDomain: 'cluster.local',
    });
  });

  it('reads every setting from its environment variable', () => {
    const config = run([], {
      MESHLITE_DISCOVERY: 'static',
      MESHLITE_STATIC_FILE: '/etc/meshlite/services.yaml',
      MESHLITE_KUBECONFIG: '/root/.kube/config',
      MESHLITE_STATE_FILE: '/run/meshlite/state.json',
      MESHLITE_NODE_NAME: 'worker-7',
      MESHLITE_INTERCEPT: 'on',
      MESHLITE_NODE_IP: '10.1.2.3,FD00::0:3',
      MESHLITE_IPTABLES_BACKEND: 'legacy',
      MESHLITE_CNI_SOCKET: 'off',
      MESHLITE_RECONCILE_INTERVAL_MS: '5000',
      MESHLITE_FAIL_MODE: 'closed',
      MESHLITE_LISTEN: '10.1.2.3:16001',
      MESHLITE_ADMIN: 'localhost:16000',
      MESHLITE_METRICS: '10.1.2.3:9090',
      MESHLITE_METRICS_ENDPOINT_LABEL: 'off',
      MESHLITE_PROBE_SOCKET: '/tmp/meshlite/probes.sock',
      MESHLITE_BALANCER: 'round-robin',
      MESHLITE_LOG_LEVEL: 'debug',
      MESHLITE_CONNECT_TIMEOUT_MS: '250',
      MESHLITE_SNIFF_TIMEOUT_MS: '300',
      MESHLITE_MAX_CLIENT_CONNECTIONS: '500',
      MESHLITE_MAX_BUFFERED_MIB: '64',
      MESHLITE_CLIENT_IDLE_TIMEOUT_MS: '0',
      MESHLITE_CLIENT_HANDSHAKE_TIMEOUT_MS: '2000',
      MESHLITE_DRAIN_TIMEOUT_MS: '0',
      MESHLITE_UPSTREAM_MAX_CONNECTIONS: '2',
      MESHLITE_WORKERS: '3',
      MESHLITE_CLUSTER_DOMAIN: 'example.internal',
    });
    assert.deepEqual(config, {
      discovery: 'static',
      staticFile: '/etc/meshlite/services.yaml',
      kubeconfig: '/root/.kube/config',
      stateFile: '/run/meshlite/state.json',
      nodeName: 'worker-7',
      intercept: true,
      nodeIPs: { v4: '10.1.2.3', v6: 'fd00::3' },
      iptablesBackend: 'legacy',
      cniSocket: null,
      reconcileIntervalMs: 5000,
      failMode: 'closed',
      listen: { host: '10.1.2.3', port: 16001 },
      admin: { host: 'localhost', port: 16000 },
      metrics: { on: 'address', address: { host: '10.1.2.3', port: 9090 } },
      metricsEndpointLabel: false,
      probeSocket: '/tmp/meshlite/probes.sock',
      balancer: 'round-robin',
      logLevel: 'debug',
      connectTimeoutMs: 250,
      sniffTimeoutMs: 300,
      maxClientConnections: 500,
      maxBufferedBytes: 64 * 1024 * 1024,
      clientIdleTimeoutMs: 0,
      clientHandshakeTimeoutMs: 2000,
      drainTimeoutMs: 0,
      upstreamMaxConnections: 2,
      workers: 3,
      clusterDomain: 'example.internal',
    });
  });

  it('lets a flag override its environment variable', () => {
    const config = run(['--balancer', 'least-request'], { MESHLITE_BALANCER: 'round-robin', MESHLITE_LOG_LEVEL: 'warn' });
    assert.equal(config.balancer, 'least-request');
    assert.equal(config.logLevel, 'warn');
  });

  it('takes --name=value as well as --name value, and the last of a repeated flag', () => {
    const config = run(['--listen=127.0.0.1:0', '--static-file', 'a.yaml', '--static-file=b=c.yaml']);
    assert.deepEqual(config.listen, { host: '127.0.0.1', port: 0 });
    assert.equal(config.staticFile, 'b=c.yaml');
  });

  it('treats an empty environment variable as unset', () => {
    assert.equal(run([], { MESHLITE_BALANCER: '' }).balancer, 'p2c-ewma');
  });

  it('parses IPv6 listen addresses in brackets, in canonical form', () => {
    assert.deepEqual(run(['--listen', '[::1]:15001']).listen, { host: '::1', port: 15001 });
    assert.deepEqual(run(['--listen=[0:0::0:1]:15001']).listen, { host: '::1', port: 15001 });
    assert.deepEqual(run(['--admin', '[::]:15000']).admin, { host: '::', port: 15000 });
  });

  it('asks for help with --help or -h, wherever it stands', () => {
    assert.deepEqual(parseConfig(['--help'], {}), { action: 'help' });
    assert.deepEqual(parseConfig(['--balancer', 'x', '-h'], {}), { action: 'help' });
    assert.deepEqual(parseConfig(['--no-such-flag', '--help'], {}), { action: 'help' });
  });

  it('rejects an unknown flag, naming it', () => {
    rejects(['--listn', '0.0.0.0:1'], {}, ['unknown flag --listn']);
    rejects(['--listn=0.0.0.0:1'], {}, ['unknown flag --listn']);
  });

  it('rejects a positional argument and a flag without its value', () => {
    rejects(['static'], {}, ['unexpected argument "static"']);
    rejects(['--balancer'], {}, ['--balancer needs a value']);
  });

  it('names the setting, the value and what is expected for each invalid value', () => {
    rejects(['--discovery', 'consul'], {}, ['--discovery', '"consul"', 'one of kubernetes, static']);
    rejects(['--balancer', 'random'], {}, ['--balancer', '"random"', 'one of p2c-ewma, least-request, round-robin']);
    rejects(['--log-level', 'verbose'], {}, ['--log-level', '"verbose"', 'one of fatal, error']);
    rejects(['--fail-mode', 'shut'], {}, ['--fail-mode', '"shut"', 'one of open, closed']);
    rejects(['--listen', '15001'], {}, ['--listen', '"15001"', 'host:port']);
    rejects(['--listen', '::1:15001'], {}, ['--listen', 'must be in brackets']);
    rejects(['--listen', '0.0.0.0:65536'], {}, ['--listen', 'not in 0..65535']);
    rejects(['--listen', '0.0.0.0:http'], {}, ['--listen', 'not a number']);
    rejects(['--admin', '[::1]15000'], {}, ['--admin', '[address]:port']);
    rejects(['--admin', '300.1.1.1:15000'], {}, ['--admin', '"300.1.1.1"']);
    rejects(['--metrics', 'on'], {}, ['--metrics', '"on"', 'host:port']);
    rejects(['--connect-timeout-ms', '0'], {}, ['--connect-timeout-ms', '"0"', 'an integer from 1 to 60000']);
    rejects(['--sniff-timeout-ms', '1.5'], {}, ['--sniff-timeout-ms', '"1.5"', 'an integer']);
    rejects(['--drain-timeout-ms', '-1'], {}, ['--drain-timeout-ms', '"-1"', 'an integer from 0']);
    rejects(['--upstream-max-connections', '0'], {}, ['--upstream-max-connections', 'an integer from 1']);
    rejects(['--workers', '0'], {}, ['--workers', '"0"', 'auto or an integer from 1 to 64']);
    rejects(['--workers', '-2'], {}, ['--workers', '"-2"', 'auto or an integer from 1 to 64']);
    rejects(['--workers', '1.5'], {}, ['--workers', '"1.5"', 'auto or an integer from 1 to 64']);
    rejects(['--workers', '65'], {}, ['--workers', '"65"', 'auto or an integer from 1 to 64']);
    rejects([], { MESHLITE_WORKERS: 'two' }, ['--workers (from MESHLITE_WORKERS)', '"two"']);
    rejects(['--cluster-domain', 'Cluster..Local'], {}, ['--cluster-domain', 'DNS name']);
    rejects(['--static-file', ''], {}, ['--static-file', 'a file path']);
  });

  it('names the environment variable when the bad value came from it', () => {
    rejects([], { MESHLITE_LISTEN: 'nope' }, ['--listen (from MESHLITE_LISTEN)', '"nope"', 'host:port']);
  });

  it('requires the node name for kubernetes discovery only, saying where it comes from', () => {
    assert.throws(
      () => parseConfig(['--discovery', 'kubernetes'], {}),
      (error: unknown) => error instanceof ConfigError && /--node-name/.test(error.message) && /spec\.nodeName/.test(error.message),
    );
    assert.equal(parseConfig(['--discovery', 'static'], {}).action, 'run');
    rejects(['--node-name', 'Node_1'], {}, ['--node-name', '"Node_1"', 'a node name']);
  });

  it('needs the node IP to intercept, one per family', () => {
    assert.throws(() => parseConfig(['--intercept', 'on'], NODE_ENV), (error: unknown) => error instanceof ConfigError && /--node-ip/.test(error.message));
    assert.deepEqual(run(['--intercept', 'on', '--node-ip', 'fd00::7']).nodeIPs, { v4: null, v6: 'fd00::7' });
    rejects(['--node-ip', '10.0.0.1,10.0.0.2'], {}, ['--node-ip', 'one IPv4 and/or one IPv6']);
    rejects(['--node-ip', 'node-a'], {}, ['--node-ip', 'one IPv4']);
    rejects(['--intercept', 'yes'], {}, ['--intercept', 'on or off']);
    rejects(['--cni-socket', 'cni.sock'], {}, ['--cni-socket', 'an absolute path']);
  });

  it('listens for metrics on every node IP with node:PORT (IPv4, IPv6, dual stack), which needs the node IP', () => {
    const dual = run(['--metrics', 'node:15090', '--node-ip', '10.0.0.7,fd00::7']);
    assert.deepEqual(dual.metrics, { on: 'node-ips', port: 15090 });
    assert.deepEqual(metricsAddresses(dual), [
      { host: '10.0.0.7', port: 15090 },
      { host: 'fd00::7', port: 15090 },
    ]);
    assert.deepEqual(metricsAddresses(run(['--metrics', 'node:15090', '--node-ip', 'FD00:0::7'])), [{ host: 'fd00::7', port: 15090 }]);
    assert.deepEqual(metricsAddresses(run(['--metrics', '[::1]:15090'])), [{ host: '::1', port: 15090 }]);
    assert.deepEqual(metricsAddresses(run([])), []);
    rejects(['--metrics', 'node:15090'], {}, ['--metrics node:15090 needs the node IP', '--node-ip']);
    rejects(['--metrics', 'node:0', '--node-ip', '10.0.0.7'], {}, ['--metrics', '"node:0"', 'node:PORT with a port from 1 to 65535']);
    rejects(['--metrics', 'node:x'], {}, ['--metrics', 'node:PORT']);
    // What the DaemonSet once passed on an IPv6 node: an address and port that cannot be told apart.
    rejects(['--metrics', 'fd00::1:15090'], {}, ['--metrics', '"fd00::1:15090"', 'node:PORT, off or host:port']);
    rejects(['--metrics', 'node:15000', '--node-ip', '127.0.0.1'], {}, ['--admin 127.0.0.1:15000', '--metrics 127.0.0.1:15000', 'overlap']);
  });

  it('takes an absolute path for the state file, or off', () => {
    assert.equal(run(['--state-file', '/run/meshlite/state.json']).stateFile, '/run/meshlite/state.json');
    assert.equal(run(['--state-file', 'off']).stateFile, null);
    rejects(['--state-file', 'state.json'], {}, ['--state-file', 'an absolute path or off']);
  });

  it('takes an absolute path for the probe socket, or off', () => {
    assert.equal(run(['--probe-socket', '/tmp/meshlite/probes.sock']).probeSocket, '/tmp/meshlite/probes.sock');
    assert.equal(run(['--probe-socket', 'off']).probeSocket, null);
    rejects(['--probe-socket', 'probes.sock'], {}, ['--probe-socket', 'an absolute path or off']);
  });

  it('reads "check" as an action with the settings that follow it, demanding what the agent demands', () => {
    const result = parseConfig(['check', '--intercept', 'on', '--node-ip', '10.0.0.7', '--discovery', 'static'], {});
    assert.equal(result.action, 'check');
    assert.deepEqual(result.action === 'check' && result.config.nodeIPs, { v4: '10.0.0.7', v6: null });
    assert.throws(() => parseConfig(['check', '--intercept', 'on', '--discovery', 'static'], {}), {
      name: 'ConfigError',
      message: '--intercept on needs the node IP: set --node-ip (env MESHLITE_NODE_IP; the DaemonSet passes status.hostIPs)',
    });
  });

  it('reads "uninstall" as an action, with the settings that follow it', () => {
    const result = parseConfig(['uninstall', '--iptables-backend', 'nft'], {});
    assert.equal(result.action, 'uninstall');
    assert.equal(result.action === 'uninstall' && result.config.iptablesBackend, 'nft');
    rejects(['install'], {}, ['unexpected argument "install"']);
  });

  it('takes a kubeconfig path, or the in-cluster service account by default', () => {
    assert.equal(run(['--kubeconfig', 'in-cluster']).kubeconfig, null);
    assert.equal(run(['--kubeconfig', './kubeconfig.yaml']).kubeconfig, './kubeconfig.yaml');
    rejects(['--kubeconfig', ''], {}, ['--kubeconfig', 'a file path or "in-cluster"']);
  });

  it('rejects two listeners on the same port', () => {
    rejects(['--listen', '0.0.0.0:15000'], {}, ['--listen 0.0.0.0:15000', '--admin 127.0.0.1:15000', 'overlap']);
    rejects(['--metrics', '127.0.0.1:15000'], {}, ['--admin', '--metrics', 'overlap']);
    // Port 0 asks the kernel for a free port: two of them never collide.
    assert.equal(run(['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0']).admin.port, 0);
    // Different specific hosts may share a port.
    assert.equal(run(['--listen', '10.0.0.1:15000']).listen.port, 15000);
  });
});

describe('helpText', () => {
  it('lists every flag, its variable and its default', () => {
    const text = helpText();
    for (const s of SETTINGS) {
      assert.ok(text.includes(`${s.flag} ${s.metavar}`), `help lists ${s.flag}`);
      assert.ok(text.includes(`env ${s.env}, default ${s.defaultText}`), `help gives ${s.env} and its default`);
    }
    assert.match(text, /--help, -h/);
  });

  it('has a flag and a MESHLITE_ variable for every setting, each name once', () => {
    const flags = SETTINGS.map((s) => s.flag);
    const envs = SETTINGS.map((s) => s.env);
    assert.equal(new Set(flags).size, flags.length);
    assert.equal(new Set(envs).size, envs.length);
    for (const s of SETTINGS) {
      assert.match(s.flag, /^--[a-z][a-z0-9-]*$/);
      assert.equal(s.env, `MESHLITE_${s.flag.slice(2).toUpperCase().replaceAll('-', '_')}`);
    }
  });

  it('keeps the names issue 3 fixes for scripts and manifests', () => {
    const pairs = SETTINGS.map((s) => `${s.flag} ${s.env}`);
    for (const name of ['discovery', 'static-file', 'listen', 'admin', 'balancer']) {
      assert.ok(pairs.includes(`--${name} MESHLITE_${name.toUpperCase().replace('-', '_')}`), name);
    }
  });
});
