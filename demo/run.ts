// `npm run demo`: three gRPC backends, the agent on a static file, ONE client connection, and the spread per request, live.

import { rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { BALANCER_NAMES, isBalancerName } from '../agent/balancer/policies.ts';
import type { BalancerName } from '../agent/registry/endpoint.ts';
import { type EchoServiceClient, type GrpcServerHandle, makeEchoClient, startGrpcServer } from '../test/support/grpc-peers.ts';
import { type AgentChild, startAgent } from './agent-child.ts';
import { type Load, startLoad, type Tally } from './load.ts';
import { type Frame, LiveBlock, plural, renderTable } from './screen.ts';

const SERVICE = { name: 'echo', namespace: 'demo', port: 50051 };
const AUTHORITY = `${SERVICE.name}.${SERVICE.namespace}.svc.cluster.local:${SERVICE.port}`;
const BACKEND_IDS = ['backend-a', 'backend-b', 'backend-c'];
const HOST = '127.0.0.1';
const IN_FLIGHT = 8;
const RPC_DEADLINE_MS = 5_000;
const REFRESH_MS = 1_000;
const AGENT_READY_TIMEOUT_MS = 15_000;
const AGENT_DRAIN_TIMEOUT_MS = 5_000;
const AGENT_STOP_GRACE_MS = 10_000;

const USAGE = `Usage: npm run demo -- [--duration SECONDS] [--balancer NAME]

Starts three gRPC echo backends and the meshlite agent (static discovery, no cluster), sends unary RPCs over ONE
client connection through the agent, and shows every second how the requests spread over the backends.

  --duration SECONDS  stop by itself after this long (default: run until Ctrl-C); then the exit status is 1
                      if any RPC failed or a backend got none, so the demo doubles as a smoke test
  --balancer NAME     ${BALANCER_NAMES.join(', ')} (default: round-robin)
  --help, -h          print this text
`;

interface Options {
  durationS: number | null;
  balancer: BalancerName;
}

class UsageError extends Error {}

function parseOptions(argv: string[]): Options | null {
  let values: { duration?: string; balancer?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { duration: { type: 'string' }, balancer: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return null;
  const durationS = values.duration === undefined ? null : Number(values.duration);
  if (durationS !== null && !(durationS > 0 && durationS <= 86_400)) {
    throw new UsageError(`--duration wants a number of seconds above 0 (at most 86400), not "${values.duration}"`);
  }
  const balancer = values.balancer ?? 'round-robin';
  if (!isBalancerName(balancer)) {
    throw new UsageError(`--balancer wants one of ${BALANCER_NAMES.join(', ')}, not "${balancer}"`);
  }
  return { durationS, balancer };
}

const say = (line = ''): void => void process.stdout.write(`${line}\n`);

/** Everything the demo started, so that every way out stops it all, in order. */
interface Started {
  dir: string | null;
  backends: GrpcServerHandle[];
  agent: AgentChild | null;
  client: EchoServiceClient | null;
  load: Load | null;
}

async function main(): Promise<number> {
  let options: Options | null;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`demo: ${error.message}\n\n${USAGE}`);
    return 2;
  }
  if (options === null) {
    process.stdout.write(USAGE);
    return 0;
  }

  // Ctrl-C (npm may pass it on a second time) and SIGTERM end the run; the demo then stops everything in order.
  let requestStop: (reason: string) => void = () => {};
  const stopRequested = new Promise<string>((resolve) => {
    requestStop = resolve;
  });
  process.on('SIGINT', () => requestStop('Ctrl-C'));
  process.on('SIGTERM', () => requestStop('SIGTERM'));

  const started: Started = { dir: null, backends: [], agent: null, client: null, load: null };
  // Last resort if the demo dies before its own clean-up: never leave the agent or the temp dir behind.
  process.on('exit', () => {
    started.agent?.killNow();
    if (started.dir !== null) rmSync(started.dir, { recursive: true, force: true });
  });

  let result: Result;
  try {
    result = await run(options, started, stopRequested);
  } catch (error) {
    const output = (error as { output?: string[] }).output ?? [];
    const report = [`The demo failed: ${(error as Error).message}`];
    if (output.length > 0) report.push("The agent's last output:", ...output);
    result = { status: 1, report };
  } finally {
    await stopAll(started);
  }
  say();
  for (const line of result.report) say(line);
  return result.status;
}

/** The exit status, and what to print once everything is stopped. */
interface Result {
  status: number;
  report: string[];
}

async function run(options: Options, started: Started, stopRequested: Promise<string>): Promise<Result> {
  say('meshlite demo: one gRPC client connection, every request balanced over three backends\n');

  for (const id of BACKEND_IDS) started.backends.push(await startGrpcServer({ host: HOST, id }));
  const addresses = new Map(started.backends.map((b) => [b.id, `${HOST}:${b.port}`]));
  const backendList = [...addresses].map(([id, address]) => `${id} ${address}`).join(', ');
  say(`  backends  ${backendList} (grpc-js servers in this process)`);

  started.dir = await mkdtemp(join(tmpdir(), 'meshlite-demo-'));
  const staticFile = join(started.dir, 'services.yaml');
  const services = { services: [{ ...SERVICE, endpoints: [...addresses.values()].map((address) => ({ address })) }] };
  await writeFile(staticFile, `# Written by demo/run.ts, removed when it stops.\n${stringify(services)}`);

  const agentArgs = ['--discovery', 'static', '--static-file', staticFile, '--listen', `${HOST}:0`, '--admin', `${HOST}:0`];
  agentArgs.push('--balancer', options.balancer, '--drain-timeout-ms', String(AGENT_DRAIN_TIMEOUT_MS));
  const agent = await startAgent(agentArgs, AGENT_READY_TIMEOUT_MS);
  started.agent = agent;
  say(`  agent     pid ${agent.pid}, proxy on ${agent.listen}, endpoints from ${staticFile}`);
  say(`  admin     curl http://${agent.admin}/debug/endpoints   (also /metrics and /readyz)`);

  // One channel to one address: grpc-js opens one HTTP/2 connection and sends every RPC over it.
  const client = makeEchoClient(agent.listen, { 'grpc.default_authority': AUTHORITY });
  started.client = client;
  say(`  client    ONE grpc-js channel = ONE HTTP/2 connection to ${agent.listen}, ${IN_FLIGHT} unary RPCs in flight,`);
  say(`            :authority ${AUTHORITY} names the service (explicit mode)`);
  say();
  say('  Through a ClusterIP Service, which balances connections, this one connection and so every request on it');
  say(`  would reach one backend. Here the agent picks a backend for each request (${options.balancer}).`);
  say();

  const load = startLoad(client, IN_FLIGHT, RPC_DEADLINE_MS);
  started.load = load;
  const startedAt = performance.now();
  const meter = new Meter(BACKEND_IDS, addresses, load.tally, startedAt);
  const view = new LiveBlock(process.stdout);
  const until = options.durationS === null ? 'Ctrl-C to stop' : `stops after ${options.durationS} s`;
  let connections: number | null = null;
  let tick: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    tick = (async () => {
      connections = (await clientConnections(agent.admin)) ?? connections;
      const elapsedS = (performance.now() - startedAt) / 1000;
      const seen = connections === null ? 'client connections at the agent: unknown' : `${plural(connections, 'client connection')} at the agent`;
      view.show([...renderTable(meter.sinceLast()), `  ${seen}; ${elapsedS.toFixed(0)} s, ${until}`]);
    })();
  }, REFRESH_MS);

  const outcome = await Promise.race([
    stopRequested.then((reason) => ({ reason, agentFailed: false })),
    agent.exited.then((how) => ({ reason: `the agent exited on its own: ${how}`, agentFailed: true })),
    ...(options.durationS === null ? [] : [sleep(options.durationS * 1000).then(() => ({ reason: 'duration', agentFailed: false }))]),
  ]);
  clearInterval(timer);
  await tick;
  await load.stop();
  const elapsedS = (performance.now() - startedAt) / 1000;

  const { ok, failed, served } = load.tally;
  const why = outcome.reason === 'duration' ? '' : ` (${outcome.reason})`;
  const over = connections === null ? '' : ` over ${plural(connections, 'client connection')}`;
  const report = [`Summary after ${elapsedS.toFixed(1)} s${why}: ${ok + failed} RPCs${over}, ${failed} failed`];
  report.push(...renderTable(meter.overall(elapsedS)));
  if (outcome.agentFailed) {
    report.push('', "The agent's last output:", ...agent.recentOutput());
    return { status: 1, report };
  }
  const everyBackendServed = BACKEND_IDS.every((id) => (served.get(id) ?? 0) > 0);
  const smokeTestFailed = options.durationS !== null && (failed > 0 || !everyBackendServed);
  return { status: smokeTestFailed ? 1 : 0, report };
}

