// The quick-start demo (demo/run.ts) as users run it, in both modes: the spread, no failure, nothing left behind.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chooseMode, type HostFacts, ModeUnavailable, transparentBlocker, hostFacts } from '../demo/mode.ts';

const DEMO = fileURLToPath(new URL('../demo/run.ts', import.meta.url));
const BACKENDS = ['backend-a', 'backend-b', 'backend-c'];
const TRANSPARENT_LINE =
  'transparent mode: pods are network namespaces on this machine; the client dials ClusterIP 10.79.100.10:50051 and does not know meshlite exists';
const blocker = transparentBlocker(hostFacts());

interface DemoRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Every process seen below the demo while it ran, with its start time (a PID alone may be reused). */
  descendants: Map<number, string>;
}

/** Runs the demo on this (pinned) Node; `whileRunning` sees the output so far and may signal the demo. */
async function runDemo(args: string[], whileRunning?: (stdout: string, child: ChildProcess) => void): Promise<DemoRun> {
  const child = spawn(process.execPath, [DEMO, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const descendants = new Map<number, string>();
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    if (child.pid !== undefined) for (const [pid, start] of descendantsOf(child.pid)) descendants.set(pid, start);
    whileRunning?.(stdout, child);
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr, descendants };
}

/** Fields of /proc/PID/stat after the command name (which may hold spaces): [0] is the state, [1] the parent. */
function statFields(pid: number | string): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** Processes below `root` (children, their children, …) by PID, with their start times. */
function descendantsOf(root: number): Map<number, string> {
  const children = new Map<number, number[]>();
  const starts = new Map<number, string>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(entry);
    if (fields === null) continue;
    const parent = Number(fields[1]);
    children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
    starts.set(Number(entry), fields[19]);
  }
  const found = new Map<number, string>();
  const visit = (pid: number): void => {
    for (const child of children.get(pid) ?? []) {
      found.set(child, starts.get(child) ?? '');
      visit(child);
    }
  };
  visit(root);
  return found;
}

/** Those of `processes` that still run: same PID, same start time, not a zombie. */
function stillRunning(processes: Map<number, string>): number[] {
  return [...processes].filter(([pid, start]) => {
    const fields = statFields(pid);
    return fields !== null && fields[19] === start && fields[0] !== 'Z';
  }).map(([pid]) => pid);
}

/** PIDs of processes whose command line mentions `text`. */
function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text)) pids.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

interface Summary {
  heading: string;
  /** Requests per backend, by the title above each table ('' for the one untitled table of explicit mode). */
  tables: Map<string, Map<string, number>>;
  /** Failed RPCs, by table title. */
  failed: Map<string, number>;
}

/** The final summary: its first line and its tables. */
function summary(stdout: string): Summary {
  const start = stdout.lastIndexOf('\nSummary after ');
  assert.ok(start >= 0, `no summary in the output:\n${stdout}`);
  const lines = stdout.slice(start + 1).split('\n');
  const tables = new Map<string, Map<string, number>>();
  const failed = new Map<string, number>();
  let title = '';
  for (const line of lines.slice(1)) {
    if (/^ {2}client-/.test(line)) title = line.trim().split(' ')[0];
    const total = /^ {2}total\s.* (\d+) failed$/.exec(line);
    if (total !== null) failed.set(title, Number(total[1]));
    const row = /^ {2}(backend-[a-z])\s+\S+\s+(\d+)\s/.exec(line);
    if (row === null) continue;
    if (!tables.has(title)) tables.set(title, new Map());
    tables.get(title)?.set(row[1], Number(row[2]));
  }
  return { heading: lines[0], tables, failed };
}

function assertSpread(counts: Map<string, number> | undefined, stdout: string): void {
  assert.ok(counts !== undefined, `no such table in the summary:\n${stdout}`);
  assert.deepEqual([...counts.keys()].sort(), BACKENDS, `backends in the summary:\n${stdout}`);
  for (const [backend, count] of counts) assert.ok(count > 0, `${backend} got no requests:\n${stdout}`);
}

