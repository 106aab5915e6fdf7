// docs/architecture.md matches the tree: its "Files" section names every folder of agent/ and only paths that
// exist, and every "docs/architecture.md, <Section>" that a source comment cites is one of its sections.

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DOC = readFileSync(join(ROOT, 'docs/architecture.md'), 'utf8');
/** Folders whose sources may cite the document. */
const SOURCE_FOLDERS = ['agent', 'cni', 'lab', 'demo', 'bench', 'test', 'scripts'];

/** The level-2 headings, in order. */
function sections(markdown: string): string[] {
  return [...markdown.matchAll(/^## (.+?)\s*$/gm)].map((match) => match[1]);
}

/** The text of one level-2 section, up to the next level-2 heading. */
function section(markdown: string, name: string): string {
  const lines = markdown.split('\n');
  const start = lines.indexOf(`## ${name}`);
  assert.notEqual(start, -1, `docs/architecture.md has no "## ${name}" section`);
  const end = lines.findIndex((line, i) => i > start && line.startsWith('## '));
  return lines.slice(start + 1, end === -1 ? undefined : end).join('\n');
}

/** Every `agent/…` path a text names, without a sentence's trailing full stop or comma. */
function agentPaths(text: string): string[] {
  return [...text.matchAll(/(?<![\w/.-])agent\/[\w./-]*/g)].map((match) => match[0].replace(/[.,]+$/, ''));
}

function folders(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => !name.startsWith('.') && statSync(join(dir, name)).isDirectory())
    .flatMap((name) => [join(dir, name), ...folders(join(dir, name))]);
}

function sourceFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name.startsWith('.') || name === 'node_modules' || name === 'results') return [];
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|mjs|c|sh)$/.test(name) ? [path] : [];
  });
}

describe('docs/architecture.md', () => {
  const files = section(DOC, 'Files');
  const named = new Set(agentPaths(files));

  it('names every folder of agent/, recursively, in its Files section', () => {
    const tree = folders(join(ROOT, 'agent')).map((dir) => `${relative(ROOT, dir)}/`);
    assert.ok(tree.includes('agent/proxy/'), 'the tree was read');
    const missing = tree.filter((folder) => !named.has(folder));
    assert.deepEqual(missing, [], `folders of agent/ missing from "## Files": ${missing.join(', ')}`);
  });

  it('names only agent/ paths that exist', () => {
    assert.ok(named.size > 0, 'the Files section names agent/ paths');
    const gone = [...named].filter((path) => !existsSync(join(ROOT, path)));
    assert.deepEqual(gone, [], `paths in "## Files" that do not exist: ${gone.join(', ')}`);
  });

  it('has every section that source comments cite', () => {
    const headings = new Set(sections(DOC));
    const cited = /docs\/architecture\.md,(?:\s|\/\/|\*)*([A-Z][a-z]+(?: [a-z]+)*)/g;
    const unknown: string[] = [];
    let citations = 0;
    for (const file of SOURCE_FOLDERS.flatMap((folder) => sourceFiles(join(ROOT, folder)))) {
      for (const match of readFileSync(file, 'utf8').matchAll(cited)) {
        citations++;
        if (!headings.has(match[1])) unknown.push(`${relative(ROOT, file)}: "${match[1]}"`);
      }
    }
    assert.ok(citations > 0, 'some comment cites a section');
    assert.deepEqual(unknown, [], `cited sections that docs/architecture.md does not have:\n${unknown.join('\n')}`);
  });
});
