// Wiring of the client connections' limits: the agent-wide buffer budget and its overload, the connection cap, the
// idle timeout and the handshake timeout, each with its error code, counted per event and logged sparingly.

import type { Config } from './config.ts';
import { BufferBudget } from './proxy/buffer-budget.ts';
import type { ClientLimits } from './proxy/client-limits.ts';
import type { DownstreamLimits } from './proxy/downstream-handler.ts';
import { IdleConnectionSweeper, type SweptConnection } from './proxy/idle-connection-sweeper.ts';
import { SparseEventLog } from './proxy/sparse-event-log.ts';
import type { Logger } from './telemetry/logger.ts';
import { backgroundClock } from './vocabulary/clock.ts';
import type { ErrorCode } from './vocabulary/errors.ts';

const MIB = 1024 * 1024;
const LOG_INTERVAL_MS = 60_000;

export interface ClientLimitsWiring {
  listener: ClientLimits;
  downstream: DownstreamLimits;
  onConnectionLimit(open: number): void;
  /** Starts the idle sweep over `connections` (the listener's). */
  startIdleSweep(connections: () => Iterable<SweptConnection>): void;
  stop(): void;
}

export function wireClientLimits(config: Config, logger: Logger, countError: (code: ErrorCode) => void): ClientLimitsWiring {
  const log = logger.child({ component: 'client-limits' });
  const clock = backgroundClock;
  const now = (): number => clock.now();
  const budget = new BufferBudget(config.maxBufferedBytes, clock, {
    onExhausted: (held, limit) =>
      log.warn(
        { code: 'ML_OVERLOADED', heldMiB: +(held / MIB).toFixed(1), limitMiB: limit / MIB },
        'overloaded: client connections hold more request bytes than the budget; new streams are refused and new connections wait',
      ),
    onRelieved: (held, durationMs) =>
      log.info({ code: 'ML_OVERLOADED', heldMiB: +(held / MIB).toFixed(1), durationMs: Math.round(durationMs) }, 'overload over: streams and connections admitted again'),
  });
  const connectionLimitLog = new SparseEventLog({
    logger: log,
    code: 'ML_CLIENT_CONNECTION_LIMIT',
    message: 'client connection refused: the connection limit is reached',
    countError,
    now,
    intervalMs: LOG_INTERVAL_MS,
  });
  const handshakeLog = new SparseEventLog({
    logger: log,
    code: 'ML_CLIENT_HANDSHAKE_TIMEOUT',
    message: 'client connection closed: no HTTP/2 handshake in time',
    countError,
    now,
    intervalMs: LOG_INTERVAL_MS,
  });
  const floodLog = new SparseEventLog({
    logger: log,
    code: 'ML_PEER_FLOOD',
    message: 'client connection closed with GOAWAY(ENHANCE_YOUR_CALM): it sent more than the flood limits allow',
    countError,
    now,
    intervalMs: LOG_INTERVAL_MS,
  });
  let sweeper: IdleConnectionSweeper | null = null;
  return {
    listener: { maxConnections: config.maxClientConnections, handshakeTimeoutMs: config.clientHandshakeTimeoutMs, budget },
    downstream: {
      budget,
      streamOpened: (connection) => sweeper?.busy(connection),
      streamRefused: () => countError('ML_OVERLOADED'),
      handshakeTimedOut: () => handshakeLog.event({ timeoutMs: config.clientHandshakeTimeoutMs }),
      flooded: (reason) => floodLog.event({ err: reason }),
    },
    onConnectionLimit: (open) => connectionLimitLog.event({ open, limit: config.maxClientConnections }),
    startIdleSweep: (connections) => {
      if (config.clientIdleTimeoutMs <= 0 || sweeper !== null) return;
      sweeper = new IdleConnectionSweeper({
        idleTimeoutMs: config.clientIdleTimeoutMs,
        clock,
        connections,
        onIdleClosed: (count, idleTimeoutMs) => {
          for (let i = 0; i < count; i++) countError('ML_CLIENT_IDLE_TIMEOUT');
          log.info({ code: 'ML_CLIENT_IDLE_TIMEOUT', closed: count, idleTimeoutMs }, 'idle client connections closed');
        },
      });
      sweeper.start();
    },
    stop: () => sweeper?.stop(),
  };
}
