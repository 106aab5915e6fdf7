// The one clock every part is given: monotonic time and one-shot timers, injected so that tests drive time themselves.

export interface Clock {
  /** Monotonic milliseconds (fractional): only differences mean anything. */
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Real time. Its timers keep the process alive, as a pending retry or drain deadline must. */
export const realClock: Clock = Object.freeze({
  now: () => performance.now(),
  setTimeout: (callback: () => void, ms: number): unknown => setTimeout(callback, ms),
  clearTimeout: (handle: unknown): void => clearTimeout(handle as NodeJS.Timeout),
});

/** Real time whose timers never keep the process alive: a connection's own timeouts, which end with its socket. */
export const backgroundClock: Clock = Object.freeze({
  now: () => performance.now(),
  setTimeout: (callback: () => void, ms: number): unknown => setTimeout(callback, ms).unref(),
  clearTimeout: (handle: unknown): void => clearTimeout(handle as NodeJS.Timeout),
});
