// The real clocks: delays beyond a Node timer's range are chained at MAX_TIMER_MS instead of firing after 1 ms with a
// warning; negative and NaN delays mean now; clearTimeout stops a chained timer wherever it is in its chain.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_TIMER_MS, type PlatformTimers, platformClock, realClock } from '../../agent/vocabulary/clock.ts';

/** Platform timers that only record: what was armed (delay, unref'd) and cleared; `fire` runs one by hand. */
class RecordingPlatform implements PlatformTimers {
  readonly armed: Array<{ ms: number; unref: boolean; callback: () => void; cleared: boolean }> = [];

  setTimeout(callback: () => void, ms: number): { unref(): unknown } {
    const record = { ms, unref: false, callback, cleared: false };
    this.armed.push(record);
    return {
      unref: () => {
        record.unref = true;
      },
      // The handle the clock clears is this object; it finds its record through it.
      record,
    } as { unref(): unknown };
  }

  clearTimeout(handle: unknown): void {
    (handle as { record: { cleared: boolean } }).record.cleared = true;
  }

  fire(index: number): void {
    this.armed[index].callback();
  }
}

/** 99999999H, the longest grpc-timeout there is, in milliseconds. */
const LONGEST_GRPC_TIMEOUT_MS = 99_999_999 * 3_600_000;

describe('platformClock', () => {
  it('hands delays within the timer range to the platform as they are, and negative or NaN ones as 0', () => {
    const platform = new RecordingPlatform();
    const clock = platformClock(platform, true);
    for (const ms of [0, 1, 250.5, MAX_TIMER_MS, -5, Number.NaN]) clock.setTimeout(() => {}, ms);
    assert.deepEqual(
      platform.armed.map((timer) => timer.ms),
      [0, 1, 250.5, MAX_TIMER_MS, 0, 0],
    );
    assert.ok(platform.armed.every((timer) => !timer.unref), 'a keep-alive clock unrefs nothing');
  });

  it('arms a delay beyond the range at MAX_TIMER_MS, re-arms once per period, and calls back only at the end', () => {
    const platform = new RecordingPlatform();
    const clock = platformClock(platform, false);
    let called = 0;
    clock.setTimeout(() => called++, MAX_TIMER_MS * 2.5);
    assert.deepEqual(platform.armed.map((timer) => timer.ms), [MAX_TIMER_MS]);
    // The platform fires as asked; performance.now() has barely moved, so each link leaves the rest for the next.
    platform.fire(0);
    assert.deepEqual(platform.armed.map((timer) => timer.ms), [MAX_TIMER_MS, MAX_TIMER_MS]);
    assert.equal(called, 0);
    assert.ok(platform.armed.every((timer) => timer.unref), 'a background clock unrefs every link');
  });

  it('the longest grpc-timeout (99999999H) waits link after link, never a 1 ms timer', () => {
    const platform = new RecordingPlatform();
    const clock = platformClock(platform, true);
    clock.setTimeout(() => {}, LONGEST_GRPC_TIMEOUT_MS);
    for (let link = 0; link < 5; link++) platform.fire(link);
    assert.equal(platform.armed.length, 6);
    assert.ok(platform.armed.every((timer) => timer.ms === MAX_TIMER_MS));
  });

  it('Infinity waits for ever: one platform timer per period', () => {
    const platform = new RecordingPlatform();
    const clock = platformClock(platform, true);
    clock.setTimeout(() => assert.fail('an infinite timer fired'), Number.POSITIVE_INFINITY);
    platform.fire(0);
    assert.deepEqual(platform.armed.map((timer) => timer.ms), [MAX_TIMER_MS, MAX_TIMER_MS]);
  });

  it('clearTimeout stops a chained timer: the link armed last is cleared', () => {
    const platform = new RecordingPlatform();
    const clock = platformClock(platform, true);
    const handle = clock.setTimeout(() => assert.fail('a cleared timer fired'), MAX_TIMER_MS * 3);
    platform.fire(0);
    clock.clearTimeout(handle);
    assert.deepEqual(platform.armed.map((timer) => timer.cleared), [false, true]);
  });

  it('clearTimeout of a short timer clears the platform timer itself', () => {
    const platform = new RecordingPlatform();
    const clock = platformClock(platform, true);
    clock.clearTimeout(clock.setTimeout(() => {}, 10));
    assert.deepEqual(platform.armed.map((timer) => timer.cleared), [true]);
  });
});

describe('realClock', () => {
  it('a timer of 99999999H neither fires nor warns (Node would shorten it to 1 ms with a TimeoutOverflowWarning)', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error): void => {
      warnings.push(warning.name);
    };
    process.on('warning', onWarning);
    let fired = 0;
    const handle = realClock.setTimeout(() => fired++, LONGEST_GRPC_TIMEOUT_MS);
    const negative = realClock.setTimeout(() => fired++, -1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    realClock.clearTimeout(handle);
    realClock.clearTimeout(negative);
    process.off('warning', onWarning);
    assert.equal(fired, 1, 'only the negative delay fired (at once)');
    assert.deepEqual(warnings, []);
  });

  it('a short timer still fires on time', async () => {
    const started = performance.now();
    const at = await new Promise<number>((resolve) => realClock.setTimeout(() => resolve(performance.now()), 20));
    assert.ok(at - started >= 19, `fired after ${at - started} ms`);
  });
});
