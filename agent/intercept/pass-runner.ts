// One pass as the manager runs it: the backend detected when it may change, sets and rules applied, stale interception removed.

import type { Logger } from '../telemetry/logger.ts';
import { type BackendDecision, detectBackend } from './backend-detection.ts';
import type { CommandRunner } from './command-runner.ts';
import type { FailMode } from './fail-mode.ts';
import type { PassKind } from './intercept-metrics.ts';
import { applyInterception, type FamilyTarget, type PassResult } from './interception-pass.ts';
import type { IptablesBackend, IptablesBackendSetting } from './iptables-backend.ts';
import { type IpFamily, migrationSetName, podSetName, setDefinitions } from './names.ts';
import { removeRulesFrom, removeSets } from './uninstall.ts';
import type { Members } from './member-set.ts';

export interface PassRunnerOptions {
  runner: CommandRunner;
  backend: IptablesBackendSetting;
  families: readonly FamilyTarget[];
  proxyPort: number;
  failMode: FailMode;
  log: Logger;
}

export interface PassRun {
  result: PassResult;
  /** The backend the rules were moved away from in this pass, or null. */
  movedFrom: IptablesBackend | null;
}

/** Runs passes one at a time (the manager sees to that) and remembers the backend decision between them. */
export class PassRunner {
  private readonly options: PassRunnerOptions;
  private readonly log: Logger;
  private decision: BackendDecision | null = null;

  constructor(options: PassRunnerOptions) {
    this.options = options;
    this.log = options.log;
  }

  /** The backend in use and why; null until the first pass has detected it. */
  get backend(): BackendDecision | null {
    return this.decision;
  }

  /**
   * Detects the backend at install (and at a reconcile while an automatic choice may still change), then applies
   * `desired`; a sets pass that knows what the last pass left (`assumed`) does not read the sets. Throws what failed.
   */
  async run(kind: PassKind, desired: ReadonlyMap<string, Members>, assumed: ReadonlyMap<string, Members> | undefined): Promise<PassRun> {
    const { runner, proxyPort, families, failMode } = this.options;
    let movedFrom: IptablesBackend | null = null;
    let dumps: Map<IpFamily, string> | undefined;
    if (kind === 'install' || (kind === 'reconcile' && this.decisionMayChange())) {
      const detection = await detectBackend(runner, this.options.backend);
      if (this.decision !== null && detection.decision.backend !== this.decision.backend && detection.decision.reason === 'kube-chains') {
        movedFrom = this.decision.backend;
      }
      if (this.decision === null || movedFrom !== null) this.logBackend(detection.decision, movedFrom);
      this.decision = detection.decision;
      if (detection.dump !== null) dumps = new Map([[4, detection.dump]]);
    }
    if (this.decision === null) throw new Error('interception: a pass without a backend');
    const { backend } = this.decision;
    const rules = kind !== 'sets';
    const result = await applyInterception({ runner, backend, families, proxyPort, failMode, desired, rules, dumps, assumed });
    if (movedFrom !== null) await this.removeFromBackend(movedFrom);
    if (kind === 'install') await this.removeDisabledFamilies(backend);
    return { result, movedFrom };
  }

  /** An automatic choice made without seeing kube-proxy's chains is looked at again by each reconcile. */
  private decisionMayChange(): boolean {
    return this.decision !== null && this.decision.reason !== 'forced' && this.decision.reason !== 'kube-chains';
  }

  private logBackend(decision: BackendDecision, movedFrom: string | null): void {
    const fields = { backend: decision.backend, reason: decision.reason, kubeLines: decision.kubeLines };
    if (movedFrom === null) this.log.info(fields, `using iptables backend ${decision.backend}`);
    else this.log.warn({ ...fields, code: 'ML_INTERCEPT_BACKEND_MOVED', from: movedFrom }, `kube-proxy's chains are in iptables ${decision.backend}: moving interception there`);
  }

  private async removeFromBackend(backend: IptablesBackend): Promise<void> {
    for (const { family } of this.options.families) {
      const removed = await removeRulesFrom(this.options.runner, backend, family);
      if (removed.length > 0) this.log.info({ backend, family, removed }, 'removed interception from the backend no longer in use');
    }
  }

  /**
   * A family without a node IP is not intercepted; rules a previous configuration left for it would redirect its
   * connections to a listener that is not there. Best effort: a host without IPv6 tables must still get IPv4 done.
   */
  private async removeDisabledFamilies(backend: IptablesBackend): Promise<void> {
    for (const family of [4, 6] as const) {
      if (this.options.families.some((target) => target.family === family)) continue;
      try {
        const removed = await removeRulesFrom(this.options.runner, backend, family);
        const names = [...setDefinitions(family).map((set) => set.name), migrationSetName(podSetName(family))];
        removed.push(...(await removeSets(this.options.runner, names)));
        if (removed.length > 0) this.log.info({ family, removed }, 'removed interception of a family without a node IP');
      } catch (error) {
        this.log.warn({ code: 'ML_INTERCEPT_COMMAND_FAILED', err: error, family }, 'could not check for interception of a family without a node IP');
      }
    }
  }
}
