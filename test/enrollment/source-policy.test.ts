// The listener's source rule (enrolled or loopback, in every spelling a socket reports) and the rate-limited refusal log.

import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { enrolledOrLoopback, isLoopback, SourceRefusalLog } from '../../agent/enrollment/source-policy.ts';
import { OptInIndex } from '../../agent/discovery/opt-in-index.ts';
import { createLogger } from '../../agent/telemetry/logger.ts';
import { FakeTimers } from '../support/fake-timers.ts';
import { NODE, pod } from '../support/opt-in-records.ts';

describe('isLoopback', () => {
  it('is 127.0.0.0/8 and ::1, in the spellings a socket reports, and nothing else', () => {
    for (const ip of ['127.0.0.1', '127.0.0.2', '127.255.255.254', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '::FFFF:127.1.2.3']) {
      assert.equal(isLoopback(ip), true, ip);
    }
    for (const ip of ['10.0.0.1', '128.0.0.1', '126.255.255.255', '::', '::2', 'fe80::1', '::ffff:10.0.0.1', '::127.0.0.1', '0.0.0.0', '', 'localhost', '127.0.0.1%lo']) {
      assert.equal(isLoopback(ip), false, ip);
    }
  });
});

describe('enrolledOrLoopback', () => {
  it('allows loopback and the IPs the opt-in index has enrolled now, and nothing else', () => {
    const index = new OptInIndex(NODE);
    const allowed = enrolledOrLoopback(index);
    index.applyPod(pod('a', { inject: 'enabled', ips: ['10.0.0.1', 'fd00::1'] }));
    index.applyPod(pod('b', { ips: ['10.0.0.2'] }));
    assert.deepEqual(
      ['10.0.0.1', '::ffff:10.0.0.1', 'fd00::1', 'FD00:0::1', '10.0.0.2', '10.0.0.3', '127.0.0.1', '::1'].map((ip) => [ip, allowed(ip)]),
      [
        ['10.0.0.1', true],
        ['::ffff:10.0.0.1', true],
        ['fd00::1', true],
        ['FD00:0::1', true],
        ['10.0.0.2', false],
        ['10.0.0.3', false],
        ['127.0.0.1', true],
        ['::1', true],
      ],
    );
    index.applyPod(pod('a', { inject: 'disabled', ips: ['10.0.0.1', 'fd00::1'] }));
    assert.equal(allowed('10.0.0.1'), false, 'a pod that opted out is refused from then on');
  });
});

describe('SourceRefusalLog', () => {
  it('counts every refusal, logs the first at debug, then at most one line per interval with how many it skipped', () => {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        callback();
      },
    });
    const timers = new FakeTimers();
    const counted: string[] = [];
    const log = new SourceRefusalLog({ logger: createLogger('debug', sink), countError: (code) => counted.push(code), now: () => timers.now(), intervalMs: 60_000 });
    log.refused('10.0.0.7');
    for (let i = 0; i < 500; i++) log.refused(`10.0.1.${i % 250}`);
    timers.advance(59_999);
    log.refused('10.0.0.8');
    timers.advance(1);
    log.refused('10.0.0.9');
    timers.advance(60_000);
    log.refused('10.0.0.10');
    assert.equal(counted.length, 504);
    assert.ok(counted.every((code) => code === 'ML_SOURCE_REFUSED'));
    const message = 'connection refused: the source is neither an enrolled pod nor loopback';
    assert.deepEqual(
      lines.map(({ level, component, code, source, suppressed, msg }) => ({ level, component, code, source, suppressed, msg })),
      [
        { level: 'debug', component: 'listener', code: 'ML_SOURCE_REFUSED', source: '10.0.0.7', suppressed: 0, msg: message },
        { level: 'debug', component: 'listener', code: 'ML_SOURCE_REFUSED', source: '10.0.0.9', suppressed: 501, msg: message },
        { level: 'debug', component: 'listener', code: 'ML_SOURCE_REFUSED', source: '10.0.0.10', suppressed: 0, msg: message },
      ],
    );
  });
});
