// Events that can come thousands a second (connections refused at the cap, handshakes timed out): each is counted, but
// the log gets the first one and then at most one line per interval saying how many followed.

import type { Logger } from '../telemetry/logger.ts';
import type { ErrorCode } from '../vocabulary/errors.ts';

export interface SparseEventLogOptions {
  logger: Logger;
  code: ErrorCode;
  message: string;
  countError(code: ErrorCode): void;
  now(): number;
  intervalMs: number;
}

export class SparseEventLog {
  private readonly options: SparseEventLogOptions;
  private lastLoggedAt: number | null = null;
  private suppressed = 0;

  constructor(options: SparseEventLogOptions) {
    this.options = options;
  }

  /** One event; `details` go into the line when one is written. */
  event(details: Record<string, unknown> = {}): void {
    const { code, message, intervalMs } = this.options;
    this.options.countError(code);
    const now = this.options.now();
    if (this.lastLoggedAt !== null && now - this.lastLoggedAt < intervalMs) {
      this.suppressed++;
      return;
    }
    this.options.logger.warn({ code, ...details, suppressed: this.suppressed }, message);
    this.lastLoggedAt = now;
    this.suppressed = 0;
  }
}
