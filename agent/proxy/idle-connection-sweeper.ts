// Client connections that carry no stream for the idle timeout are told GOAWAY and closed: an idle gRPC channel
// reconnects when it needs to, and an abandoned one stops holding the agent's memory and a file descriptor.
// One timer for all connections (a sweep every quarter of the timeout, at most a minute apart), not one each.

import type { Clock } from '../vocabulary/clock.ts';

/** What a sweep needs of a client connection. */
export interface SweptConnection {
  readonly activeStreamCount: number;
  /** GOAWAY naming the last stream processed; the connection closes at once, having no stream. */
  goAway(code: number, debug?: string): void;
}

export interface IdleSweeperOptions {
  idleTimeoutMs: number;
  clock: Clock;
  /** The connections to look at, read at every sweep. */
  connections(): Iterable<SweptConnection>;
  /** One call per sweep that closed any (log it once, count each). */
  onIdleClosed(count: number, idleTimeoutMs: number): void;
}

const MAX_SWEEP_INTERVAL_MS = 60_000;
const NO_ERROR = 0;

export class IdleConnectionSweeper {
  /** When each connection was first seen without streams since it last opened one. */
  private readonly idleSince = new Map<SweptConnection, number>();
  private readonly options: IdleSweeperOptions;
  private readonly intervalMs: number;
  private timer: unknown = null;

  constructor(options: IdleSweeperOptions) {
    this.options = options;
    this.intervalMs = Math.max(1, Math.min(MAX_SWEEP_INTERVAL_MS, Math.floor(options.idleTimeoutMs / 4)));
  }

  start(): void {
    if (this.timer !== null) return;
    const tick = (): void => {
      this.sweep();
      this.timer = this.options.clock.setTimeout(tick, this.intervalMs);
    };
    this.timer = this.options.clock.setTimeout(tick, this.intervalMs);
  }

  stop(): void {
    if (this.timer !== null) this.options.clock.clearTimeout(this.timer);
    this.timer = null;
    this.idleSince.clear();
  }

  /** A stream opened on `connection`: its idle time starts again from the next sweep that finds it without one. */
  busy(connection: SweptConnection): void {
    if (this.idleSince.size > 0) this.idleSince.delete(connection);
  }

  /** Closes the connections idle for the timeout; returns how many. */
  sweep(): number {
    const now = this.options.clock.now();
    const seen = new Set<SweptConnection>();
    let closed = 0;
    for (const connection of this.options.connections()) {
      seen.add(connection);
      if (connection.activeStreamCount > 0) {
        this.idleSince.delete(connection);
        continue;
      }
      const since = this.idleSince.get(connection);
      if (since === undefined) {
        this.idleSince.set(connection, now);
      } else if (now - since >= this.options.idleTimeoutMs) {
        this.idleSince.delete(connection);
        connection.goAway(NO_ERROR, 'idle timeout');
        closed++;
      }
    }
    // Connections that closed meanwhile are forgotten.
    for (const connection of this.idleSince.keys()) if (!seen.has(connection)) this.idleSince.delete(connection);
    if (closed > 0) this.options.onIdleClosed(closed, this.options.idleTimeoutMs);
    return closed;
  }
}
