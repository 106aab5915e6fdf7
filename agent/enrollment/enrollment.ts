// CNI enrollment: whether a pod opts in (its annotation, else its namespace's), its sandbox's IPs claimed in the IP claims, and the answer once the rules hold them.

import type { KubeApi } from '../discovery/kube-api.ts';
import { ANNOTATIONS, type InjectSetting, type PodRecord } from '../discovery/kube-objects.ts';
import { projectNamespace, projectPod } from '../discovery/kube-projection.ts';
import { type PodRef, RELEASED_PHASES } from '../discovery/opt-in-index.ts';
import type { ErrorCode } from '../vocabulary/errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import { claimOnlyRecord, type CniIpClaims } from './cni-ip-claims.ts';
import { type CniAddRequest, type CniCheckRequest, type CniDelRequest, type CniReply, errorReply } from './cni-protocol.ts';
import type { Clock } from '../vocabulary/clock.ts';

/** The API reads enrollment needs when the informer has not delivered the pod (or its namespace) yet. */
export interface PodLookup {
  /** The raw Pod, or null when the API answers 404. */
  getPod(namespace: string, name: string, signal: AbortSignal): Promise<unknown | null>;
  /** The raw Namespace, or null when the API answers 404. */
  getNamespace(name: string, signal: AbortSignal): Promise<unknown | null>;
}

export function kubePodLookup(api: Pick<KubeApi, 'get'>): PodLookup {
  return {
    getPod: (namespace, name, signal) => api.get(`/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`, signal),
    getNamespace: (name, signal) => api.get(`/api/v1/namespaces/${encodeURIComponent(name)}`, signal),
  };
}

/** The interception manager's progress: resolves once every opt-in change made so far is in the kernel's rules. */
export interface InterceptionProgress {
  whenApplied(): Promise<void>;
}

export interface EnrollmentOptions {
  ipClaims: CniIpClaims;
  /** The opt-in index the IP claims feeds: what is enrolled now. */
  index: { podAt(ip: string): PodRef | undefined };
  /** Null with static discovery: the file's pods (fed to the IP claims with replacePods) are all there is. */
  lookup: PodLookup | null;
  interception: InterceptionProgress;
  timers: Clock;
  /** Bound on the wait for the rules; below the plugin's own timeout, so that it gets an answer with a code. */
  applyTimeoutMs: number;
  /** Bound on each API read. */
  lookupTimeoutMs: number;
  logger: Logger;
  countError(code: ErrorCode): void;
}

export interface OptInDecision {
  optIn: boolean;
  reason: string;
}

/** What the pod's annotation, else its namespace's, says; the same rules as the OptInIndex's. Pure. */
export function decideOptIn(pod: PodRecord, namespaceInject: InjectSetting | null, nodeName: string): OptInDecision {
  const key = ANNOTATIONS.inject;
  if (pod.invalid !== null) return { optIn: false, reason: `the pod object is not usable: ${pod.invalid}` };
  if (pod.nodeName !== nodeName) return { optIn: false, reason: `the pod is bound to node "${pod.nodeName}", not to this node "${nodeName}"` };
  if (pod.hostNetwork) return { optIn: false, reason: 'the pod uses the host network' };
  if (RELEASED_PHASES.has(pod.phase)) return { optIn: false, reason: `the pod has finished (${pod.phase})` };
  if (pod.inject !== null) return { optIn: pod.inject === 'enabled', reason: `pod annotation ${key}=${pod.inject}` };
  if (namespaceInject !== null) return { optIn: namespaceInject === 'enabled', reason: `namespace annotation ${key}=${namespaceInject}` };
  return { optIn: false, reason: `no ${key} annotation on the pod or its namespace` };
}

/** An API read failed or timed out: the decision cannot be made. */
class LookupError extends Error {}

/**
 * The three CNI commands. ADD claims the sandbox's IPs in the IP claims whatever the pod's opt-in (a sandbox that has
 * an IP now is its holder), then waits for the interception rules, because the plugin's answer lets the runtime
 * start the containers: an opted-in pod's first connection must already be intercepted, and an IP that stopped
 * being enrolled (reused by a pod that did not opt in) must already be out of the rules, or its connections would
 * reach the listener and be refused. DEL never fails: the runtime would retry it forever.
 */
