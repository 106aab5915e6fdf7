// The agent's one pino root logger: JSON lines on stdout; components log through logger.child({ component }).

import pino from 'pino';
import type { RecentLines } from './recent-lines.ts';

export type Logger = pino.Logger;

/** Accepted by --log-level; "silent" turns logging off (tests, benchmarks). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Every error a line carries is in its `err` field, as an object with at least a message: an Error keeps its type,
 * code (MeshliteError.code, a system error's) and stack; a failure known only by its text (a peer's answer, a
 * rejected file) is `{ message }`.
 */
export function serializeError(value: unknown): unknown {
  if (typeof value === 'string') return { message: value };
  return pino.stdSerializers.err(value as Error);
}

/**
 * The root logger. `destination` defaults to stdout (written synchronously: the agent logs events, not requests,
 * so the cost is small, and a crash loses no line). Tests pass a stream to read the lines back. `recent`, when given,
 * also keeps the lines at info and above (the dashboard's recent events).
 */
export function createLogger(level: LogLevel, destination?: pino.DestinationStream, recent?: RecentLines): Logger {
  const options: pino.LoggerOptions = {
    level,
    // pid and hostname add nothing in a pod (the pod name is on every line already via the log collector).
    base: null,
    timestamp: pino.stdTimeFunctions.isoTime,
    // Levels as words ("warn", not 40): log collectors and people read them without a lookup table.
    formatters: { level: (label) => ({ level: label }) },
    serializers: { err: serializeError },
  };
  if (recent === undefined) return destination === undefined ? pino(options) : pino(options, destination);
  const out = destination ?? pino.destination({ dest: 1, sync: true });
  // multistream: every stream's own level; the logger's level still decides what is written at all.
  return pino(options, pino.multistream([{ stream: out, level: 'trace' }, { stream: recent, level: 'info' }]));
}