function assertExplicitRun(run: DemoRun): void {
  const { heading, tables } = summary(run.stdout);
  assert.match(heading, / over 1 client connection, 0 failed$/, heading);
  assertSpread(tables.get(''), run.stdout);
  const pid = /agent {5}pid (\d+),/.exec(run.stdout);
  const dir = /endpoints from (\S+)\/services\.yaml/.exec(run.stdout);
  assert.ok(pid !== null && dir !== null, `the demo did not print the agent's PID and its static file:\n${run.stdout}`);
  assert.ok(run.descendants.has(Number(pid[1])), 'the agent was seen among the demo\'s processes');
  assert.deepEqual(stillRunning(run.descendants), [], 'processes the demo started are still running');
  assert.deepEqual(processesMentioning(dir[1]), [], `processes still use ${dir[1]}`);
  assert.equal(existsSync(dir[1]), false, `${dir[1]} was not removed`);
}

function assertTransparentRun(run: DemoRun): void {
  assert.ok(run.stdout.includes(`  ${TRANSPARENT_LINE}\n`), `no transparent mode line:\n${run.stdout}`);
  const { heading, tables, failed } = summary(run.stdout);
  // Only the annotated pod's connection reaches the agent; its requests are spread, the plain pod's are not.
  assert.match(heading, / over 1 client connection, 0 failed$/, heading);
  assertSpread(tables.get('client-on'), run.stdout);
  const plain = [...(tables.get('client-off') ?? new Map<string, number>()).values()];
  assert.equal(plain.filter((count) => count > 0).length, 1, `client-off's one connection reached one backend:\n${run.stdout}`);
  assert.deepEqual(Object.fromEntries(failed), { 'client-on': 0, 'client-off': 0 }, `failures:\n${run.stdout}`);
  assert.doesNotMatch(run.stdout, /last failure:/);

  const named = /all of it namespaces (\S+)-\*, files in (\S+)/.exec(run.stdout);
  assert.ok(named !== null, `the demo did not name its namespaces:\n${run.stdout}`);
  const [, prefix, dir] = named;
  assert.match(run.stdout, new RegExp(`nothing of ${prefix} is left`));
  const namespaces = existsSync('/var/run/netns') ? readdirSync('/var/run/netns') : [];
  assert.deepEqual(namespaces.filter((name) => name.startsWith(`${prefix}-`)), [], 'namespaces left');
  assert.ok(run.descendants.size >= 7, `the agent, 3 backends, 2 clients and a probe were seen (${run.descendants.size})`);
  assert.deepEqual(stillRunning(run.descendants), [], 'processes the demo started are still running');
  assert.deepEqual(processesMentioning(prefix), [], `processes still mention ${prefix}`);
  assert.equal(existsSync(dir), false, `${dir} was not removed`);
}

test('explicit mode --duration: every backend gets requests from one client connection, none fails, nothing is left', { timeout: 60_000 }, async () => {
  const run = await runDemo(['--mode', 'explicit', '--duration', '2']);
  assert.equal(run.code, 0, `exit ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`);
  assert.match(run.stdout, /^ {2}explicit mode \(chosen with --mode explicit\): the client dials the agent$/m);
  assert.match(run.stdout, /curl http:\/\/127\.0\.0\.1:\d+\/debug\/endpoints/);
  assert.match(run.stdout, /ONE grpc-js channel = ONE HTTP\/2 connection/);
  assertExplicitRun(run);
});

test('explicit mode until Ctrl-C: SIGINT stops the load, then the agent by its PID, and exits 0', { timeout: 60_000 }, async () => {
  let signalled = false;
  const run = await runDemo(['--mode', 'explicit'], (stdout, child) => {
    // After the second live block, so that every backend had time to answer.
    if (!signalled && stdout.split('client connection at the agent;').length > 2) {
      signalled = true;
      child.kill('SIGINT');
    }
  });
  assert.ok(signalled, `the demo ended before it showed two blocks:\n${run.stdout}\n${run.stderr}`);
  assert.equal(run.code, 0, `exit ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`);
  assert.match(run.stdout, /stopping: the load; the agent, pid \d+ \(exit 0\); the backends; removed /);
  assert.match(summary(run.stdout).heading, /\(Ctrl-C\)/);
  assertExplicitRun(run);
});

test('auto mode --duration: transparent as root on Linux (pods as namespaces, a ClusterIP), else explicit and why', { timeout: 90_000 }, async () => {
  const run = await runDemo(['--duration', '2']);
  assert.equal(run.code, 0, `exit ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`);
  if (blocker !== null) {
    assert.ok(run.stdout.includes(`  explicit mode (${blocker}): the client dials the agent\n`), run.stdout);
    assertExplicitRun(run);
    return;
  }
  assert.match(run.stdout, /client-on {2}pod 10\.79\.\d+\.\d+, annotated meshlite\.io\/inject: enabled/);
  assert.match(run.stdout, /each: ONE grpc-js channel = ONE HTTP\/2 connection to 10\.79\.100\.10:50051/);
  assertTransparentRun(run);
});