export class CniEnrollment {
  private readonly options: EnrollmentOptions;
  private readonly log: Logger;

  constructor(options: EnrollmentOptions) {
    this.options = options;
    this.log = options.logger.child({ component: 'cni-enrollment' });
  }

  async add(request: CniAddRequest): Promise<CniReply> {
    const { ipClaims } = this.options;
    const { containerId, namespace, name, ips } = request;
    const fields = { containerId, namespace, name, ips };
    let known: PodRecord | null;
    try {
      known = await this.lookUp(namespace, name);
    } catch (error) {
      // The opt-in is unknown, but these IPs are this sandbox's now; the pod watch decides once it has the pod.
      this.claim(request, claimOnlyRecord(namespace, name, ipClaims.nodeName));
      return this.failed(503, 'ML_CNI_POD_LOOKUP_FAILED', `cannot read pod ${namespace}/${name}: ${(error as Error).message}`, fields);
    }
    const record = known ?? claimOnlyRecord(namespace, name, ipClaims.nodeName);
    let claimed: boolean;
    try {
      claimed = ipClaims.add({ containerId, namespace, name, ips, record });
    } catch (error) {
      // A subscriber of the index (the interception manager) threw; the index is up to date all the same.
      return this.failed(503, 'ML_CNI_NOT_APPLIED', `the interception rules refused the change: ${(error as Error).message}`, fields);
    }
    if (!claimed) {
      this.log.info(fields, 'CNI ADD after the DEL of its sandbox: nothing enrolled');
      return { status: 200, body: { enrolled: false, reason: 'the sandbox was deleted before its ADD finished' } };
    }
    const enrolled = this.allEnrolled(ips, namespace, name);
    // Decided on what the index holds now: an informer event may have come while the API was read.
    const reason = this.consistent(this.decide(namespace, name, known), enrolled, fields);
    try {
      await this.applied();
    } catch (error) {
      return this.failed(503, 'ML_CNI_NOT_APPLIED', `pod ${namespace}/${name} (${reason}): ${(error as Error).message}`, fields);
    }
    this.log.info({ ...fields, enrolled, reason }, 'CNI ADD');
    return { status: 200, body: { enrolled, reason } };
  }

  del(request: CniDelRequest): CniReply {
    const { containerId, namespace, name } = request;
    let released: readonly string[] = [];
    try {
      released = this.options.ipClaims.del(namespace, name, containerId);
    } catch (error) {
      // The state is updated (the index delivers to every subscriber first); only a subscriber failed.
      this.options.countError('ML_CNI_NOT_APPLIED');
      this.log.warn({ code: 'ML_CNI_NOT_APPLIED', containerId, namespace, name, err: error }, 'CNI DEL: the interception rules refused the change');
    }
    this.log.info({ containerId, namespace, name, released }, 'CNI DEL');
    return { status: 200, body: { released: [...released] } };
  }

  async check(request: CniCheckRequest): Promise<CniReply> {
    const { ipClaims } = this.options;
    const { containerId, namespace, name } = request;
    const fields = { containerId, namespace, name };
    let known: PodRecord | null;
    try {
      known = await this.lookUp(namespace, name);
    } catch (error) {
      return this.failed(503, 'ML_CNI_POD_LOOKUP_FAILED', `cannot read pod ${namespace}/${name}: ${(error as Error).message}`, fields);
    }
    const decision = this.decide(namespace, name, known);
    const ips = request.ips ?? ipClaims.containerIps(namespace, name, containerId) ?? [];
    const enrolled = ips.length > 0 && this.allEnrolled(ips, namespace, name);
    let reason = decision.reason;
    if (ips.length === 0) reason += '; no IP is known for this sandbox';
    else if (enrolled !== decision.optIn) reason += enrolled ? ', yet its IPs are enrolled' : ', yet its IPs are not enrolled';
    if (enrolled) {
      try {
        await this.applied();
      } catch (error) {
        return this.failed(503, 'ML_CNI_NOT_APPLIED', `pod ${namespace}/${name}: ${(error as Error).message}`, fields);
      }
    }
    this.log.debug({ ...fields, ips, enrolled, expected: decision.optIn, reason }, 'CNI CHECK');
    return { status: 200, body: { enrolled, expected: decision.optIn, reason } };
  }

