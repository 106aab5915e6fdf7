// The agent's recent events: its last log lines at info and above, newest first, bounded; debug lines stay out.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../agent/telemetry/logger.ts';
import { RecentLines } from '../../agent/telemetry/recent-lines.ts';

describe('RecentLines', () => {
  it('keeps the last lines at info and above as events, newest first, with component and code', () => {
    const recent = new RecentLines(3);
    const written: string[] = [];
    const logger = createLogger('debug', { write: (line: string) => void written.push(line) }, recent);
    logger.child({ component: 'intercept' }).info('interception applied');
    logger.debug('a request, at debug');
    logger.warn({ code: 'ML_KUBE_LIST_FAILED' }, 'listing failed');
    logger.child({ component: 'relay' }).error({ code: 'ML_CONNECT_FAILED' }, 'upstream connect failed');
    logger.info('meshlite ready');
    assert.equal(written.length, 5, 'every line still goes to the log');
    assert.deepEqual(
      recent.events().map((event) => [event.level, event.component, event.code, event.msg]),
      [
        ['info', null, null, 'meshlite ready'],
        ['error', 'relay', 'ML_CONNECT_FAILED', 'upstream connect failed'],
        ['warn', null, 'ML_KUBE_LIST_FAILED', 'listing failed'],
      ],
    );
    assert.match(recent.events()[0].time, /^\d{4}-\d\d-\d\dT/);
  });

  it('leaves out what is not a JSON log line', () => {
    const recent = new RecentLines();
    recent.write('not json\n');
    recent.write('{"level":"info","msg":"ok","time":"t"}\n');
    assert.deepEqual(recent.events(), [{ time: 't', level: 'info', component: null, msg: 'ok', code: null }]);
  });
});
