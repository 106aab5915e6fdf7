// The flood guard on a fake clock: each limit's burst and rate, which resets count (young streams, refusals), PINGs
// that follow data for free, one trip and then nothing.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_FLOOD_LIMITS, FloodGuard, type FloodKind, type FloodLimits } from '../../agent/http2/flood-guard.ts';
import { FakeTimers } from '../support/fake-timers.ts';

const LIMITS: FloodLimits = {
  quickResets: { burst: 10, perSecond: 5 },
  quickResetAgeMs: 1000,
  pings: { burst: 4, perSecond: 2 },
  settings: { burst: 3, perSecond: 1 },
};

function setup(limits: FloodLimits = LIMITS) {
  const clock = new FakeTimers();
  const trips: Array<{ kind: FloodKind; reason: string }> = [];
  const guard = new FloodGuard(clock, limits, (kind, reason) => trips.push({ kind, reason }));
  /** Opens `count` peer streams from `firstId` (odd ids), as header intake does. */
  const open = (firstId: number, count: number): number[] => {
    const ids = Array.from({ length: count }, (_, i) => firstId + 2 * i);
    for (const id of ids) guard.streamOpened(id);
    return ids;
  };
  return { clock, trips, guard, open };
}

/** How many of `count` calls are admitted before the first refusal (all of them when none is refused). */
function admittedOf(count: number, admit: (i: number) => boolean): number {
  for (let i = 0; i < count; i++) if (!admit(i)) return i;
  return count;
}

describe('FloodGuard: rapid reset', () => {
  it('admits a burst of resets of young streams, then trips once with ENHANCE_YOUR_CALM\'s reason', () => {
    const { trips, guard, open } = setup();
    const ids = open(1, 20);
    assert.equal(admittedOf(20, (i) => guard.admitPeerReset(ids[i])), 10);
    assert.deepEqual(trips.map((trip) => trip.kind), ['rapid reset']);
    assert.match(trips[0].reason, /^rapid reset: streams reset as soon as opened, over 10 then 5\/s$/);
    assert.deepEqual(guard.lifecycle, { state: 'tripped', kind: 'rapid reset' });
    // Tripped: nothing is admitted any more, and the trip is not repeated.
    assert.equal(guard.admitPing(), false);
    assert.equal(guard.admitSettings(), false);
    assert.equal(guard.admitRefusal(), false);
    assert.equal(trips.length, 1);
  });

  it('refills at the rate: 5 more a second after the burst', () => {
    const { clock, guard, open } = setup();
    let next = 1;
    const resetFresh = (): boolean => {
      const [id] = open(next, 1);
      next += 2;
      return guard.admitPeerReset(id);
    };
    assert.equal(admittedOf(10, resetFresh), 10);
    clock.advance(1000);
    assert.equal(admittedOf(5, resetFresh), 5);
    assert.equal(resetFresh(), false);
  });

  it('resets of streams older than the age limit are free: a client may drop every long-lived stream at once', () => {
    const { clock, trips, guard, open } = setup();
    const ids = open(1, 1000);
    clock.advance(2000);
    assert.equal(admittedOf(1000, (i) => guard.admitPeerReset(ids[i])), 1000);
    assert.deepEqual(trips, []);
  });

  it('a stream counts as young for at least the age limit, and no longer than twice it', () => {
    const { clock, guard, open } = setup({ ...LIMITS, quickResets: { burst: 1, perSecond: 0 } });
    // Opened at 900 ms (in the first period), reset at 1899 ms: 999 ms old, young.
    clock.advance(900);
    const [first] = open(1, 1);
    clock.advance(999);
    assert.equal(guard.admitPeerReset(first), true, 'the one token goes');
    const [second] = open(3, 1);
    assert.equal(guard.admitPeerReset(second), false, 'a second young reset trips');

    const later = setup({ ...LIMITS, quickResets: { burst: 0, perSecond: 0 } });
    later.clock.advance(100);
    const [old] = later.open(1, 1);
    // At 2100 ms the stream opened at 100 ms is two periods back: old, whatever the bucket holds.
    later.clock.advance(2000);
    assert.equal(later.guard.admitPeerReset(old), true);
    assert.deepEqual(later.trips, []);
  });

  it('streams refused or reset for what the client sent count at any age', () => {
    const { clock, trips, guard } = setup();
    clock.advance(60_000);
    assert.equal(admittedOf(20, () => guard.admitRefusal()), 10);
    assert.match(trips[0].reason, /^rapid reset: streams refused or reset as soon as opened/);
  });

  it('refusals and young resets share one budget', () => {
    const { guard, open } = setup();
    const ids = open(1, 5);
    assert.equal(admittedOf(5, (i) => guard.admitPeerReset(ids[i])), 5);
    assert.equal(admittedOf(10, () => guard.admitRefusal()), 5);
  });
});

