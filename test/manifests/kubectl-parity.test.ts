// The renderer against kustomize itself: every kustomization an operator can apply (manifests/, manifests/uninstall/,
// each with each platform's components) and the renderer's own fixtures render the same with `kubectl kustomize`.
// Skipped, with the reason, where kubectl is not installed; the renderer's own tests run everywhere.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { renderKustomization } from '../support/kustomize-render.ts';
import { RENDERABLE, writeFixture } from './kustomize-fixtures.ts';
import { variants } from './platform-variants.ts';

function onPath(command: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    try {
      accessSync(join(dir, command), constants.X_OK);
      return join(dir, command);
    } catch {
      // not in this one
    }
  }
  return null;
}

const kubectl = onPath('kubectl');
const skip = kubectl === null ? 'kubectl is not on PATH: nothing to compare the renderer with (its own tests still run)' : false;

async function kustomize(directory: URL): Promise<unknown[]> {
  const { stdout } = await promisify(execFile)(kubectl as string, ['kustomize', fileURLToPath(directory)], { timeout: 60_000 });
  return parseAllDocuments(stdout).map((doc) => {
    assert.deepEqual(doc.errors, []);
    return doc.toJS();
  });
}

it('renders every kustomization of manifests/ and every fixture exactly as `kubectl kustomize` does', { skip }, async () => {
  const { all, dispose } = await variants();
  try {
    for (const variant of all) {
      const expected = await kustomize(variant.directory);
      assert.ok(expected.length > 0, `${variant.name}: kubectl rendered nothing`);
      assert.deepEqual(await renderKustomization(variant.directory), expected, variant.name);
    }
  } finally {
    await dispose();
  }
  for (const [name, files] of Object.entries(RENDERABLE)) {
    const fixture = await writeFixture(files);
    try {
      assert.deepEqual(await renderKustomization(fixture.directory), await kustomize(fixture.directory), `fixture ${name}`);
    } finally {
      await fixture.dispose();
    }
  }
});
