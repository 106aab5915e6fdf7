// Chaos scenario 3: a client process drops many open server streams through the agent at once, by cancelling them all
// or by being killed (SIGKILL). The agent resets the upstream streams within each connection's reset budget and queues
// the rest, so grpc-js backends in their own processes see every stream cancelled within 60 s, and another client's
// RPCs on the same upstream connections all succeed meanwhile (the resets never trip rapid-reset protection).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { makeEchoClient, unary } from '../../lab/grpc-peers.ts';
import { waitFor } from '../../lab/wait-for.ts';
import { type AgentProcess, startAgent } from '../support/agent-process.ts';
import { chaosScale } from './chaos-scale.ts';
import { type CountingBackend, spawnCountingBackend } from './counting-backend.ts';
import { buildGoPeers, type GoServerHandle, grpcGoUnavailable, startGoServer } from '../../lab/grpc-go-peers.ts';
import { type StreamDropper, startStreamDropper } from './stream-dropper.ts';

const AUTHORITY = 'greeter.default.svc.cluster.local:50051';
/** Open streams the client drops. With two backends the full form leaves 400 resets per upstream connection to wait
 *  for the budget (burst 100, then 20/s): about 20 s of pacing. */
const STREAMS = chaosScale(300, 1000);
const BACKEND_IDS = ['drop-1', 'drop-2'];
/** The scenario's pass line. */
const CANCELS_WITHIN_MS = 60_000;
/** The other client: RPCs in flight at once, for as long as the cancels take and a second after. */
const OTHER_CONCURRENCY = 8;

/** The backends of a run, whatever their implementation: their ports, and what each has seen so far. */
interface Backends {
  ports: number[];
  /** Per backend: every call, held streams still open, held streams cancelled. */
  counts(): Promise<Array<{ id: string; calls: number; held: number; cancelled: number }>>;
  stop(): Promise<void>;
}

async function grpcJsBackends(): Promise<Backends> {
  const backends: CountingBackend[] = await Promise.all(BACKEND_IDS.map((id) => spawnCountingBackend(id)));
  return {
    ports: backends.map((backend) => backend.port),
    counts: async () => backends.map((backend) => ({ id: backend.id, ...backend.counts })),
    stop: async () => {
      await Promise.all(backends.map((backend) => backend.kill()));
    },
  };
}

/** grpc-go servers hold a stream for the x-delay-ms the dropper sends; their `cancelled` counts calls whose context
 *  ended before the handler did, so the other client's completed echoes are never among them. */
async function grpcGoBackends(): Promise<Backends> {
  await buildGoPeers();
  const servers: GoServerHandle[] = await Promise.all(BACKEND_IDS.map((id) => startGoServer({ id: `go-${id}` })));
  return {
    ports: servers.map((server) => server.port),
    counts: async () =>
      Promise.all(
        servers.map(async (server) => {
          const stats = await server.stats();
          return { id: server.id, calls: stats.calls, held: stats.inFlight, cancelled: stats.cancelled };
        }),
      ),
    stop: async () => {
      await Promise.all(servers.map((server) => server.stop({ graceful: false })));
    },
  };
}

function staticFile(ports: number[]): string {
  const lines = ['services:', '  - name: greeter', '    namespace: default', '    port: 50051', '    balancer: round-robin', '    endpoints:'];
  for (const port of ports) lines.push(`      - address: 127.0.0.1:${port}`);
  return `${lines.join('\n')}\n`;
}

type Counts = Awaited<ReturnType<Backends['counts']>>;
const sum = (counts: Counts, count: 'calls' | 'held' | 'cancelled'): number => counts.reduce((total, backend) => total + backend[count], 0);

/** Unary RPCs from a client of its own, on the agent's same upstream connections, until `stop` is called. */
function otherClient(agent: AgentProcess) {
  const client = makeEchoClient(agent.listen, { 'grpc.default_authority': AUTHORITY });
  const result = { ok: 0, failed: [] as string[], slowestMs: 0 };
  let running = true;
  const workers = Array.from({ length: OTHER_CONCURRENCY }, async (_, worker) => {
    for (let i = 0; running; i++) {
      const request = Buffer.from(`other-${worker}-${i}`);
      const started = performance.now();
      try {
        const { message } = await unary(client, request, { timeoutMs: 5_000 });
        if (message.equals(request)) result.ok++;
        else result.failed.push('response is not the request');
      } catch (error) {
        result.failed.push(String((error as Error).message));
      }
      result.slowestMs = Math.max(result.slowestMs, performance.now() - started);
    }
  });
  return {
    result,
    stop: async () => {
      running = false;
      await Promise.all(workers);
      client.close();
    },
  };
}

