// The test command of `npm run mutation` (stryker.config.mjs). Stryker's command runner runs it in its sandbox once
// for the dry run and then once per mutant, with the mutant's id in __STRYKER_ACTIVE_MUTANT__, and counts the mutant
// killed when this exits non-zero. A mutant is tested by the unit tests of its own folder (a mutant in
// agent/balancer/ by test/balancer/) that load the mutated file, directly or through other files: a test that never
// loads it cannot tell the mutant from the code, so leaving it out changes no result, only the time. A folder's
// score is therefore the same in a run of that folder alone and in the whole scope. The dry run runs every test of
// every folder that has mutants. Tests run on the Node that runs this script (the project's pinned one), all files
// in one process, and the run stops at the first failing test: one failure kills the mutant.

import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { importClosure } from './relative-imports.ts';

const root = resolve(import.meta.dirname, '..');

/**
 * The folders of agent/ in scope; each one's unit tests are the *.test.ts files under test/<folder>/, every one of
 * them, slow ones included (relay-failures.test.ts takes 7 s, relay-traps.test.ts 3 s, one file alone on the 2-core
 * machine): the run stops at the first failure, so they cost their time only for the mutants that survive, and those
 * are the ones they are there to catch. Like `npm test`, some need root (listener.test.ts and
 * original-destination.test.ts build network namespaces).
 */
const SCOPE = ['balancer', 'upstream', 'proxy'] as const;

/**
 * A test that takes longer than this fails (and so kills the mutant): the slowest test waits out a 5 s timeout, the
 * others take under 2.5 s, so a test still running after 20 s waits for something the mutant broke (an answer that
 * never comes, a timer never set).
 */
const TEST_TIMEOUT_MS = 20_000;

/**
 * How long the test process may go without writing anything before it counts as hung. Each test writes its result
 * when it ends and none may take more than TEST_TIMEOUT_MS, so silence beyond that means the process waits outside
 * any test: after the last one, a mutant that leaves a socket or a timer open keeps it alive (a leak the code must
 * not have), and the runner then never writes its summary.
 */
const SILENCE_LIMIT_MS = TEST_TIMEOUT_MS + 5_000;

/** Stryker's mutant switch: each mutant's code is guarded by a call to this with its id. */
const MUTANT_SWITCH = 'stryMutAct_9fa48';

/** The files under `dir` (subfolders too) as paths relative to the root, sorted. */
function filesIn(dir: string, suffix: string): string[] {
  if (!existsSync(join(root, dir))) return [];
  return readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith(suffix))
    .sort()
    .map((name) => `${dir}/${name}`);
}

/** The sources of agent/<folder>/ that hold `text`. */
function sourcesHolding(folder: string, text: string): string[] {
  return filesIn(`agent/${folder}`, '.ts').filter((file) => readFileSync(join(root, file), 'utf8').includes(text));
}

function folderTests(folder: string): string[] {
  return filesIn(`test/${folder}`, '.test.ts');
}

/**
 * The test files to run: for a mutant, those of its folder that load its file; for the dry run, every test of each
 * folder with mutants (outside a Stryker sandbox, every folder in scope).
 */
function testsToRun(): string[] {
  const mutant = process.env.__STRYKER_ACTIVE_MUTANT__;
  if (mutant !== undefined) {
    for (const folder of SCOPE) {
      const [mutated] = sourcesHolding(folder, `${MUTANT_SWITCH}("${mutant}")`);
      if (mutated === undefined) continue;
      return folderTests(folder).filter((test) => importClosure(join(root, test)).has(join(root, mutated)));
    }
  }
  const withMutants = SCOPE.filter((folder) => sourcesHolding(folder, MUTANT_SWITCH).length > 0);
  return (withMutants.length > 0 ? withMutants : SCOPE).flatMap(folderTests);
}

/**
 * Runs the files in one process (--test-isolation=none: measured on test/balancer/, 0.4 s against 2.0 s with a
 * process per file) with the TAP reporter, passing its output through (Stryker's JSON report keeps it), and resolves
 * with the exit status: the test process's own, or 1 as soon as a test fails or when it writes nothing for
 * SILENCE_LIMIT_MS (either way the test process is killed).
 */
function runTests(files: string[]): Promise<number> {
  if (files.length === 0) {
    process.stdout.write('no test of this folder loads the mutated file\n');
    return Promise.resolve(0);
  }
  const reporting = ['--test-isolation=none', '--test-reporter=tap', `--test-timeout=${TEST_TIMEOUT_MS}`];
  const args = ['--test', ...reporting, ...files];
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((done) => {
    let pending = '';
    let stopped = false;
    const stop = (why: string): void => {
      if (stopped) return;
      stopped = true;
      process.stdout.write(`\n${why}\n`);
      child.kill('SIGKILL');
      done(1);
    };
    const hung = (): void => stop(`no test output for ${SILENCE_LIMIT_MS} ms: the process hangs`);
    const silence = setTimeout(hung, SILENCE_LIMIT_MS);
    child.stdout.on('data', (chunk: Buffer) => {
      silence.refresh();
      process.stdout.write(chunk);
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() as string;
      const failed = lines.some((line) => /^\s*not ok /.test(line) && !/ # TODO\b/.test(line));
      if (failed) stop('a test failed: the mutant is killed (the other tests are skipped)');
    });
    child.on('exit', (code) => {
      clearTimeout(silence);
      done(code ?? 1);
    });
  });
}

process.exit(await runTests(testsToRun()));