  /**
   * The pod, null when it does not exist: the informer's record first (the stream the index follows), the API only
   * for what the informer has not delivered yet. A namespace read from the API is handed to the IP claims, so that the
   * index decides on it too.
   */
  private async lookUp(namespace: string, name: string): Promise<PodRecord | null> {
    const { ipClaims, lookup } = this.options;
    const cached = ipClaims.apiPod(namespace, name);
    if (lookup === null) return cached ?? null;
    let pod: PodRecord;
    if (cached !== undefined) {
      pod = cached;
    } else {
      const raw = await this.read(`GET pod ${namespace}/${name}`, (signal) => lookup.getPod(namespace, name, signal));
      if (raw === null) return null;
      pod = projectPod(raw);
    }
    // The pod's own value wins: its namespace does not matter then.
    if (pod.inject !== null || ipClaims.namespaceSetting(namespace) !== undefined) return pod;
    const namespaceRaw = await this.read(`GET namespace ${namespace}`, (signal) => lookup.getNamespace(namespace, signal));
    if (namespaceRaw !== null) ipClaims.learnNamespace(projectNamespace(namespaceRaw));
    return pod;
  }

  /** The decision on the records the index uses: the informer's when it has them, else what the API gave. */
  private decide(namespace: string, name: string, fromApi: PodRecord | null): OptInDecision {
    const { ipClaims } = this.options;
    const pod = ipClaims.apiPod(namespace, name) ?? fromApi;
    if (pod === null) return { optIn: false, reason: this.notFoundReason() };
    return decideOptIn(pod, ipClaims.namespaceSetting(namespace) ?? null, ipClaims.nodeName);
  }

  private async read(what: string, get: (signal: AbortSignal) => Promise<unknown | null>): Promise<unknown | null> {
    const { timers, lookupTimeoutMs } = this.options;
    const controller = new AbortController();
    const timer = timers.setTimeout(() => controller.abort(new Error(`timed out after ${lookupTimeoutMs} ms`)), lookupTimeoutMs);
    try {
      return await get(controller.signal);
    } catch (error) {
      throw new LookupError(`${what}: ${(error as Error).message}`, { cause: error });
    } finally {
      timers.clearTimeout(timer);
    }
  }

  private claim(request: CniAddRequest, record: PodRecord): void {
    try {
      this.options.ipClaims.add({ ...request, record });
    } catch {
      // A subscriber failed; the answer is an error already.
    }
  }

  private allEnrolled(ips: readonly string[], namespace: string, name: string): boolean {
    return ips.every((ip) => {
      const pod = this.options.index.podAt(ip);
      return pod !== undefined && pod.namespace === namespace && pod.name === name;
    });
  }

  /** The index is the truth; the decision only explains it. They agree by construction (same records, same rules). */
  private consistent(decision: OptInDecision, enrolled: boolean, fields: object): string {
    if (decision.optIn === enrolled) return decision.reason;
    this.options.countError('ML_INTERNAL');
    this.log.error({ ...fields, code: 'ML_INTERNAL', decision, enrolled }, 'CNI ADD: the opt-in index disagrees with the decision');
    return `${decision.reason}, yet the index has it ${enrolled ? 'enrolled' : 'not enrolled'}`;
  }

  private notFoundReason(): string {
    return this.options.lookup === null ? "the pod is not listed in the static file's pods" : 'the pod does not exist in the Kubernetes API';
  }

  /** Resolves once the interception manager applied every change so far; rejects after applyTimeoutMs. */
  private applied(): Promise<void> {
    const { timers, applyTimeoutMs, interception } = this.options;
    return new Promise((resolve, reject) => {
      const timer = timers.setTimeout(() => reject(new Error(`the interception rules were not applied within ${applyTimeoutMs} ms`)), applyTimeoutMs);
      interception.whenApplied().then(
        () => {
          timers.clearTimeout(timer);
          resolve();
        },
        (error: unknown) => {
          timers.clearTimeout(timer);
          reject(new Error(`applying the interception rules failed: ${error instanceof Error ? error.message : String(error)}`));
        },
      );
    });
  }

  private failed(status: 503, code: ErrorCode, message: string, fields: object): CniReply {
    this.options.countError(code);
    this.log.warn({ ...fields, code, err: message }, 'CNI request failed');
    return errorReply(status, code, message);
  }
}