/** The client opens STREAMS server streams, then drops them all at once (`how`), while another client keeps calling. */
async function scenario(t: TestContext, how: 'killed' | 'cancelled', start: () => Promise<Backends>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'meshlite-dropped-streams-'));
  let backends: Backends | null = null;
  let agent: AgentProcess | null = null;
  let dropper: StreamDropper | null = null;
  let other: ReturnType<typeof otherClient> | null = null;
  try {
    const started = await start();
    backends = started;
    let counts: Counts = await started.counts();
    const poll = async (): Promise<Counts> => {
      counts = await started.counts();
      return counts;
    };
    const file = join(dir, 'services.yaml');
    writeFileSync(file, staticFile(started.ports));
    agent = await startAgent(['--discovery', 'static', '--static-file', file]);

    dropper = await startStreamDropper(agent.listen, AUTHORITY, STREAMS);
    await waitFor(async () => sum(await poll(), 'held') >= STREAMS, { timeoutMs: 30_000, intervalMs: 50, message: `${STREAMS} streams open on the backends` });
    assert.equal(sum(counts, 'held'), STREAMS);
    assert.equal(sum(counts, 'cancelled'), 0, 'nothing is cancelled while the client lives');
    t.diagnostic(`streams open per backend: ${counts.map((backend) => `${backend.id} ${backend.held}`).join(', ')}`);

    const meanwhile = otherClient(agent);
    other = meanwhile;
    await waitFor(() => meanwhile.result.ok > 0, { timeoutMs: 10_000, message: 'the other client served' });
    const droppedAt = performance.now();
    await (how === 'killed' ? dropper.kill() : dropper.cancelAll());
    // Sampled as the backends report it: how the cancels arrived over time (the budget's burst, then its rate).
    const timeline: string[] = [];
    let lastSeen = -1;
    await waitFor(
      async () => {
        const seen = sum(await poll(), 'cancelled');
        if (seen !== lastSeen) {
          lastSeen = seen;
          timeline.push(`${((performance.now() - droppedAt) / 1000).toFixed(1)}s:${seen}`);
        }
        return seen >= STREAMS;
      },
      { timeoutMs: CANCELS_WITHIN_MS, intervalMs: 50, message: `${STREAMS} cancels seen by the backends` },
    );
    const tookMs = performance.now() - droppedAt;
    // The other client keeps going a second longer: the connections that carried the resets still serve.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await meanwhile.stop();
    const { result } = meanwhile;
    await poll();

    t.diagnostic(`cancels seen by the backends: ${sum(counts, 'cancelled')} of ${STREAMS} in ${(tookMs / 1000).toFixed(2)} s after the ${how === 'killed' ? 'SIGKILL' : 'cancels'}`);
    t.diagnostic(`per backend: ${counts.map((backend) => `${backend.id} ${backend.cancelled} cancelled, ${backend.held} open`).join(', ')}`);
    t.diagnostic(`arrival (seconds since the drop: cancels seen): ${timeline.filter((_, i) => i % Math.ceil(timeline.length / 12) === 0 || i === timeline.length - 1).join(' ')}`);
    t.diagnostic(`other client: ${result.ok} RPCs ok, ${result.failed.length} failed, slowest ${Math.round(result.slowestMs)} ms`);
    assert.equal(sum(counts, 'cancelled'), STREAMS);
    assert.equal(sum(counts, 'held'), 0);
    assert.ok(tookMs < CANCELS_WITHIN_MS);
    assert.deepEqual(result.failed, [], "the other client's RPCs all succeed");
    assert.ok(result.ok > 0);
    // Every RPC of the other client reached a backend once (the grpc-js backends report every 50 ms).
    await waitFor(async () => sum(await poll(), 'calls') === STREAMS + result.ok, { timeoutMs: 2_000, message: 'calls counted' });
  } finally {
    await other?.stop();
    await dropper?.kill();
    // Backends first: a stream still held open on one would keep the agent's drain waiting for its deadline.
    await backends?.stop();
    await agent?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

test(`a client cancels ${STREAMS} open server streams at once: the backends see every cancel within 60 s; another client's RPCs all succeed`, { timeout: 240_000 }, (t) =>
  scenario(t, 'cancelled', grpcJsBackends),
);

/** A SIGKILLed client's kernel ends its connections with a bare FIN: the agent takes it as the end of every stream. */
test(`a client killed with ${STREAMS} server streams open: the backends see every cancel within 60 s; another client's RPCs all succeed`, { timeout: 240_000 }, (t) =>
  scenario(t, 'killed', grpcJsBackends),
);

const goSkip = grpcGoUnavailable();

test(`grpc-go backends: a client killed with ${STREAMS} server streams open: every cancel within 60 s; another client's RPCs all succeed`, { skip: goSkip, timeout: 300_000 }, (t) =>
  scenario(t, 'killed', grpcGoBackends),
);
