// The two iptables backends (nf_tables and legacy x_tables) and the exact commands that read and write each, per family.

import type { IpFamily } from './names.ts';

export type IptablesBackend = 'nft' | 'legacy';
export type IptablesBackendSetting = 'auto' | IptablesBackend;
export const IPTABLES_BACKENDS: readonly IptablesBackend[] = ['nft', 'legacy'];

export interface IptablesCommands {
  /** Dumps every table of the backend (e.g. `iptables-nft-save`). */
  readonly save: string;
  readonly restore: string;
  /** `--noflush`: only the chains a script declares are flushed, so kube-proxy's rules are left as they are. */
  readonly restoreArgs: readonly string[];
}

/**
 * The explicit `-nft` / `-legacy` binaries (Debian ships both, as links to xtables-*-multi), never the plain
 * `iptables-save`, whose backend depends on the host's alternatives and can differ from kube-proxy's. Only the
 * legacy backend has the xtables lock kube-proxy also takes, so only it waits for the lock instead of failing.
 */
export function iptablesCommands(backend: IptablesBackend, family: IpFamily): IptablesCommands {
  const prefix = family === 4 ? 'iptables' : 'ip6tables';
  return {
    save: `${prefix}-${backend}-save`,
    restore: `${prefix}-${backend}-restore`,
    restoreArgs: backend === 'legacy' ? ['--noflush', '--wait=5'] : ['--noflush'],
  };
}
