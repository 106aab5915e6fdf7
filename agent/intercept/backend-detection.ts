// Which iptables backend interception uses: kube-proxy's (found by its KUBE-* chains), unless a setting forces one.

import type { CommandRunner } from './command-runner.ts';
import { type IptablesDump, parseIptablesSave, ruleCount, ruleTarget } from './iptables-dump.ts';
import { type IptablesBackend, type IptablesBackendSetting, iptablesCommands } from './iptables-backend.ts';
import { InterceptCommandError, runOptional } from './netfilter-command.ts';

/**
 * Why the backend was chosen. Only `forced` and `kube-chains` are final: with any other reason kube-proxy may not
 * have written its rules yet (agent and kube-proxy start together on a new node), so the manager looks again.
 */
export type BackendReason = 'forced' | 'kube-chains' | 'only-available' | 'more-rules' | 'default';

export interface BackendDecision {
  readonly backend: IptablesBackend;
  readonly reason: BackendReason;
  /** Lines about KUBE-* chains in each backend's IPv4 dump; null when that backend could not be read. */
  readonly kubeLines: { readonly nft: number | null; readonly legacy: number | null };
}

/** The IPv4 `*-save` output of each backend; null when its command is missing or failed. */
export interface BackendDumps {
  readonly nft: string | null;
  readonly legacy: string | null;
}

const KUBE_PREFIX = 'KUBE-';

/**
 * The backend whose dump has kube-proxy's chains (if both have some, after a migration for instance, the one with
 * more: leftovers are a few chains, the live rule set is all of them); else the one with more rules (a CNI or a
 * firewall in use there); else nft, the default of every current distribution. null when neither could be read.
 */
export function chooseBackend(dumps: BackendDumps): BackendDecision | null {
  const nft = dumps.nft === null ? null : parseIptablesSave(dumps.nft);
  const legacy = dumps.legacy === null ? null : parseIptablesSave(dumps.legacy);
  const kubeLines = { nft: nft === null ? null : kubeLineCount(nft), legacy: legacy === null ? null : kubeLineCount(legacy) };
  const decide = (backend: IptablesBackend, reason: BackendReason): BackendDecision => ({ backend, reason, kubeLines });
  if (nft === null && legacy === null) return null;
  if (nft === null) return decide('legacy', 'only-available');
  if (legacy === null) return decide('nft', 'only-available');
  const kubeNft = kubeLines.nft ?? 0;
  const kubeLegacy = kubeLines.legacy ?? 0;
  if (kubeNft > 0 || kubeLegacy > 0) return decide(kubeLegacy > kubeNft ? 'legacy' : 'nft', 'kube-chains');
  const rulesNft = ruleCount(nft);
  const rulesLegacy = ruleCount(legacy);
  if (rulesNft !== rulesLegacy) return decide(rulesLegacy > rulesNft ? 'legacy' : 'nft', 'more-rules');
  return decide('nft', 'default');
}

export interface Detection {
  readonly decision: BackendDecision;
  /** The chosen backend's IPv4 dump as read for the decision (null when forced): the first apply reuses it. */
  readonly dump: string | null;
}

/**
 * Reads both backends' IPv4 rules (the `-save` commands only read: `iptables-legacy -S` would load the legacy
 * tables into a kernel that had none) and decides. A forced setting reads nothing. Throws InterceptCommandError
 * when neither backend's tools can run.
 */
export async function detectBackend(runner: CommandRunner, setting: IptablesBackendSetting): Promise<Detection> {
  if (setting !== 'auto') return { decision: { backend: setting, reason: 'forced', kubeLines: { nft: null, legacy: null } }, dump: null };
  const nftSave = iptablesCommands('nft', 4).save;
  const legacySave = iptablesCommands('legacy', 4).save;
  const dumps: BackendDumps = { nft: await runOptional(runner, nftSave, []), legacy: await runOptional(runner, legacySave, []) };
  const decision = chooseBackend(dumps);
  if (decision === null) throw new InterceptCommandError(`${nftSave} and ${legacySave}`, null, 'neither iptables backend can be read');
  return { decision, dump: dumps[decision.backend] };
}

function kubeLineCount(dump: IptablesDump): number {
  let count = 0;
  for (const table of dump.values()) {
    for (const chain of table.chains.keys()) if (chain.startsWith(KUBE_PREFIX)) count++;
    for (const rule of table.rules) {
      if (rule.chain.startsWith(KUBE_PREFIX) || (ruleTarget(rule.spec)?.startsWith(KUBE_PREFIX) ?? false)) count++;
    }
  }
  return count;
}
