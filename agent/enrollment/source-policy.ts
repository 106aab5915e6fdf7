// Which sources the proxy listener serves: an enrolled pod of this node, or loopback, so that it is no open proxy (see
// docs/architecture.md, Interception); refusals counted and logged sparingly.

import type { PodRef } from '../discovery/opt-in-index.ts';
import { parseKubeIp } from '../vocabulary/ip-address.ts';
import type { Logger } from '../telemetry/logger.ts';

/** 127.0.0.0/8 and ::1, in any spelling a socket reports (`::ffff:127.0.0.1` on a dual-stack socket). */
export function isLoopback(ip: string): boolean {
  const parsed = parseKubeIp(ip);
  if (parsed === null) return false;
  return parsed.family === 4 ? parsed.ip.startsWith('127.') : parsed.ip === '::1';
}

/**
 * The rule main injects as the listener's `sourceAllowed`. Loopback is allowed because clients in explicit mode and
 * tests dial the agent there, and no pod can open a connection from a loopback address: the kernel drops such
 * sources arriving on a pod's interface, and where route_localnet lets them in (kube-proxy sets it) the replies
 * still go to the node's own loopback, so no handshake completes. Anything else must be a pod the opt-in index has
 * enrolled: the interception rules redirect only those.
 */
export function enrolledOrLoopback(index: { podAt(ip: string): PodRef | undefined }): (ip: string) => boolean {
  return (ip) => index.podAt(ip) !== undefined || isLoopback(ip);
}

export interface SourceRefusalLogOptions {
  logger: Logger;
  countError(code: 'ML_SOURCE_REFUSED'): void;
  now(): number;
  /** At most one log line per interval; the metric counts every refusal. */
  intervalMs: number;
}

/**
 * Reports refused connections (the listener's `onSourceRefused`): every one is counted, but a scan or a misrouted
 * client would refuse thousands a second, so the log gets the first refusal and then one line per interval saying
 * how many followed and the last source.
 */
export class SourceRefusalLog {
  private readonly options: SourceRefusalLogOptions;
  private readonly log: Logger;
  private lastLoggedAt: number | null = null;
  private suppressed = 0;

  constructor(options: SourceRefusalLogOptions) {
    this.options = options;
    this.log = options.logger.child({ component: 'listener' });
  }

  refused(source: string): void {
    this.options.countError('ML_SOURCE_REFUSED');
    const now = this.options.now();
    if (this.lastLoggedAt !== null && now - this.lastLoggedAt < this.options.intervalMs) {
      this.suppressed++;
      return;
    }
    this.log.debug(
      { code: 'ML_SOURCE_REFUSED', source, suppressed: this.suppressed },
      'connection refused: the source is neither an enrolled pod nor loopback',
    );
    this.lastLoggedAt = now;
    this.suppressed = 0;
  }
}
