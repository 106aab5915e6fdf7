// What a connection is given: the transport it writes to, its clock, and its options.

import type { Clock } from '../vocabulary/clock.ts';
import type { Http2Settings } from './settings.ts';

/** Where the connection writes. After `write`, memory may be reused once `writableLength` is 0: copy if you keep it. */
export interface Transport {
  write(chunk: Buffer): void;
  cork?(): void;
  uncork?(): void;
  readonly writableLength: number;
  end(): void;
  destroy(): void;
}

export interface ConnectionOptions {
  role: 'server' | 'client';
  settings?: Partial<Http2Settings>;
  /** Our connection-level receive window, announced at start. */
  connectionWindowSize?: number;
  /**
   * Return connection-level window as soon as DATA arrives, leaving backpressure to the stream windows. A relay wants
   * this: one stream whose reader stalls must not use up the window that every other stream shares.
   */
  creditConnectionOnReceive?: boolean;
  settingsTimeoutMs?: number;
  prefaceTimeoutMs?: number;
  clock?: Clock;
}
