// The one clock every part is given: monotonic time and one-shot timers, injected so that tests drive time themselves.

export interface Clock {
  /** Monotonic milliseconds (fractional): only differences mean anything. */
  now(): number;
  /**
   * Calls `callback` once, no earlier than `ms` from now. Any `ms` is allowed: a negative or NaN one means "now", and
   * one beyond what a platform timer holds (MAX_TIMER_MS, e.g. a client's `grpc-timeout: 99999999H`) or Infinity
   * simply waits that long.
   */
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * The longest delay a Node timer keeps: 2^31-1 ms, about 24.8 days. Node turns a longer one into 1 ms (and warns each
 * time), so a clock arms a longer timer at this length and re-arms it for the rest: at most once per 24.8 days.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** The platform's timers as a clock uses them (Node's by default; a test passes its own). */
export interface PlatformTimers {
  setTimeout(callback: () => void, ms: number): { unref(): unknown };
  clearTimeout(handle: unknown): void;
}

const nodeTimers: PlatformTimers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** A timer longer than the platform holds: the platform timer armed now, re-armed until the whole delay has passed. */
class LongTimer {
  current: unknown = null;
}

/**
 * A clock on the platform's timers. Delays within MAX_TIMER_MS go straight to the platform (the common case costs one
 * comparison); longer ones are chained. `keepAlive: false` unrefs every timer it arms.
 */
export function platformClock(platform: PlatformTimers, keepAlive: boolean): Clock {
  const now = (): number => performance.now();
  const arm = (callback: () => void, ms: number): unknown => {
    const timer = platform.setTimeout(callback, ms);
    if (!keepAlive) timer.unref();
    return timer;
  };
  const armLong = (long: LongTimer, callback: () => void, dueAt: number): void => {
    const left = dueAt - now();
    if (left <= MAX_TIMER_MS) {
      long.current = arm(callback, Math.max(0, left));
      return;
    }
    long.current = arm(() => armLong(long, callback, dueAt), MAX_TIMER_MS);
  };
  return Object.freeze({
    now,
    setTimeout(callback: () => void, ms: number): unknown {
      if (ms <= MAX_TIMER_MS) return arm(callback, Math.max(0, ms));
      // NaN fails both comparisons: it means "now", as a negative delay does.
      if (!(ms > MAX_TIMER_MS)) return arm(callback, 0);
      const long = new LongTimer();
      armLong(long, callback, now() + ms);
      return long;
    },
    clearTimeout(handle: unknown): void {
      platform.clearTimeout(handle instanceof LongTimer ? handle.current : handle);
    },
  });
}

/** Real time. Its timers keep the process alive, as a pending retry or drain deadline must. */
export const realClock: Clock = platformClock(nodeTimers, true);

/** Real time whose timers never keep the process alive: a connection's own timeouts, which end with its socket. */
export const backgroundClock: Clock = platformClock(nodeTimers, false);
