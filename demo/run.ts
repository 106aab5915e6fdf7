// `npm run demo`: three gRPC backends, the agent, ONE client connection, and the spread per request, live.
//
// Two modes (demo/mode.ts picks): transparent, where pods are network namespaces and the client dials a ClusterIP as
// it would in a cluster (demo/transparent-scene.ts), and explicit, where the client dials the agent
// (demo/explicit-scene.ts). This file drives either: the live screen, the summary, and stopping everything.

import { setUpExplicit } from './explicit-scene.ts';
import { Meter } from './meter.ts';
import { chooseMode, type ModeChoice, ModeUnavailable } from './mode.ts';
import { type Options, parseOptions, USAGE, UsageError } from './options.ts';
import type { Scene } from './scene.ts';
import { LiveBlock, plural, renderTable } from './screen.ts';
import { Teardown } from './teardown.ts';
import { CLUSTER_IP, SERVICE_PORT, setUpTransparent } from './transparent-scene.ts';

const REFRESH_MS = 1_000;

const say = (line = ''): void => void process.stdout.write(`${line}\n`);

async function main(): Promise<number> {
  let options: Options | null;
  let choice: ModeChoice;
  try {
    options = parseOptions(process.argv.slice(2));
    if (options === null) {
      process.stdout.write(USAGE);
      return 0;
    }
    choice = chooseMode(options.mode);
  } catch (error) {
    if (!(error instanceof UsageError || error instanceof ModeUnavailable)) throw error;
    process.stderr.write(`demo: ${error.message}\n\n${USAGE}`);
    return 2;
  }

  // Ctrl-C (npm may pass it on a second time) and SIGTERM end the run; the demo then stops everything in order.
  let requestStop: (reason: string) => void = () => {};
  const stopRequested = new Promise<string>((resolve) => {
    requestStop = resolve;
  });
  process.on('SIGINT', () => requestStop('Ctrl-C'));
  process.on('SIGTERM', () => requestStop('SIGTERM'));

  const teardown = new Teardown();
  // Last resort if the demo dies before its own clean-up: never leave a process, a namespace or a temp dir behind.
  process.on('exit', () => teardown.lastResort());

  let result: Result;
  try {
    result = await run(options, choice, teardown, stopRequested);
  } catch (error) {
    const output = (error as { output?: string[] }).output ?? [];
    const report = [`The demo failed: ${(error as Error).message}`];
    if (output.length > 0) report.push("The agent's last output:", ...output);
    result = { status: 1, report };
  }
  const stoppedCleanly = await teardown.run((text) => void process.stdout.write(text));
  say();
  for (const line of result.report) say(line);
  if (!stoppedCleanly) say('Stopping failed (see above).');
  return stoppedCleanly ? result.status : 1;
}

/** The exit status, and what to print once everything is stopped. */
interface Result {
  status: number;
  report: string[];
}

function modeLine(choice: ModeChoice): string {
  if (choice.mode === 'explicit') return `explicit mode (${choice.reason}): the client dials the agent`;
  return (
    'transparent mode: pods are network namespaces on this machine; ' +
    `the client dials ClusterIP ${CLUSTER_IP}:${SERVICE_PORT} and does not know meshlite exists`
  );
}

async function run(options: Options, choice: ModeChoice, teardown: Teardown, stopRequested: Promise<string>): Promise<Result> {
  say('meshlite demo: one gRPC client connection, every request balanced over three backends\n');
  say(`  ${modeLine(choice)}`);
  say();
  // A Ctrl-C during the set-up takes effect once it is done: stopping half-made parts is what the teardown is for.
  const scene: Scene = choice.mode === 'transparent' ? await setUpTransparent(options, say, teardown) : await setUpExplicit(options, say, teardown);

  const startedAt = performance.now();
  const meters = scene.clients.map((client) => new Meter(scene.backends, client.tally, startedAt));
  const view = new LiveBlock(process.stdout);
  const until = options.durationS === null ? 'Ctrl-C to stop' : `stops after ${options.durationS} s`;
  let connections: number | null = null;
  let tick: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    tick = (async () => {
      connections = (await scene.connections()) ?? connections;
      const elapsedS = (performance.now() - startedAt) / 1000;
      const seen = connections === null ? 'client connections at the agent: unknown' : `${plural(connections, 'client connection')} at the agent`;
      const lines = scene.clients.flatMap((client, i) => [
        ...(client.title === '' ? [] : [`  ${client.title}`]),
        ...renderTable(meters[i].sinceLast()),
        ...(scene.clients.length > 1 ? [''] : []),
      ]);
      view.show([...lines, `  ${seen}; ${elapsedS.toFixed(0)} s, ${until}`]);
    })();
  }, REFRESH_MS);

  const outcome = await Promise.race([
    stopRequested.then((reason) => ({ reason, agentFailed: false })),
    scene.agentExited.then((how) => ({ reason: `the agent exited on its own: ${how}`, agentFailed: true })),
    ...(options.durationS === null ? [] : [sleep(options.durationS * 1000).then(() => ({ reason: 'duration', agentFailed: false }))]),
  ]);
  clearInterval(timer);
  await tick;
  await scene.stopLoad();
  const elapsedS = (performance.now() - startedAt) / 1000;

  const why = outcome.reason === 'duration' ? '' : ` (${outcome.reason})`;
  const over = connections === null ? '' : ` over ${plural(connections, 'client connection')}`;
  const balanced = scene.clients.filter((client) => client.balanced);
  const sent = balanced.reduce((sum, { tally }) => sum + tally.ok + tally.failed, 0);
  const failed = balanced.reduce((sum, { tally }) => sum + tally.failed, 0);
  const report = [`Summary after ${elapsedS.toFixed(1)} s${why}: ${sent} RPCs${over}, ${failed} failed`];
  scene.clients.forEach((client, i) => {
    if (client.title !== '') report.push(`  ${client.title}`);
    report.push(...renderTable(meters[i].overall(elapsedS)));
  });
  if (outcome.agentFailed) {
    report.push('', "The agent's last output:", ...scene.agentOutput());
    return { status: 1, report };
  }
  const backendIds = [...scene.backends.keys()];
  const everyBackendServed = balanced.every(({ tally }) => backendIds.every((id) => (tally.served.get(id) ?? 0) > 0));
  const anyFailed = scene.clients.some(({ tally }) => tally.failed > 0);
  const smokeTestFailed = options.durationS !== null && (anyFailed || !everyBackendServed);
  return { status: smokeTestFailed ? 1 : 0, report };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

process.exit(await main());
