// The dashboard in a real browser (Debian's Chromium, driven by playwright-core): while traffic runs through three
// backends, the shares it shows agree with /metrics; an endpoint marked terminating shows as draining; an endpoint
// that refuses connections shows as backing off; an agent with no services and no API renders its trouble; any
// console error fails the test. It saves screenshots for CI.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { type BackendProcess, spawnBackend } from '../../lab/grpc-backend-process.ts';
import { makeEchoClient, unary } from '../../lab/grpc-peers.ts';
import { waitFor } from '../../lab/wait-for.ts';
import { type AgentProcess, HEALTH_UP_MESSAGE, startAgent } from '../support/agent-process.ts';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `no ${CHROMIUM} (Debian's chromium package; scripts/setup.sh installs it)`;
const AUTHORITY = 'greeter.default.svc.cluster.local:50051';
/** Where CI finds the screenshots (git-ignored). */
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

let dir = '';
let browser: Browser | undefined;

before(async () => {
  if (skip !== false) return;
  dir = mkdtempSync(join(tmpdir(), 'meshlite-dashboard-'));
  mkdirSync(ARTIFACTS, { recursive: true });
  // As the machine's notes advise for a closed network: no background traffic, no sandbox (root), no GPU.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

/** A page whose console errors and uncaught exceptions are collected: the tests fail on any. */
async function openPage(url: string): Promise<{ page: Page; errors: string[] }> {
  const page = await (browser as Browser).newPage({ viewport: { width: 1366, height: 900 } });
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(url);
  return { page, errors };
}

/** The greeter service on `ports` (one of them terminating), and `others`' lines (more services) after it. */
function staticFile(ports: number[], terminating: number | null = null, others: string[] = []): string {
  const lines = ['services:', '  - name: greeter', '    namespace: default', '    port: 50051', '    balancer: round-robin', '    endpoints:'];
  for (const port of ports) {
    lines.push(`      - address: 127.0.0.1:${port}`);
    if (port === terminating) lines.push('        terminating: true');
  }
  lines.push(...others);
  // This node's opted-in pods, as the dashboard lists them (and one that did not opt in, which it does not).
  lines.push('pods:', '  - { name: client-a, namespace: shop, ip: "10.1.0.5", inject: enabled }', '  - { name: batch-0, namespace: shop, ip: "10.1.0.6", inject: disabled }');
  return `${lines.join('\n')}\n`;
}

function writeAtomically(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

/** Each endpoint's share of the service's requests, from /metrics' counters (since the start). */
async function metricShares(agent: AgentProcess): Promise<Map<string, number>> {
  const text = await (await fetch(`http://${agent.admin}/metrics`)).text();
  const counts = new Map<string, number>();
  for (const match of text.matchAll(/^meshlite_requests_total\{[^}]*dst_service="greeter"[^}]*dst_endpoint="([^"]+)"[^}]*\} (\d+)$/gm)) {
    counts.set(match[1], (counts.get(match[1]) ?? 0) + Number(match[2]));
  }
  const total = [...counts.values()].reduce((sum, count) => sum + count, 0);
  return new Map([...counts].map(([endpoint, count]) => [endpoint, count / total]));
}

/** What the page shows per endpoint row: its state and share (null before the first requests). */
async function pageRows(page: Page): Promise<Map<string, { state: string; share: number | null }>> {
  const rows = await page.$$eval('tr[data-endpoint]', (elements) =>
    elements.map((row) => [row.getAttribute('data-endpoint') ?? '', row.getAttribute('data-state') ?? '', row.getAttribute('data-share') ?? ''] as const),
  );
  return new Map(rows.map(([endpoint, state, share]) => [endpoint, { state, share: share === '' ? null : Number(share) }]));
}

test('three backends under traffic: shares on the page agree with /metrics within 5 points; a terminating endpoint shows as draining within 2 s; no console error', { skip, timeout: 120_000 }, async (t) => {
  const backends: BackendProcess[] = await Promise.all(['d1', 'd2', 'd3'].map((id) => spawnBackend(id)));
  const ports = backends.map((backend) => backend.port);
  const file = join(dir, 'services.yaml');
  writeAtomically(file, staticFile(ports));
  const agent = await startAgent(['--discovery', 'static', '--static-file', file]);
  const client = makeEchoClient(agent.listen, { 'grpc.default_authority': AUTHORITY });
  let running = true;
  let calls = 0;
  const workers = Array.from({ length: 6 }, async () => {
    while (running) {
      await unary(client, Buffer.from('dashboard'), { timeoutMs: 5_000 }).catch(() => {});
      calls++;
    }
  });
  try {
    await waitFor(() => calls > 300, { timeoutMs: 20_000, message: 'traffic flowing' });
    const { page, errors } = await openPage(`http://${agent.admin}/`);
    assert.match(page.url(), /\/dashboard$/, '/ leads to the dashboard');
    // A few frames, so the page's ten-second window holds several seconds of round-robin.
    await waitFor(async () => {
      const rows = await pageRows(page);
      return rows.size === 3 && [...rows.values()].every((row) => row.share !== null && row.share > 0);
    }, { timeoutMs: 20_000, intervalMs: 200, message: 'the page shows every endpoint with a share' });
    const drawn = Number(await page.getAttribute('body', 'data-frames'));
    await page.waitForFunction(`Number(document.body.dataset.frames) >= ${drawn + 3}`, undefined, { timeout: 20_000 });
    const shown = await pageRows(page);
    const counted = await metricShares(agent);
    for (const port of ports) {
      const endpoint = `127.0.0.1:${port}`;
      const onPage = shown.get(endpoint)?.share ?? Number.NaN;
      const inMetrics = counted.get(endpoint) ?? Number.NaN;
      t.diagnostic(`${endpoint}: page ${(onPage * 100).toFixed(1)}%, /metrics ${(inMetrics * 100).toFixed(1)}%`);
      assert.ok(Math.abs(onPage - inMetrics) <= 0.05, `${endpoint}: page ${onPage} against /metrics ${inMetrics}`);
      assert.equal(shown.get(endpoint)?.state, 'ready');
    }
    assert.equal(await page.textContent('#health'), 'ready');
    // What the success rate is made of: every request here succeeds.
    assert.match((await page.textContent('section.service .statuses')) ?? '', /^OK 100\.0% \(\d+\)$/);
    // The node's intercepted pods, and the agent's recent events (its start among them).
    assert.deepEqual(await page.$$eval('#pods tr[data-pod]', (rows) => rows.map((row) => row.textContent)), ['shopclient-a10.1.0.5']);
    assert.ok((await page.$$eval('#events tr', (rows) => rows.map((row) => row.textContent ?? ''))).some((text) => text.includes('meshlite ready')), 'the start is among the events');
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });

    // Terminating: the page shows it draining once the agent has it so (the dashboard's part: frame and render).
    writeAtomically(file, staticFile(ports, ports[0]));
    const written = performance.now();
    await waitFor(async () => {
      const debug = (await (await fetch(`http://${agent.admin}/debug/endpoints`)).json()) as { services: Array<{ endpoints: Array<{ address: string; eligible: boolean }> }> };
      return debug.services[0].endpoints.some((e) => e.address === `127.0.0.1:${ports[0]}` && !e.eligible);
    }, { timeoutMs: 10_000, intervalMs: 20, message: 'the agent took the endpoint out of the picker' });
    const agentHadIt = performance.now();
    await page.waitForSelector(`tr[data-endpoint="127.0.0.1:${ports[0]}"][data-state="draining"]`, { timeout: 10_000 });
    const shownAt = performance.now();
    t.diagnostic(`draining on the page ${Math.round(shownAt - agentHadIt)} ms after the agent had it (${Math.round(shownAt - written)} ms after the file was written)`);
    assert.ok(shownAt - agentHadIt <= 2_000, `shown as draining ${Math.round(shownAt - agentHadIt)} ms after the agent had it`);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-draining.png'), fullPage: true });
    assert.deepEqual(errors, [], 'no console error');
    await page.close();
  } finally {
    running = false;
    await Promise.all(workers);
    client.close();
    assert.equal(await agent.stop(), 0);
    await Promise.all(backends.map((backend) => backend.kill()));
  }
});