/** Stops whatever was started, last started first, and says so as it goes. */
async function stopAll(started: Started): Promise<void> {
  const step = (text: string): void => void process.stdout.write(text);
  step('\nstopping:');
  if (started.load !== null) {
    await started.load.stop();
    step(' the load;');
  }
  started.client?.close();
  if (started.agent !== null) {
    step(` the agent, pid ${started.agent.pid}`);
    step(` (${await started.agent.stop(AGENT_STOP_GRACE_MS)});`);
  }
  await Promise.all(started.backends.map((backend) => backend.close()));
  if (started.backends.length > 0) step(' the backends;');
  if (started.dir !== null) {
    await rm(started.dir, { recursive: true, force: true });
    step(` removed ${started.dir}`);
    started.dir = null;
  }
  step('\n');
}

/** The tally at one moment, from which rates are computed. */
interface Mark {
  ok: number;
  failed: number;
  served: ReadonlyMap<string, number>;
}

/** Turns the running tally into table frames: rates over the last interval, or over the whole run. */
class Meter {
  private readonly ids: readonly string[];
  private readonly addresses: ReadonlyMap<string, string>;
  private readonly tally: Tally;
  private last: Mark & { at: number };

  constructor(ids: readonly string[], addresses: ReadonlyMap<string, string>, tally: Tally, startedAt: number) {
    this.ids = ids;
    this.addresses = addresses;
    this.tally = tally;
    this.last = { at: startedAt, ok: 0, failed: 0, served: new Map() };
  }

