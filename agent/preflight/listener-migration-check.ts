// Whether an upgrade on this node hands the connections queued on the old agent's listeners to the new one
// (net.ipv4.tcp_migrate_req; see docs/architecture.md, Drain and upgrades).

import { type SysctlAccess, TCP_MIGRATE_REQ } from '../drain/listener-migration.ts';
import { type CheckLine, fail, ok } from './check-result.ts';

const WHAT = 'upgrade hand-over (net.ipv4.tcp_migrate_req)';

export async function checkListenerMigration(sysctl: Pick<SysctlAccess, 'read'>): Promise<CheckLine[]> {
  const value = await sysctl.read(TCP_MIGRATE_REQ);
  if (value === null) {
    return [fail(WHAT, 'this kernel has no such setting (it came in Linux 5.14): an upgrade resets connections queued on the old agent as it closes', 'run nodes on Linux 5.14 or newer')];
  }
  if (value.trim() === '1') return [ok(`${WHAT}: 1, connections queued on a closing agent go to the next`)];
  return [fail(WHAT, 'it is 0: an upgrade resets connections queued on the old agent as it closes', 'set net.ipv4.tcp_migrate_req=1 on the node (sysctl; see README, Upgrade)')];
}
