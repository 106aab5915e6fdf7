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
   * Return connection-level window as soon as DATA arrives while the connection holds at most `receiveBudget` bytes
   * (delivered to the handler, not consumed), leaving backpressure to the stream windows; past it, window is returned
   * only as the handler consumes. A relay wants this: one stream whose reader stalls must not use up the window that
   * every other stream shares, and yet what a connection holds stays bounded (budget + connection window).
   */
  creditConnectionOnReceive?: boolean;
  /** See creditConnectionOnReceive; DEFAULT_RECEIVE_BUDGET when not given. */
  receiveBudget?: number;
  /** Where the connection reports what it holds, shared by many connections (the process-wide budget). */
  bufferAccount?: BufferAccount;
  settingsTimeoutMs?: number;
  prefaceTimeoutMs?: number;
  clock?: Clock;
}

/** Held bytes up to which a connection that credits on receive keeps doing so (see creditConnectionOnReceive). */
export const DEFAULT_RECEIVE_BUDGET = 4 * 1024 * 1024;

/**
 * Bytes held by many connections together: each reports every change of what it holds; while `exhausted`, none of
 * them returns window on receive, so the peers can send only what the stream windows and the consumed bytes allow.
 */
export interface BufferAccount {
  add(bytes: number): void;
  readonly exhausted: boolean;
}
