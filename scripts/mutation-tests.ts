// The test command of `npm run mutation` (stryker.config.mjs): Stryker's command runner runs it in its sandbox once
// for the dry run and once per mutant (the mutant's id in the environment), and counts a mutant killed when it exits
// non-zero. It runs, on the Node that runs it (the project's pinned one), the unit tests of each folder in scope
// whose sources Stryker has instrumented in this sandbox: `--mutate 'agent/balancer/**/*.ts'` runs test/balancer/
// alone; the whole scope runs all three folders for every mutant. Outside a Stryker sandbox it runs all of them.

import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');

/** The folders of agent/ in scope; each one's unit tests are the *.test.ts files under test/<folder>/. */
const SCOPE = ['balancer', 'upstream', 'proxy'] as const;

/**
 * Test files of those folders left out, with why: each one runs once per mutant, so it must be quick and must not
 * need root. Measured on the 2-core machine (node --test, one file at a time); see README "Mutation testing".
 */
const EXCLUDED: Readonly<Record<string, string>> = {
  'test/proxy/listener.test.ts': 'builds a network namespace as root',
  'test/proxy/original-destination.test.ts': 'builds network namespaces and iptables rules as root',
};

/** What Stryker's instrumenter puts at the top of every file it mutates (its namespace helper). */
const INSTRUMENTED = 'stryNS_9fa48';

/** The files under `dir` (subfolders too) as paths relative to the root, sorted. */
function filesIn(dir: string, suffix: string): string[] {
  if (!existsSync(join(root, dir))) return [];
  return readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith(suffix))
    .sort()
    .map((name) => `${dir}/${name}`);
}

function instrumented(folder: string): boolean {
  return filesIn(`agent/${folder}`, '.ts').some((file) => readFileSync(join(root, file), 'utf8').includes(INSTRUMENTED));
}

function testFiles(folders: readonly string[]): string[] {
  return folders.flatMap((folder) =>
    filesIn(`test/${folder}`, '.test.ts').filter((file) => !Object.hasOwn(EXCLUDED, file)),
  );
}

const mutated = SCOPE.filter(instrumented);
const files = testFiles(mutated.length > 0 ? mutated : SCOPE);
const result = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=dot', ...files], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(result.status ?? 1);
