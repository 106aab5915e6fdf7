// The test command of `npm run mutation` (stryker.config.mjs). Stryker's command runner runs it in its sandbox once
// for the dry run and then once per mutant, with the mutant's id in __STRYKER_ACTIVE_MUTANT__, and counts the mutant
// killed when this exits non-zero. A mutant is tested by the unit tests of its own folder: a mutant in
// agent/balancer/ by test/balancer/, so a folder's score is the same in a run of that folder alone and in the whole
// scope. The dry run runs the tests of every folder that has mutants. Tests run on the Node that runs this script
// (the project's pinned one), all files in one process.

import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');

/** The folders of agent/ in scope; each one's unit tests are the *.test.ts files under test/<folder>/. */
const SCOPE = ['balancer', 'upstream', 'proxy'] as const;

/**
 * Test files of those folders left out, and why: a file runs once per mutant of its folder, so it must be quick and
 * must not need root. Times are one file alone on the 2-core machine (node --test); the files kept took under 2 s
 * each, except relay.test.ts (3 to 4.5 s), which is the relay's main test.
 */
const EXCLUDED: Readonly<Record<string, string>> = {
  'test/proxy/listener.test.ts': 'builds a network namespace as root',
  'test/proxy/original-destination.test.ts': 'builds network namespaces and iptables rules as root',
  'test/proxy/relay-failures.test.ts': '7.5 s: backend processes killed under load, deadlines waited out',
  'test/proxy/relay-traps.test.ts': '4 s: a 1000-stream reset storm and a stalled large response',
};

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

/** Whether a source of agent/<folder>/ holds `text`. */
function folderHolds(folder: string, text: string): boolean {
  return filesIn(`agent/${folder}`, '.ts').some((file) => readFileSync(join(root, file), 'utf8').includes(text));
}

function testFiles(folders: readonly string[]): string[] {
  return folders.flatMap((folder) =>
    filesIn(`test/${folder}`, '.test.ts').filter((file) => !Object.hasOwn(EXCLUDED, file)),
  );
}

/** The folders whose tests decide: the active mutant's, or for the dry run every folder with mutants (outside a
 *  Stryker sandbox, all of them). */
function foldersToTest(): readonly string[] {
  const mutant = process.env.__STRYKER_ACTIVE_MUTANT__;
  if (mutant !== undefined) {
    const own = SCOPE.filter((folder) => folderHolds(folder, `${MUTANT_SWITCH}("${mutant}")`));
    if (own.length > 0) return own;
  }
  const mutated = SCOPE.filter((folder) => folderHolds(folder, MUTANT_SWITCH));
  return mutated.length > 0 ? mutated : SCOPE;
}

// One process for all the files (--test-isolation=none): measured on test/balancer/, 0.4 s against 2.0 s with a
// process per file. The dot reporter keeps each killed mutant's output, which the JSON report stores, to the failures.
const files = testFiles(foldersToTest());
const result = spawnSync(process.execPath, ['--test', '--test-isolation=none', '--test-reporter=dot', ...files], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(result.status ?? 1);