  sinceLast(): Frame {
    const now = performance.now();
    const seconds = Math.max((now - this.last.at) / 1000, 0.001);
    const frame = this.frame(seconds, this.last);
    this.last = { at: now, ok: this.tally.ok, failed: this.tally.failed, served: new Map(this.tally.served) };
    return frame;
  }

  overall(seconds: number): Frame {
    return this.frame(seconds, { ok: 0, failed: 0, served: new Map() });
  }

  private frame(seconds: number, from: Mark): Frame {
    const { served, ok, failed, lastError } = this.tally;
    // Any id the backends did not announce (none expected) still shows, so that nothing is hidden.
    const ids = [...new Set([...this.ids, ...served.keys()])];
    return {
      rows: ids.map((id) => ({
        id,
        address: this.addresses.get(id) ?? '?',
        count: served.get(id) ?? 0,
        perSecond: ((served.get(id) ?? 0) - (from.served.get(id) ?? 0)) / seconds,
      })),
      ok,
      failed,
      perSecond: (ok + failed - from.ok - from.failed) / seconds,
      lastError,
    };
  }
}

/** The agent's count of open client connections, from its /metrics: the proof that the client uses one. */
async function clientConnections(admin: string): Promise<number | null> {
  try {
    const response = await fetch(`http://${admin}/metrics`, { signal: AbortSignal.timeout(500) });
    const match = /^meshlite_downstream_connections (\d+)$/m.exec(await response.text());
    return match === null ? null : Number(match[1]);
  } catch {
    return null;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

process.exit(await main());
