// The agent's version comes from package.json; a copy of the code without it still starts, as "unknown".

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, it } from 'node:test';
import { readBuildInfo } from '../../agent/vocabulary/build-info.ts';

describe('readBuildInfo', () => {
  it("reads the repository's package.json version and the running Node.js", () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    assert.deepEqual(readBuildInfo(), { version: pkg.version, nodejs: process.version });
  });

  it('says "unknown" for a missing file, bad JSON, or no version', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshlite-build-info-'));
    try {
      const file = join(dir, 'package.json');
      assert.equal(readBuildInfo(pathToFileURL(file)).version, 'unknown');
      writeFileSync(file, '{ not json');
      assert.equal(readBuildInfo(pathToFileURL(file)).version, 'unknown');
      writeFileSync(file, JSON.stringify({ name: 'x', version: 3 }));
      assert.equal(readBuildInfo(pathToFileURL(file)).version, 'unknown');
      writeFileSync(file, JSON.stringify({ version: '1.2.3' }));
      assert.equal(readBuildInfo(pathToFileURL(file)).version, '1.2.3');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
