// net.ipv4.tcp_migrate_req: left alone when on, set when it is off and writable, reported when it cannot be set.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ensureListenerMigration, type SysctlAccess, TCP_MIGRATE_REQ } from '../../agent/drain/listener-migration.ts';

function fakeSysctl(value: string | null, writable: boolean) {
  const writes: Array<[string, string]> = [];
  const access: SysctlAccess = {
    read: async (path) => {
      assert.equal(path, TCP_MIGRATE_REQ);
      return value;
    },
    write: async (path, next) => {
      if (!writable) throw new Error("EROFS: read-only file system, open '/proc/sys/net/ipv4/tcp_migrate_req'");
      writes.push([path, next]);
    },
  };
  return { access, writes };
}

describe('ensureListenerMigration', () => {
  it('leaves 1 alone', async () => {
    const { access, writes } = fakeSysctl('1\n', true);
    assert.deepEqual(await ensureListenerMigration(access), { state: 'on' });
    assert.deepEqual(writes, []);
  });

  it('sets 0 to 1 where it may', async () => {
    const { access, writes } = fakeSysctl('0\n', true);
    assert.deepEqual(await ensureListenerMigration(access), { state: 'enabled' });
    assert.deepEqual(writes, [[TCP_MIGRATE_REQ, '1']]);
  });

  it('says why when it may not (a read-only /proc/sys)', async () => {
    const { access } = fakeSysctl('0\n', false);
    assert.deepEqual(await ensureListenerMigration(access), { state: 'off', reason: "EROFS: read-only file system, open '/proc/sys/net/ipv4/tcp_migrate_req'" });
  });

  it('a kernel without it (before 5.14) is unsupported, and nothing is written', async () => {
    const { access, writes } = fakeSysctl(null, true);
    assert.deepEqual(await ensureListenerMigration(access), { state: 'unsupported' });
    assert.deepEqual(writes, []);
  });
});
