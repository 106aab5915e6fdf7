// The state file on disk: atomic replacement with no temp file left, a size bound both ways, and every failure a code.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { encodePersistedView, type PersistedView } from '../../agent/discovery/persisted-view.ts';
import { nodeStateFileAccess, StateFile, type StateFileAccess, StateFileWriteError } from '../../agent/discovery/state-file.ts';
import { endpointSpec, serviceSpec } from '../support/service-records.ts';

const root = mkdtempSync(join(tmpdir(), 'ml-state-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;

function freshDir(): string {
  const dir = join(root, `d${dirs++}`);
  mkdirSync(dir);
  return dir;
}

const VIEW: PersistedView = {
  savedAtMs: Date.parse('2026-05-04T03:02:01.000Z'),
  nodeName: 'node-a',
  services: [serviceSpec('greeter', [endpointSpec('10.244.1.5')])],
  pods: [{ namespace: 'default', name: 'client-1', ips: ['10.244.0.7'] }],
};

function stateFile(path: string, files: StateFileAccess = nodeStateFileAccess, maxBytes?: number): StateFile {
  return new StateFile({ path, files, nodeName: 'node-a', tempSuffix: '4242', maxBytes });
}

describe('state file', () => {
  it('writes the view and reads it back; the directory holds the file alone (the temp file was renamed)', async () => {
    const dir = freshDir();
    const file = stateFile(join(dir, 'state.json'));
    const bytes = await file.write(VIEW);
    assert.equal(bytes, Buffer.byteLength(encodePersistedView(VIEW)));
    assert.deepEqual(readdirSync(dir), ['state.json']);
    assert.deepEqual(await file.read(), { state: 'loaded', view: VIEW });
  });

  it('replaces an existing file as a whole', async () => {
    const dir = freshDir();
    const file = stateFile(join(dir, 'state.json'));
    writeFileSync(join(dir, 'state.json'), 'x'.repeat(100_000));
    await file.write(VIEW);
    assert.equal(readFileSync(join(dir, 'state.json'), 'utf8'), encodePersistedView(VIEW));
    assert.deepEqual(readdirSync(dir), ['state.json']);
  });

  it('creates a missing directory', async () => {
    const path = join(freshDir(), 'nested', 'state.json');
    await stateFile(path).write(VIEW);
    assert.deepEqual(await stateFile(path).read(), { state: 'loaded', view: VIEW });
  });

  it('says "missing" when there is no file', async () => {
    assert.deepEqual(await stateFile(join(freshDir(), 'state.json')).read(), { state: 'missing' });
  });

  it('refuses a file above the bound with ML_STATE_FILE_TOO_LARGE, without reading it', async () => {
    const path = join(freshDir(), 'state.json');
    writeFileSync(path, ' '.repeat(2048));
    assert.deepEqual(await stateFile(path, nodeStateFileAccess, 1024).read(), {
      state: 'rejected',
      rejection: { code: 'ML_STATE_FILE_TOO_LARGE', reason: '2048 bytes or more, above the limit of 1024' },
    });
  });

  it('refuses a directory in its place with ML_STATE_FILE_UNREADABLE', async () => {
    const path = join(freshDir(), 'state.json');
    mkdirSync(path);
    const read = await stateFile(path).read();
    assert.equal(read.state, 'rejected');
    assert.equal(read.state === 'rejected' ? read.rejection.code : '', 'ML_STATE_FILE_UNREADABLE');
  });

  it('passes a bad file on with the format\'s code (a truncated one: ML_STATE_FILE_MALFORMED)', async () => {
    const path = join(freshDir(), 'state.json');
    writeFileSync(path, encodePersistedView(VIEW).slice(0, 40));
    const read = await stateFile(path).read();
    assert.equal(read.state === 'rejected' ? read.rejection.code : read.state, 'ML_STATE_FILE_MALFORMED');
  });

  it('does not write a view above the bound (ML_STATE_FILE_TOO_LARGE); the old file stays', async () => {
    const dir = freshDir();
    const path = join(dir, 'state.json');
    await stateFile(path).write({ ...VIEW, services: [] });
    const before = readFileSync(path, 'utf8');
    await assert.rejects(stateFile(path, nodeStateFileAccess, 100).write(VIEW), (error: unknown) => {
      assert.ok(error instanceof StateFileWriteError);
      assert.equal(error.code, 'ML_STATE_FILE_TOO_LARGE');
      return true;
    });
    assert.equal(readFileSync(path, 'utf8'), before);
    assert.deepEqual(readdirSync(dir), ['state.json']);
  });

  it('a failed rename is ML_STATE_FILE_WRITE_FAILED and removes the temp file; the old file stays', async () => {
    const calls: string[] = [];
    const files: StateFileAccess = {
      read: async () => ({ state: 'missing' }),
      writeFile: async (path) => void calls.push(`write ${path}`),
      rename: async (from, to) => {
        calls.push(`rename ${from} ${to}`);
        throw new Error('EXDEV: cross-device link not permitted');
      },
      remove: async (path) => void calls.push(`remove ${path}`),
    };
    await assert.rejects(stateFile('/run/meshlite/state.json', files).write(VIEW), (error: unknown) => {
      assert.ok(error instanceof StateFileWriteError);
      assert.equal(error.code, 'ML_STATE_FILE_WRITE_FAILED');
      assert.equal(error.message, 'EXDEV: cross-device link not permitted');
      return true;
    });
    assert.deepEqual(calls, [
      'write /run/meshlite/state.json.4242.tmp',
      'rename /run/meshlite/state.json.4242.tmp /run/meshlite/state.json',
      'remove /run/meshlite/state.json.4242.tmp',
    ]);
  });

  it('a read-only directory is ML_STATE_FILE_WRITE_FAILED (real file system)', async () => {
    const dir = freshDir();
    const blocker = join(dir, 'not-a-dir');
    writeFileSync(blocker, '');
    await assert.rejects(stateFile(join(blocker, 'state.json')).write(VIEW), (error: unknown) => {
      assert.ok(error instanceof StateFileWriteError);
      assert.equal(error.code, 'ML_STATE_FILE_WRITE_FAILED');
      return true;
    });
    assert.deepEqual(readdirSync(dir), ['not-a-dir']);
  });
});
