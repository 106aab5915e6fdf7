// Preflight: the ipset command, and the kernel's support for the set types interception creates, with the timeout option.

import type { CommandRunner } from '../intercept/command-runner.ts';
import type { IpFamily } from '../intercept/names.ts';
import { InterceptCommandError, runChecked } from '../intercept/netfilter-command.ts';
import { type CheckLine, fail, firstLine, ok } from './check-result.ts';

export interface IpsetCheckOptions {
  readonly runner: CommandRunner;
  /** The IP families of --node-ip: the agent creates sets for these only. */
  readonly families: readonly IpFamily[];
  /** Names the throwaway sets, so that two checks at once, or the agent's own sets, never meet. */
  readonly pid: number;
}

export const INSTALL_IPSET = 'install ipset (Debian and Ubuntu: apt-get install ipset) or run the check in the meshlite image, which has it';
const NEED_NET_ADMIN = "run it as root with CAP_NET_ADMIN in the node's network namespace (the DaemonSet's agent container has it)";
const LOAD_MODULES =
  'load the ip_set, ip_set_hash_ip and ip_set_hash_ipport kernel modules on the node (modprobe); fail open needs sets with timeout support';

/** A documentation address (RFC 5737, RFC 3849) per family: what the throwaway sets hold for a moment. */
const SAMPLE_ADDRESS: Record<IpFamily, string> = { 4: '192.0.2.1', 6: '2001:db8::1' };

/** The throwaway sets of one family: a pods-like `hash:ip` and a destinations-like `hash:ip,port`, both with timeout. */
export function throwawaySetNames(pid: number, family: IpFamily): { ip: string; ipPort: string } {
  return { ip: `meshlite-check-${pid}-ip${family}`, ipPort: `meshlite-check-${pid}-ipport${family}` };
}

/** Creates both sets with timeout support and adds a member with a timeout to each: what the agent's sets need. */
export function throwawayScript(pid: number, family: IpFamily): string {
  const names = throwawaySetNames(pid, family);
  const inet = family === 4 ? 'inet' : 'inet6';
  const address = SAMPLE_ADDRESS[family];
  return [
    `create ${names.ip} hash:ip family ${inet} timeout 3`,
    `add ${names.ip} ${address} timeout 3`,
    `create ${names.ipPort} hash:ip,port family ${inet} timeout 3`,
    `add ${names.ipPort} ${address},tcp:1 timeout 3`,
    '',
  ].join('\n');
}

/**
 * `ipset version` (the command, and the kernel's protocol), then per family a throwaway pair of sets created, used and
 * destroyed again. The agent's own sets are never touched. Without the command there is one line: the rest cannot run.
 */
export async function checkIpset(options: IpsetCheckOptions): Promise<CheckLine[]> {
  const { runner, families, pid } = options;
  let version: string;
  try {
    version = firstLine(await runChecked(runner, 'ipset', ['version']));
  } catch (error) {
    const notFound = error instanceof InterceptCommandError && error.exitCode === null;
    if (notFound) return [fail('ipset', `the ipset command is not installed or not on PATH (${firstLine(error.stderr)})`, INSTALL_IPSET)];
    return [fail('ipset', firstLine(error), NEED_NET_ADMIN)];
  }
  const lines: CheckLine[] = [ok(`ipset: ${version}`)];
  for (const family of families) {
    const what = `ipset IPv${family}`;
    try {
      await runChecked(runner, 'ipset', ['restore'], throwawayScript(pid, family));
      lines.push(ok(`${what}: the kernel supports hash:ip and hash:ip,port sets with timeout`));
    } catch (error) {
      const problem = firstLine(error);
      const denied = /not permitted/i.test(problem);
      lines.push(fail(what, `the kernel refused a hash:ip or hash:ip,port set with timeout (${problem})`, denied ? NEED_NET_ADMIN : LOAD_MODULES));
    } finally {
      // Both, whatever the restore did: it stops at its first failing line, after the sets before it were made.
      const names = throwawaySetNames(pid, family);
      for (const name of [names.ipPort, names.ip]) await runner('ipset', ['destroy', name]).catch(() => undefined);
    }
  }
  return lines;
}
