// Mutation testing with StrykerJS: `npm run mutation` (README, "Mutation testing"). Not run by CI: it is slow.
// A JavaScript module, not JSON, only so that each choice below can say why.

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  // The request path's decisions: balancing, upstream connections, the relay. Narrow it for one run with
  // `npm run mutation -- --mutate 'agent/balancer/**/*.ts'`.
  mutate: ['agent/balancer/**/*.ts', 'agent/upstream/**/*.ts', 'agent/proxy/**/*.ts'],

  // The tests are node:test files run by the pinned Node straight from TypeScript, which no Stryker runner plugin
  // knows: the command runner runs a command per mutant and reads only its exit code. The script runs the unit
  // tests of the mutant's own folder (and says which test files it leaves out, and why).
  testRunner: 'command',
  commandRunner: { command: 'node_modules/.bin/node scripts/mutation-tests.ts' },
  // The command runner reports no coverage, so each mutant runs all the tests of its folder.
  coverageAnalysis: 'off',

  // Stryker parses .ts with its TypeScript parser and writes mutants as plain JavaScript (its switch helpers and
  // ternaries), which Node's type stripping runs as it is. Nothing type-checks the sandbox, so no checker plugin,
  // and no `// @ts-nocheck` is added or other `// @ts-` comment removed.
  checkers: [],
  disableTypeChecks: false,

  // Two cores shared with other work: one mutant at a time (its test files run one at a time too).
  concurrency: 1,
  // On a loaded machine a test run can take twice as long as the dry run without any loop in sight.
  timeoutFactor: 2,
  timeoutMS: 10000,

  // The sandbox is a copy of the work tree (build/ included: proxy tests load the SO_ORIGINAL_DST addon) with
  // node_modules linked, not copied. Stryker never copies node_modules, .git, /reports or .stryker-tmp.
  tempDirName: '.stryker-tmp',
  symlinkNodeModules: true,
  ignorePatterns: ['/bench/results', '/.tmp', '/dist'],

  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
};
