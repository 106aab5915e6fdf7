// scripts/check-imports.ts: finds a cycle between folders and an import out of the leaf folder in a made-up tree,
// and finds neither in the real agent/ (so CI's `npm run check:imports` stays green only while that holds).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { folderCycles, folderEdges, importProblems } from '../../scripts/check-imports.ts';

const SCRIPT = fileURLToPath(new URL('../../scripts/check-imports.ts', import.meta.url));
const made: string[] = [];
after(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** An agent/ folder in a temp dir with the given files (path below agent/ → source). */
function agentTree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'ml-check-imports-'));
  made.push(root);
  const agent = join(root, 'agent');
  for (const [path, source] of Object.entries(files)) {
    mkdirSync(dirname(join(agent, path)), { recursive: true });
    writeFileSync(join(agent, path), source);
  }
  return agent;
}

function runScript(agent: string): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [SCRIPT, agent], { encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const LAYERED = {
  'main.ts': "import { a } from './alpha/a.ts';\nimport './beta/b.ts';\n",
  'alpha/a.ts': "import { b } from '../beta/b.ts';\nexport const a = b;\n",
  'alpha/a2.ts': "export const load = () => import('../vocabulary/v.ts');\n",
  'beta/b.ts': "import type { V } from '../vocabulary/v.ts';\nimport { x } from 'node:fs';\nexport const b = 1;\n",
  'vocabulary/v.ts': "import { readFileSync } from 'node:fs';\nexport type V = number;\n",
};

describe('folderEdges', () => {
  it('records each folder-to-folder import once, with an example, for every import form', () => {
    const edges = folderEdges(agentTree(LAYERED));
    const plain = Object.fromEntries([...edges].map(([from, to]) => [from, Object.fromEntries(to)]));
    assert.deepEqual(plain, {
      '.': { alpha: 'agent/main.ts → agent/alpha/a.ts', beta: 'agent/main.ts → agent/beta/b.ts' },
      alpha: { beta: 'agent/alpha/a.ts → agent/beta/b.ts', vocabulary: 'agent/alpha/a2.ts → agent/vocabulary/v.ts' },
      beta: { vocabulary: 'agent/beta/b.ts → agent/vocabulary/v.ts' },
    });
  });
});

describe('folderCycles and importProblems', () => {
  it('find nothing in a layered tree', () => {
    const edges = folderEdges(agentTree(LAYERED));
    assert.deepEqual(folderCycles(edges), []);
    assert.deepEqual(importProblems(edges), []);
  });

  it('find a cycle between two folders, naming the imports that close it', () => {
    const agent = agentTree({
      ...LAYERED,
      'beta/back.ts': "import { a } from '../alpha/a.ts';\nexport const back = a;\n",
    });
    const edges = folderEdges(agent);
    assert.deepEqual(folderCycles(edges), [['alpha', 'beta', 'alpha']]);
    assert.deepEqual(importProblems(edges), [
      'import cycle between folders of agent/: alpha → beta → alpha\n' +
        '  agent/alpha/a.ts → agent/beta/b.ts\n' +
        '  agent/beta/back.ts → agent/alpha/a.ts',
    ]);
  });

  it('find a longer cycle through injected edges', () => {
    const edges = new Map([
      ['a', new Map([['b', 'a→b']])],
      ['b', new Map([['c', 'b→c']])],
      ['c', new Map([['a', 'c→a'], ['d', 'c→d']])],
    ]);
    assert.deepEqual(folderCycles(edges), [['a', 'b', 'c', 'a']]);
  });

  it('find the leaf folder importing meshlite, even without a cycle', () => {
    const agent = agentTree({
      ...LAYERED,
      'vocabulary/v.ts': "import { a } from '../gamma/g.ts';\nexport type V = number;\n",
      'gamma/g.ts': 'export const g = 1;\n',
    });
    const edges = folderEdges(agent);
    assert.deepEqual(folderCycles(edges), []);
    assert.deepEqual(importProblems(edges), [
      'agent/vocabulary must import nothing of meshlite, but imports agent/gamma: ' +
        'agent/vocabulary/v.ts → agent/gamma/g.ts',
    ]);
  });
});

describe('the script', () => {
  it('exits 1 with the problems on stderr for a bad tree', () => {
    const result = runScript(
      agentTree({ ...LAYERED, 'vocabulary/v.ts': "import { b } from '../beta/b.ts';\nexport type V = number;\n" }),
    );
    assert.equal(result.status, 1);
    assert.match(result.stderr, /import cycle between folders of agent\/: beta → vocabulary → beta/);
    assert.match(result.stderr, /agent\/vocabulary must import nothing of meshlite, but imports agent\/beta/);
  });

  it('passes on the real agent/', () => {
    const edges = folderEdges();
    assert.ok(edges.has('proxy') && edges.has('discovery'), 'the real tree was read');
    assert.deepEqual(importProblems(edges), []);
    const result = runScript(fileURLToPath(new URL('../../agent', import.meta.url)));
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /no import cycle/);
  });
});