test('endpoints that refuse connections: ejected beside a good one, backing off when alone; the clients of the first see no failure; no console error', { skip, timeout: 60_000 }, async () => {
  const backend = await spawnBackend('r1');
  // Ports nobody listens on (taken and released by the kernel's choice): the agent's connects to them are refused.
  const refusingPort = () =>
    new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
  const [refusing, alone] = [await refusingPort(), await refusingPort()];
  const file = join(dir, 'refusing.yaml');
  writeAtomically(file, staticFile([backend.port, refusing], null, ['  - name: lonely', '    namespace: default', '    port: 50052', '    endpoints:', `      - address: 127.0.0.1:${alone}`]));
  const agent = await startAgent(['--discovery', 'static', '--static-file', file]);
  const client = makeEchoClient(agent.listen, { 'grpc.default_authority': AUTHORITY });
  const lonely = makeEchoClient(agent.listen, { 'grpc.default_authority': 'lonely.default.svc.cluster.local:50052' });
  let running = true;
  const failures: string[] = [];
  const workers = Array.from({ length: 2 }, async () => {
    while (running) {
      await unary(client, Buffer.from('refused'), { timeoutMs: 5_000 }).catch((error: Error) => failures.push(error.message));
    }
  });
  // The lonely service's requests wait for its endpoint (and fail by their deadline): it backs off meanwhile.
  const waiting = (async () => {
    while (running) await unary(lonely, Buffer.from('alone'), { timeoutMs: 1_000 }).catch(() => {});
  })();
  try {
    const { page, errors } = await openPage(`http://${agent.admin}/dashboard`);
    await page.waitForSelector(`tr[data-endpoint="127.0.0.1:${refusing}"][data-state="ejected"]`, { timeout: 20_000 });
    assert.equal(await page.getAttribute(`tr[data-endpoint="127.0.0.1:${backend.port}"]`, 'data-state'), 'ready');
    assert.match((await page.textContent('section.service[data-service="default/greeter:50051"] .stats')) ?? '', /1 ready · 1 ejected/);
    await page.waitForSelector(`tr[data-endpoint="127.0.0.1:${alone}"][data-state="backing off"]`, { timeout: 20_000 });
    assert.ok((await page.$$eval('#events tr', (rows) => rows.map((row) => row.textContent ?? ''))).some((text) => text.includes('ML_ENDPOINT_EJECTED')), 'the ejection is among the events');
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-refusing.png'), fullPage: true });
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    running = false;
    await Promise.all([...workers, waiting]);
    client.close();
    lonely.close();
    assert.equal(await agent.stop(), 0);
    await backend.kill();
  }
  // A refused connect processed nothing: the relay sends the request to the other endpoint.
  assert.deepEqual(failures, []);
});

