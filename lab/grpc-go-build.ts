// Builds the grpc-go peers (lab/grpc-go/) with Debian's Go and grpc-go sources, once per source hash, into a cache.

import { execFile, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Debian's GOPATH: golang-google-grpc-dev puts grpc-go 1.33 (and what it imports) under its src/. */
export const DEBIAN_GOPATH = '/usr/share/gocode';
const GRPC_GO_MARKER = join(DEBIAN_GOPATH, 'src/google.golang.org/grpc/server.go');
const SOURCES = fileURLToPath(new URL('./grpc-go/', import.meta.url));
/** Our sources' import path inside the temporary GOPATH (the Go files import `meshlite/lab/grpc-go/echo`). */
const IMPORT_ROOT = 'meshlite/lab/grpc-go';
const CACHE = join(tmpdir(), 'meshlite-grpc-go');

export type GoProgram = 'echoserver' | 'echoclient';
const PROGRAMS: GoProgram[] = ['echoserver', 'echoclient'];
/** The benchmark's grpc-go backend and load generator (bench/backends.ts, bench/loaders.ts). */
export type GoBenchProgram = 'benchserver' | 'benchclient';
const BENCH_PROGRAMS: GoBenchProgram[] = ['benchserver', 'benchclient'];

let goVersion: string | undefined;

/**
 * Why the grpc-go peers cannot be built here, or false when they can: tests pass this as `skip`, so that a machine
 * without the packages skips them with the reason instead of failing.
 */
export function grpcGoUnavailable(): string | false {
  if (goVersion === undefined) {
    try {
      goVersion = execFileSync('go', ['version'], { encoding: 'utf8', env: goEnv('') }).trim();
    } catch {
      return 'no `go` on PATH (Debian\'s golang-go; scripts/setup.sh installs it)';
    }
  }
  if (!existsSync(GRPC_GO_MARKER)) {
    return `no grpc-go sources in ${DEBIAN_GOPATH} (Debian's golang-google-grpc-dev; scripts/setup.sh installs it)`;
  }
  return false;
}

// GOPATH mode, offline: Debian ships sources, not modules, and no module proxy is reachable. Only what the build
// needs is passed on, so that a developer's own GOFLAGS, GOPATH or go.env cannot change it.
function goEnv(gopath: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME ?? tmpdir(),
    TMPDIR: tmpdir(),
    GO111MODULE: 'off',
    GOPATH: gopath === '' ? DEBIAN_GOPATH : `${gopath}:${DEBIAN_GOPATH}`,
    GOFLAGS: '',
    GOENV: 'off',
    GOPROXY: 'off',
    GOTOOLCHAIN: 'local',
    GOTELEMETRY: 'off',
    // One compile cache for every build of every source hash: after a change only our few files compile again.
    GOCACHE: join(CACHE, 'gocache'),
    // Static binaries, and no C compiler needed.
    CGO_ENABLED: '0',
  };
}

function readSources(dir: string): Array<{ path: string; text: string }> {
  const files: Array<{ path: string; text: string }> = [];
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.go')) continue;
    const full = join(entry.parentPath, entry.name);
    files.push({ path: relative(dir, full), text: readFileSync(full, 'utf8') });
  }
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

// The binaries depend on our sources, the Go toolchain and the grpc-go release; a change in any rebuilds them.
function sourceHash(files: Array<{ path: string; text: string }>): string {
  const hash = createHash('sha256');
  for (const file of files) hash.update(`${file.path}\0${file.text}\0`);
  hash.update(`${goVersion}\0`);
  hash.update(readFileSync(join(DEBIAN_GOPATH, 'src/google.golang.org/grpc/version.go')));
  return hash.digest('hex').slice(0, 16);
}

async function build<P extends string>(programs: readonly P[]): Promise<Record<P, string>> {
  const reason = grpcGoUnavailable();
  if (reason !== false) throw new Error(`cannot build the grpc-go peers: ${reason}`);
  const files = readSources(SOURCES);
  const dir = join(CACHE, sourceHash(files));
  const binaries = Object.fromEntries(programs.map((program) => [program, join(dir, program)])) as Record<P, string>;
  if (programs.every((program) => existsSync(binaries[program]))) return binaries;

  mkdirSync(dir, { recursive: true });
  // The hashed text is what gets compiled, even if someone edits lab/grpc-go/ meanwhile.
  const gopath = mkdtempSync(join(CACHE, 'gopath-'));
  try {
    for (const file of files) {
      const target = join(gopath, 'src', IMPORT_ROOT, file.path);
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, file.text);
    }
    for (const program of programs) {
      if (existsSync(binaries[program])) continue;
      // Another process may build the same hash at the same time: each writes its own file, and the rename makes
      // whichever finishes first visible whole; the later rename replaces it with an identical binary.
      const partial = `${binaries[program]}.${process.pid}-${randomBytes(4).toString('hex')}.partial`;
      try {
        await run('go', ['build', '-o', partial, `${IMPORT_ROOT}/${program}`], {
          cwd: gopath,
          env: goEnv(gopath),
          timeout: 300_000,
        });
      } catch (err) {
        const stderr = (err as { stderr?: string }).stderr ?? '';
        throw new Error(`go build ${program} failed: ${stderr || String(err)}`, { cause: err });
      }
      renameSync(partial, binaries[program]);
    }
  } finally {
    rmSync(gopath, { recursive: true, force: true });
  }
  return binaries;
}

let built: Promise<Record<GoProgram, string>> | undefined;

/** The paths of the built echoserver and echoclient; builds them at most once per process (and per source hash). */
export function buildGoPeers(): Promise<Record<GoProgram, string>> {
  built ??= build(PROGRAMS);
  // A failed build is not remembered, so that a caller may try again after installing what was missing.
  built.catch(() => {
    built = undefined;
  });
  return built;
}

let builtBench: Promise<Record<GoBenchProgram, string>> | undefined;

/** The paths of the built benchserver and benchclient; built at most once per process (and per source hash). */
export function buildGoBenchPrograms(): Promise<Record<GoBenchProgram, string>> {
  builtBench ??= build(BENCH_PROGRAMS);
  builtBench.catch(() => {
    builtBench = undefined;
  });
  return builtBench;
}
