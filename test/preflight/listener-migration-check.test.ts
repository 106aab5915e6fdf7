// meshlite check's line on the upgrade hand-over: ok at 1, a problem with the fix at 0, and on a kernel without it.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatReport } from '../../agent/preflight/preflight.ts';
import { checkListenerMigration } from '../../agent/preflight/listener-migration-check.ts';

const report = async (value: string | null) => formatReport(await checkListenerMigration({ read: async () => value }));

describe('checkListenerMigration', () => {
  it('ok at 1', async () => {
    assert.equal(await report('1\n'), 'ok    upgrade hand-over (net.ipv4.tcp_migrate_req): 1, connections queued on a closing agent go to the next\n');
  });

  it('a problem at 0, with the sysctl to set', async () => {
    assert.equal(
      await report('0\n'),
      'FAIL  upgrade hand-over (net.ipv4.tcp_migrate_req): it is 0: an upgrade resets connections queued on the old agent as it closes — set net.ipv4.tcp_migrate_req=1 on the node (sysctl; see README, Upgrade)\n',
    );
  });

  it('a problem on a kernel before 5.14', async () => {
    assert.match(await report(null), /^FAIL {2}upgrade hand-over \(net\.ipv4\.tcp_migrate_req\): this kernel has no such setting .* — run nodes on Linux 5\.14 or newer\n$/);
  });
});