test('transparent mode until Ctrl-C: the dashboard it prints answers from this machine; clients, then pods, then the agent stop; every namespace goes; exit 0', { skip: blocker ?? false, timeout: 90_000 }, async () => {
  let signalled = false;
  type Frame = { services?: Array<{ name: string; endpoints: unknown[] }> };
  const seen: { frame: Frame | null } = { frame: null };
  const run = await runDemo(['--mode', 'transparent'], (stdout, child) => {
    if (!signalled && stdout.split('client connection at the agent;').length > 2) {
      signalled = true;
      // The printed address reaches the agent's admin server inside the node namespace, as a port-forward would.
      const url = /^ {2}dashboard (http:\/\/127\.0\.0\.1:\d+\/)/m.exec(stdout)?.[1];
      void fetch(`${url}dashboard/data`)
        .then((response) => response.json())
        .then((json) => {
          seen.frame = json as Frame;
        })
        .catch(() => {})
        .finally(() => child.kill('SIGINT'));
    }
  });
  assert.equal(seen.frame?.services?.[0]?.name, 'echo', `the dashboard's data through the printed address: ${JSON.stringify(seen.frame)}`);
  assert.equal(seen.frame?.services?.[0]?.endpoints.length, 3);
  assert.ok(signalled, `the demo ended before it showed two blocks:\n${run.stdout}\n${run.stderr}`);
  assert.equal(run.code, 0, `exit ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`);
  assert.match(
    run.stdout,
    /stopping: the load; the 5 pods \(their processes, then CNI DEL\); the agent, pid \d+ \(exit 0\); the node namespace; removed \S+; nothing of \S+ is left\n/,
  );
  assert.match(summary(run.stdout).heading, /\(Ctrl-C\)/);
  assertTransparentRun(run);
});

test('demo with a wrong option: exit 2 and the usage, nothing started', async () => {
  for (const [args, message] of [
    [['--balancer', 'random'], /--balancer wants one of p2c-ewma, least-request, round-robin, not "random"/],
    [['--mode', 'sidecar'], /--mode wants one of auto, transparent, explicit, not "sidecar"/],
  ] as const) {
    const run = await runDemo([...args]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, message);
    assert.match(run.stderr, /Usage: npm run demo/);
    assert.equal(run.stdout, '');
  }
});

test('mode choice: auto falls back to explicit with the reason; --mode transparent refuses to run without it', () => {
  const able: HostFacts = {
    platform: 'linux',
    uid: 0,
    capabilities: 0x1ffffffffffn,
    executable: () => true,
    exists: () => true,
  };
  assert.deepEqual(chooseMode('auto', able), { mode: 'transparent' });
  assert.deepEqual(chooseMode('explicit', able), { mode: 'explicit', reason: 'chosen with --mode explicit' });
  const cases: Array<[Partial<HostFacts>, RegExp]> = [
    [{ platform: 'darwin' }, /^not Linux: darwin$/],
    [{ uid: 1000 }, /^not root: uid 1000$/],
    [{ capabilities: 0x1ffffffefffn }, /^root without CAP_NET_ADMIN, as in an unprivileged container$/],
    [{ executable: (path) => !path.startsWith('/usr/lib/cni/') }, /^CNI plugins missing: \/usr\/lib\/cni\/bridge, .*loopback \(apt install containernetworking-plugins\)$/],
    [{ executable: (path) => !path.endsWith('/ipset') }, /^not on PATH: ipset \(apt install ipset\)$/],
    [{ exists: () => false }, /^the SO_ORIGINAL_DST addon is not built: .*original_dst\.node/],
  ];
  for (const [facts, reason] of cases) {
    const choice = chooseMode('auto', { ...able, ...facts });
    assert.equal(choice.mode, 'explicit');
    assert.match(choice.mode === 'explicit' ? choice.reason : '', reason);
    assert.throws(() => chooseMode('transparent', { ...able, ...facts }), (error: Error) => error instanceof ModeUnavailable && reason.test(error.message.replace('transparent mode cannot run here: ', '')));
  }
});
