// The quick-start demo (demo/run.ts) as users run it: the spread over three backends, no failure, nothing left behind.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const DEMO = fileURLToPath(new URL('../demo/run.ts', import.meta.url));
const BACKENDS = ['backend-a', 'backend-b', 'backend-c'];

interface DemoRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the demo on this (pinned) Node; `whileRunning` sees the output so far and may signal the demo. */
async function runDemo(args: string[], whileRunning?: (stdout: string, child: ChildProcess) => void): Promise<DemoRun> {
  const child = spawn(process.execPath, [DEMO, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    whileRunning?.(stdout, child);
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

/** Requests per backend in the final summary, and its first line. */
function summary(stdout: string): { heading: string; counts: Map<string, number> } {
  const start = stdout.lastIndexOf('\nSummary after ');
  assert.ok(start >= 0, `no summary in the output:\n${stdout}`);
  const text = stdout.slice(start + 1);
  const counts = new Map<string, number>();
  for (const match of text.matchAll(/^ {2}(backend-[a-z])\s+\S+\s+(\d+)\s/gm)) counts.set(match[1], Number(match[2]));
  return { heading: text.slice(0, text.indexOf('\n')), counts };
}

/** The agent's PID and the demo's temp dir, as the demo printed them. */
function startedResources(stdout: string): { agentPid: number; dir: string } {
  const pid = /agent {5}pid (\d+),/.exec(stdout);
  const dir = /endpoints from (\S+)\/services\.yaml/.exec(stdout);
  assert.ok(pid !== null && dir !== null, `the demo did not print the agent's PID and its static file:\n${stdout}`);
  return { agentPid: Number(pid[1]), dir: dir[1] };
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** PIDs of processes whose command line mentions `text` (the agent's names the demo's temp dir). */
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

function assertNothingLeft(stdout: string): void {
  const { agentPid, dir } = startedResources(stdout);
  assert.equal(processExists(agentPid), false, `the agent (pid ${agentPid}) is still running`);
  assert.deepEqual(processesMentioning(dir), [], `processes still use ${dir}`);
  assert.equal(existsSync(dir), false, `${dir} was not removed`);
}

function assertEverySpread(stdout: string): void {
  const { heading, counts } = summary(stdout);
  assert.match(heading, / over 1 client connection, 0 failed$/, heading);
  assert.deepEqual([...counts.keys()].sort(), BACKENDS, `backends in the summary:\n${stdout}`);
  for (const [backend, count] of counts) assert.ok(count > 0, `${backend} got no requests:\n${stdout}`);
}

test('demo --duration: every backend gets requests from one client connection, none fails, nothing is left', { timeout: 60_000 }, async () => {
  const run = await runDemo(['--duration', '3']);
  assert.equal(run.code, 0, `exit ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`);
  assert.match(run.stdout, /curl http:\/\/127\.0\.0\.1:\d+\/debug\/endpoints/);
  assert.match(run.stdout, /ONE grpc-js channel = ONE HTTP\/2 connection/);
  assertEverySpread(run.stdout);
  assertNothingLeft(run.stdout);
});

test('demo until Ctrl-C: SIGINT stops the load, then the agent by its PID, and exits 0', { timeout: 60_000 }, async () => {
  let signalled = false;
  const run = await runDemo([], (stdout, child) => {
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
  assertEverySpread(run.stdout);
  assertNothingLeft(run.stdout);
});

test('demo with a wrong option: exit 2 and the usage, nothing started', async () => {
  const run = await runDemo(['--balancer', 'random']);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /--balancer wants one of p2c-ewma, least-request, round-robin, not "random"/);
  assert.match(run.stderr, /Usage: npm run demo/);
  assert.equal(run.stdout, '');
});