describe('FloodGuard: PING', () => {
  it('admits a burst of PINGs, then trips', () => {
    const { trips, guard } = setup();
    assert.equal(admittedOf(10, () => guard.admitPing()), 4);
    assert.deepEqual(trips.map((trip) => trip.kind), ['PING flood']);
    assert.match(trips[0].reason, /^PING flood: PINGs without data, over 4 then 2\/s$/);
  });

  it('a PING after a WINDOW_UPDATE or header block from the peer is free (grpc-go\'s BDP pings): 10,000 in no time', () => {
    const { trips, guard, open } = setup();
    const admitted = admittedOf(10_000, (i) => {
      if (i % 2 === 0) guard.peerSentData();
      else open(2 * i + 1, 1);
      return guard.admitPing();
    });
    assert.equal(admitted, 10_000);
    assert.deepEqual(trips, []);
  });

  it('data makes only the next PING free: two PINGs after one WINDOW_UPDATE take a token', () => {
    const { guard } = setup();
    const admitted = admittedOf(100, () => {
      guard.peerSentData();
      return guard.admitPing() && guard.admitPing();
    });
    assert.equal(admitted, 4, 'the second PING of each pair spends the burst of 4');
  });

  it('keepalive pings at the rate never trip: one every half second for an hour', () => {
    const { clock, trips, guard } = setup();
    assert.equal(admittedOf(7200, () => {
      clock.advance(500);
      return guard.admitPing();
    }), 7200);
    assert.deepEqual(trips, []);
  });
});

describe('FloodGuard: SETTINGS', () => {
  it('admits a burst of SETTINGS, then one a second, then trips', () => {
    const { clock, trips, guard } = setup();
    assert.equal(admittedOf(3, () => guard.admitSettings()), 3);
    clock.advance(1000);
    assert.equal(guard.admitSettings(), true);
    assert.equal(guard.admitSettings(), false);
    assert.deepEqual(trips.map((trip) => trip.kind), ['SETTINGS flood']);
    assert.match(trips[0].reason, /^SETTINGS flood: SETTINGS frames, over 3 then 1\/s$/);
  });
});

describe('DEFAULT_FLOOD_LIMITS', () => {
  it('rapid reset: 500 young streams at once, 200 a second after; PING 100 then 20/s; SETTINGS 100 then 10/s; young = 1 s', () => {
    assert.deepEqual(DEFAULT_FLOOD_LIMITS, {
      quickResets: { burst: 500, perSecond: 200 },
      quickResetAgeMs: 1000,
      pings: { burst: 100, perSecond: 20 },
      settings: { burst: 100, perSecond: 10 },
    });
  });

  it('100k HEADERS+RST_STREAM a second trip within the first 501 streams (about 5 ms of such a flood)', () => {
    const { clock, trips, guard } = setup(DEFAULT_FLOOD_LIMITS);
    let id = 1;
    const admitted = admittedOf(100_000, () => {
      clock.advance(0.01);
      guard.streamOpened(id);
      const admittedReset = guard.admitPeerReset(id);
      id += 2;
      return admittedReset;
    });
    assert.ok(admitted >= 500 && admitted <= 502, `${admitted} resets admitted`);
    assert.equal(trips.length, 1);
  });
});
