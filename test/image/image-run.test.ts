// The agent image, built from the Dockerfile by buildah on Debian bases (scripts/image-build.sh) and run: its OCI
// labels, --help through its ENTRYPOINT, what the DaemonSet relies on inside it, and the agent in static discovery
// answering /readyz; nothing of the run left behind.

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  findDescendant,
  inspectImage,
  onPath,
  PREFIX,
  processTree,
  run,
  runIn,
  startIn,
  storageMounts,
  storageRoots,
  sweepLeftovers,
  tail,
} from './buildah.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; description: string; license: string };
const DOCKERFILE = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const ENTRYPOINT = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(DOCKERFILE)?.[1] ?? '[]') as string[];
/** The agent images this test builds; `MESHLITE_TEST_IMAGE` names one already built (by the script, say) to test instead. */
const IMAGE_PREFIX = `localhost/${PREFIX}agent:test-`;
const GIVEN_IMAGE = process.env.MESHLITE_TEST_IMAGE;

function skipReason(): string | undefined {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return 'the image test needs root on Linux (buildah, mmdebstrap)';
  for (const tool of ['buildah', 'mmdebstrap', 'unshare']) {
    if (!onPath(tool)) return `${tool} is missing (bash scripts/setup.sh installs it)`;
  }
  return undefined;
}

/** A free port of the range the project gives this test (15850–15899), on the loopback the image's agent shares. */
function freePort(from: number, to: number, taken: number[] = []): Promise<number> {
  const attempt = (port: number): Promise<number> => {
    if (port > to) return Promise.reject(new Error(`no free port in ${from}-${to}`));
    if (taken.includes(port)) return attempt(port + 1);
    return new Promise((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(attempt(port + 1)));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(port)));
    });
  };
  return attempt(from);
}

function waitFor(what: string, ms: number, check: () => boolean): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const poll = (): void => {
      if (check()) resolve();
      else if (Date.now() > deadline) reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
      else setTimeout(poll, 100);
    };
    poll();
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

const skip = skipReason();

