// The root logger: JSON lines with word levels and ISO times, component children, error codes kept, levels honoured.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MeshliteError } from '../../agent/vocabulary/errors.ts';
import { createLogger, LOG_LEVELS, type LogLevel } from '../../agent/telemetry/logger.ts';

function capture(level: LogLevel) {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger(level, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { logger, lines };
}

describe('createLogger', () => {
  it('writes one JSON line per event, with the level as a word and an ISO time, without pid or hostname', () => {
    const { logger, lines } = capture('info');
    logger.info({ services: 2 }, 'static discovery file loaded');
    assert.equal(lines.length, 1);
    const [line] = lines;
    assert.equal(line.level, 'info');
    assert.equal(line.msg, 'static discovery file loaded');
    assert.equal(line.services, 2);
    assert.match(String(line.time), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    assert.equal('pid' in line, false);
    assert.equal('hostname' in line, false);
  });

  it('gives children their component on every line', () => {
    const { logger, lines } = capture('info');
    logger.child({ component: 'relay' }).warn('upstream refused');
    assert.equal(lines[0].component, 'relay');
    assert.equal(lines[0].level, 'warn');
  });

  it('keeps the code of a MeshliteError logged as err', () => {
    const { logger, lines } = capture('info');
    logger.error({ err: new MeshliteError('ML_CONNECT_FAILED', 'connect ECONNREFUSED 10.0.0.1:50051') }, 'connect failed');
    const err = lines[0].err as Record<string, unknown>;
    assert.equal(err.code, 'ML_CONNECT_FAILED');
    assert.equal(err.message, 'connect ECONNREFUSED 10.0.0.1:50051');
    assert.match(String(err.stack), /MeshliteError/);
  });

  it('drops what is below the level, and everything when silent', () => {
    const info = capture('info');
    info.logger.debug('hidden');
    info.logger.info('shown');
    assert.deepEqual(info.lines.map((l) => l.msg), ['shown']);
    const silent = capture('silent');
    silent.logger.fatal('hidden');
    assert.equal(silent.lines.length, 0);
  });

  it('accepts every level that --log-level offers', () => {
    for (const level of LOG_LEVELS) assert.equal(createLogger(level, { write: () => {} }).level, level);
  });
});