test('an agent in trouble with no service: the page says not ready and why, and that no service is known; no console error', { skip, timeout: 60_000 }, async () => {
  const kubeconfig = join(dir, 'unreachable.yaml');
  // An API server that refuses connections: the agent stays in discovery, not ready, with its reason.
  writeFileSync(
    kubeconfig,
    'apiVersion: v1\nkind: Config\nclusters: [{ name: c, cluster: { server: "https://127.0.0.1:1", insecure-skip-tls-verify: true } }]\n' +
      'users: [{ name: u, user: { token: t } }]\ncontexts: [{ name: c, context: { cluster: c, user: u } }]\ncurrent-context: c\n',
  );
  const agent = await startAgent(['--discovery', 'kubernetes', '--kubeconfig', kubeconfig, '--node-name', 'node-a'], 15_000, HEALTH_UP_MESSAGE);
  try {
    const { page, errors } = await openPage(`http://${agent.admin}/dashboard`);
    await page.waitForSelector('#health[data-state="not ready"]', { timeout: 10_000 });
    assert.match((await page.textContent('#reason')) ?? '', /discovery syncing/);
    await page.waitForSelector('text=No gRPC service is known to this agent yet.', { timeout: 10_000 });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-not-ready.png'), fullPage: true });
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    assert.equal(await agent.stop(), 0);
  }
});