describe('the image, built from the Dockerfile and run', { skip: skip ?? false, timeout: 15 * 60_000 }, () => {
  const image = GIVEN_IMAGE ?? `${IMAGE_PREFIX}${process.pid}`;
  const container = `${PREFIX}run-${process.pid}`;
  const work = mkdtempSync(join(tmpdir(), 'meshlite-image-test-'));
  let mountsBefore: string[] = [];
  let agent: { child: ChildProcess; output: () => string } | undefined;

  before(
    async () => {
      const roots = storageRoots();
      sweepLeftovers(IMAGE_PREFIX);
      mountsBefore = storageMounts(roots);
      if (GIVEN_IMAGE === undefined) {
        const started = Date.now();
        const build = await run('bash', [join(ROOT, 'scripts/image-build.sh'), 'build', image], { cwd: ROOT, timeoutMs: 12 * 60_000 });
        assert.equal(build.code, 0, `scripts/image-build.sh build failed: ${tail(build, 80)}`);
        console.log(`# image built in ${((Date.now() - started) / 1000).toFixed(0)} s (bases reused when there)`);
      }
      const from = await run('buildah', ['from', '--pull=never', '--name', container, image]);
      assert.equal(from.code, 0, tail(from));
    },
    { timeout: 13 * 60_000 },
  );

  after(
    async () => {
      try {
        // The agent, if a failed test left it serving: its `buildah run` and everything under it.
        if (agent?.child.pid !== undefined && agent.child.exitCode === null) {
          for (const pid of processTree(agent.child.pid)) process.kill(pid, 'SIGKILL');
          await exited(agent.child);
        }
        await run('buildah', ['rm', container]);
        if (GIVEN_IMAGE === undefined) await run('buildah', ['rmi', image]);
        const left = storageMounts(storageRoots()).filter((point) => !mountsBefore.includes(point));
        assert.deepEqual(left, [], 'no container root stays mounted');
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    },
    { timeout: 60_000 },
  );

  it('carries the OCI labels the Dockerfile sets, in step with package.json, and its ENTRYPOINT', async () => {
    const config = await inspectImage(image);
    const oci = Object.fromEntries(Object.entries(config.labels).filter(([name]) => name.startsWith('org.opencontainers.image.')));
    assert.deepEqual(oci, {
      'org.opencontainers.image.title': 'meshlite',
      'org.opencontainers.image.description': PKG.description,
      'org.opencontainers.image.version': PKG.version,
      'org.opencontainers.image.licenses': PKG.license,
    });
    assert.deepEqual(config.entrypoint, ENTRYPOINT);
    assert.deepEqual(ENTRYPOINT, ['node', '--max-semi-space-size=16', '--v8-pool-size=1', 'agent/main.ts']);
    assert.equal(config.workingDir, '/opt/meshlite');
  });

  it('answers --help through its ENTRYPOINT', async () => {
    // `buildah run` applies no ENTRYPOINT: the test prepends the image's own, as a container runtime would.
    const help = await runIn(container, [...ENTRYPOINT, '--help']);
    assert.equal(help.code, 0, tail(help));
    assert.match(help.stdout, /^meshlite agent: balances every gRPC request, not every connection\.\n/);
    assert.match(help.stdout, /--discovery MODE/);
  });

  it('holds what the DaemonSet relies on: the pinned Node, the addon loading, the CNI executable, iptables, ipset, curl', async () => {
    const node = await runIn(container, ['node', '--version']);
    assert.equal(node.stdout.trim(), `v${(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { devDependencies: { node: string } }).devDependencies.node}`);
    const addon = await runIn(container, ['node', '-e', "process.stdout.write(typeof require('./build/Release/original_dst.node'))"]);
    assert.equal(addon.stdout, 'object', tail(addon));
    const cni = await runIn(container, ['sh', '-c', `echo '{"cniVersion":"1.0.0"}' | dist/meshlite-cni`], { env: { CNI_COMMAND: 'VERSION' } });
    assert.equal(cni.code, 0, tail(cni));
    assert.match(cni.stdout, /"supportedVersions"/);
    // Present and runnable; `ipset --version` would ask the kernel, which a chroot without CAP_NET_ADMIN refuses.
    const tools = await runIn(container, ['sh', '-c', 'iptables --version && iptables-legacy --version && command -v ipset && curl --version']);
    assert.equal(tools.code, 0, tail(tools));
    assert.match(tools.stdout, /iptables v1\.8\.\d+ \(nf_tables\)/);
    assert.match(tools.stdout, /iptables v1\.8\.\d+ \(legacy\)/);
    assert.match(tools.stdout, /\/ipset\n/);
    assert.match(tools.stdout, /^curl \d/m);
  });

  it('runs the agent in static discovery: ready, /readyz 200 from the host and from curl inside, SIGTERM stops it cleanly', async () => {
    const listen = await freePort(15850, 15899);
    const admin = await freePort(15850, 15899, [listen]);
    // The format of lab/meshlite-agent.ts writeStaticFile: one service whose endpoint nobody serves (readiness is
    // about discovery, not endpoints).
    const staticFile = join(work, 'meshlite.yaml');
    writeFileSync(
      staticFile,
      ['services:', '  - name: greeter', '    namespace: default', '    port: 50051', '    clusterIP: 10.96.0.10', '    endpoints:', '      - address: "127.0.0.1:15899"', ''].join('\n'),
    );
    const copy = await run('buildah', ['copy', container, staticFile, '/etc/meshlite/meshlite.yaml']);
    assert.equal(copy.code, 0, tail(copy));

    agent = startIn(container, [
      ...ENTRYPOINT,
      '--discovery',
      'static',
      '--static-file',
      '/etc/meshlite/meshlite.yaml',
      '--listen',
      `127.0.0.1:${listen}`,
      '--admin',
      `127.0.0.1:${admin}`,
    ]);
    const { child, output } = agent;
    await waitFor('"meshlite ready"', 30_000, () => output().includes('"msg":"meshlite ready"') || child.exitCode !== null);
    assert.ok(output().includes('"msg":"meshlite ready"'), output());
    assert.match(output(), /"services":1,.*"discovery":"static"/);

    const fromHost = await fetch(`http://127.0.0.1:${admin}/readyz`);
    assert.equal(fromHost.status, 200);
    assert.deepEqual(await fromHost.json(), { ready: true, discovery: { state: 'synced' } });
    const fromInside = await runIn(container, ['curl', '-fsS', `http://127.0.0.1:${admin}/readyz`]);
    assert.equal(fromInside.code, 0, tail(fromInside));
    assert.deepEqual(JSON.parse(fromInside.stdout), { ready: true, discovery: { state: 'synced' } });
    // The dashboard's page and its chart library come from the image itself (the npm dependency survived the prune).
    for (const path of ['/dashboard', '/dashboard/assets/dashboard.js', '/dashboard/assets/uplot.js']) {
      const asset = await fetch(`http://127.0.0.1:${admin}${path}`);
      assert.equal(asset.status, 200, path);
      assert.ok((await asset.text()).length > 100, path);
    }

    // buildah answers a signal to itself by killing what it runs; a container runtime sends SIGTERM to the agent.
    const pid = findDescendant(child.pid as number, 'node', 'agent/main.ts');
    assert.ok(pid !== undefined, 'the agent process under buildah run');
    process.kill(pid, 'SIGTERM');
    assert.equal(await exited(child), 0, output());
    assert.match(output(), /"msg":"meshlite stopped"/);
  });
});
