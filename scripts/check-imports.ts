// Fails when folders of agent/ import each other in a cycle, or when agent/vocabulary imports anything of meshlite.
// Run by .ci/run (npm run check:imports); docs/architecture.md shows the layering it keeps.
// `node scripts/check-imports.ts [agent-dir]` checks another tree (the default is this repository's agent/).

import { readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { relativeImports } from './relative-imports.ts';

const AGENT = resolve(import.meta.dirname, '..', 'agent');
const LEAF = 'vocabulary';

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

/**
 * Which folder imports which: folder → (imported folder → one example import, `file → target`, for the message).
 * A folder is its path below `agent` ("." for agent/ itself, "../cni" for a folder outside it).
 */
export function folderEdges(agent: string = AGENT): Map<string, Map<string, string>> {
  const root = dirname(agent);
  const folderOf = (file: string): string => relative(agent, dirname(file)) || '.';
  const edges = new Map<string, Map<string, string>>();
  for (const file of sourceFiles(agent)) {
    const from = folderOf(file);
    for (const target of relativeImports(file)) {
      const to = folderOf(target);
      if (to === from) continue;
      if (!edges.has(from)) edges.set(from, new Map());
      const example = edges.get(from) as Map<string, string>;
      if (!example.has(to)) example.set(to, `${relative(root, file)} → ${relative(root, target)}`);
    }
  }
  return edges;
}

/** Folder cycles as paths (a → b → … → a), found by depth-first search; empty when the folders are layered. */
export function folderCycles(edges: Map<string, Map<string, string>>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const path: string[] = [];
  const visit = (folder: string): void => {
    state.set(folder, 'visiting');
    path.push(folder);
    for (const next of edges.get(folder)?.keys() ?? []) {
      if (state.get(next) === 'visiting') cycles.push([...path.slice(path.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    path.pop();
    state.set(folder, 'done');
  };
  for (const folder of [...edges.keys()].sort()) if (!state.has(folder)) visit(folder);
  return cycles;
}

/** Every cycle and every import out of the leaf folder, one message each (with example imports); empty when clean. */
export function importProblems(edges: Map<string, Map<string, string>>): string[] {
  const problems: string[] = [];
  for (const cycle of folderCycles(edges)) {
    const steps = cycle.slice(1).map((to, i) => `  ${edges.get(cycle[i])?.get(to)}`);
    problems.push(`import cycle between folders of agent/: ${cycle.join(' → ')}\n${steps.join('\n')}`);
  }
  for (const [to, example] of edges.get(LEAF) ?? []) {
    problems.push(`agent/${LEAF} must import nothing of meshlite, but imports agent/${to}: ${example}`);
  }
  return problems;
}

function main(agent: string): void {
  const edges = folderEdges(agent);
  const problems = importProblems(edges);
  if (problems.length > 0) {
    process.stderr.write(`${problems.join('\n\n')}\n`);
    process.exit(1);
  }
  const folders = new Set([...edges.keys(), ...[...edges.values()].flatMap((m) => [...m.keys()])]);
  process.stdout.write(`agent/: ${folders.size} folders, no import cycle; agent/${LEAF} imports nothing of meshlite\n`);
}

if (process.argv[1] === import.meta.filename) main(resolve(process.argv[2] ?? AGENT));
