// Which files a TypeScript file loads: its relative imports, and everything they load in turn. Used by the import
// check (scripts/check-imports.ts) and by mutation testing (scripts/mutation-tests.ts), which runs only the tests
// that load the mutated file.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';

/** A relative module a file imports: `from '…'`, `import '…'` (side effects only) or `import('…')`. */
const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)'(\.{1,2}\/[^']+)'/g;

/** The paths of the relative modules `file` imports, resolved against its folder, in the order written. */
export function relativeImports(file: string): string[] {
  return [...readFileSync(file, 'utf8').matchAll(IMPORT)].map((match) => normalize(join(dirname(file), match[1])));
}

/** `file` and every file it loads, directly or through others (imports of files that do not exist are left out). */
export function importClosure(file: string): Set<string> {
  const seen = new Set<string>();
  const pending = [normalize(file)];
  while (pending.length > 0) {
    const next = pending.pop() as string;
    if (seen.has(next) || !existsSync(next)) continue;
    seen.add(next);
    pending.push(...relativeImports(next));
  }
  return seen;
}
