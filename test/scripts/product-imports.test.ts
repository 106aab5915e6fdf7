// What ships or runs for users (agent/, cni/, demo/, lab/) imports nothing from test/: a change to a test helper
// cannot break the agent, the CNI plugin or README's first command.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative, resolve } from 'node:path';
import { test } from 'node:test';

const ROOT = resolve(import.meta.dirname, '..', '..');
const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|new URL\(\s*)'(\.{1,2}\/[^']+)'/g;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'node_modules' ? [] : sourceFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

for (const folder of ['agent', 'cni', 'demo', 'lab']) {
  test(`${folder}/ imports nothing from test/`, () => {
    const files = sourceFiles(join(ROOT, folder));
    assert.ok(files.length > 0, `${folder}/ has TypeScript files`);
    const offending: string[] = [];
    for (const file of files) {
      for (const match of readFileSync(file, 'utf8').matchAll(IMPORT)) {
        const target = relative(ROOT, normalize(join(dirname(file), match[1])));
        if (target.startsWith('test/')) offending.push(`${relative(ROOT, file)} → ${target}`);
      }
    }
    assert.deepEqual(offending, []);
  });
}
