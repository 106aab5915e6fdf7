// The PING keepalive on a fake clock: when it pings, when it gives a connection up, and how it stays under the ping
// strikes grpc-go and gRPC C-core servers count.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_KEEPALIVE, type KeepaliveLink, UpstreamKeepalive } from '../../agent/upstream/upstream-keepalive.ts';
import { FakeTimers } from '../support/fake-timers.ts';

interface Fixture {
  clock: FakeTimers;
  keepalive: UpstreamKeepalive;
  /** `ping@t`, `lost@t: reason` in order. */
  events: string[];
  link: { streams: number; streamFrameSeen: boolean; ack: (() => void) | null };
  /** Moves the clock to `ms`. */
  at(ms: number): void;
  /** Bytes from the endpoint at the current time. */
  receive(): void;
  /** The pending PING's ACK arrives now (a byte, then the ACK, as the socket delivers them). */
  ack(): void;
  pings(): number[];
}

function fixture(streams = 1): Fixture {
  const clock = new FakeTimers();
  const events: string[] = [];
  const state = { streams, streamFrameSeen: false, ack: null as (() => void) | null };
  const link: KeepaliveLink = {
    hasOpenStreams: () => state.streams > 0,
    sendPing(onAck) {
      events.push(`ping@${clock.now()}`);
      state.ack = onAck;
    },
    takeStreamFrameSeen() {
      const seen = state.streamFrameSeen;
      state.streamFrameSeen = false;
      return seen;
    },
    lost(reason) {
      events.push(`lost@${clock.now()}: ${reason}`);
    },
  };
  const keepalive = new UpstreamKeepalive(link, clock);
  keepalive.start();
  const f: Fixture = {
    clock,
    keepalive,
    events,
    link: state,
    at: (ms) => clock.advance(ms - clock.now()),
    receive: () => keepalive.received(),
    ack() {
      keepalive.received();
      const onAck = state.ack;
      state.ack = null;
      assert.ok(onAck, 'a PING is out');
      onAck();
    },
    pings: () => events.filter((e) => e.startsWith('ping@')).map((e) => Number(e.slice(5))),
  };
  return f;
}

describe('UpstreamKeepalive', () => {
  it('the defaults: a PING after 1 s of silence, given up 2 s later', () => {
    assert.deepEqual(DEFAULT_KEEPALIVE, { intervalMs: 1000, timeoutMs: 2000 });
  });

  it('streams open and nothing received: PING at 1 s, lost at 3 s with the reason; no timer is left', () => {
    const f = fixture();
    assert.deepEqual(f.keepalive.state, { state: 'watching', since: 0 });
    f.at(999);
    assert.deepEqual(f.events, []);
    f.at(1000);
    assert.deepEqual(f.events, ['ping@1000']);
    assert.deepEqual(f.keepalive.state, { state: 'pinging', sentAt: 1000 });
    f.at(2999);
    assert.equal(f.events.length, 1);
    f.at(3000);
    assert.deepEqual(f.events, ['ping@1000', 'lost@3000: endpoint silent: no answer to a PING within 2000 ms, nothing received for 3000 ms']);
    assert.deepEqual(f.keepalive.state, { state: 'stopped' });
    assert.equal(f.clock.activeCount, 0);
    f.at(60_000);
    assert.equal(f.events.length, 2, 'nothing after lost');
  });

  it('every byte received moves the PING: it goes out 1 s after the last one', () => {
    const f = fixture();
    f.at(600);
    f.receive();
    f.at(1500);
    f.receive();
    f.at(2499);
    assert.deepEqual(f.events, []);
    f.at(2500);
    assert.deepEqual(f.events, ['ping@2500']);
  });

  it('a busy connection (a byte every 100 ms) never pings', () => {
    const f = fixture();
    for (let t = 100; t <= 60_000; t += 100) {
      f.at(t);
      f.receive();
    }
    assert.deepEqual(f.events, []);
  });

  it('no stream open: no PING, however long the silence; a stream that opens gets a full interval first', () => {
    const f = fixture(0);
    assert.deepEqual(f.keepalive.state, { state: 'idle' });
    f.at(3 * 60 * 60_000);
    assert.deepEqual(f.events, []);
    assert.deepEqual(f.keepalive.state, { state: 'idle' });
    assert.equal(f.clock.activeCount, 1, 'one tick pending, to notice the next stream');
    f.link.streams = 1;
    const opened = f.clock.now();
    f.at(opened + 1000);
    assert.deepEqual(f.keepalive.state, { state: 'watching', since: opened + 1000 }, 'seen at the next tick');
    f.at(opened + 1999);
    assert.deepEqual(f.events, []);
    f.at(opened + 2000);
    assert.deepEqual(f.pings(), [opened + 2000]);
  });

  it('a stream handed out on an idle connection is watched from that moment, not from the next tick', () => {
    const f = fixture(0);
    f.at(400);
    f.keepalive.streamOpening();
    f.link.streams = 1;
    assert.deepEqual(f.keepalive.state, { state: 'watching', since: 400 });
    f.at(1399);
    assert.deepEqual(f.events, []);
    f.at(1400);
    assert.deepEqual(f.pings(), [1400]);
    f.keepalive.streamOpening();
    assert.deepEqual(f.keepalive.state, { state: 'pinging', sentAt: 1400 }, 'only an idle keepalive is woken');
  });

  it('streams that end while watching: back to idle, no PING', () => {
    const f = fixture();
    f.at(500);
    f.link.streams = 0;
    f.at(10_000);
    assert.deepEqual(f.events, []);
    assert.deepEqual(f.keepalive.state, { state: 'idle' });
  });

  it('a byte without the ACK before the timeout proves the endpoint alive: watching again, not lost', () => {
    const f = fixture();
    f.at(1000);
    f.at(1800);
    f.receive();
    f.at(3000);
    assert.deepEqual(f.keepalive.state, { state: 'watching', since: 3000 });
    assert.deepEqual(f.events, ['ping@1000']);
  });

  it('an ACK ends the wait at once; a quiet stream then gets one more PING (one risked strike), then none for 5.5 min', () => {
    const f = fixture();
    f.at(1000);
    f.at(1010);
    f.ack();
    assert.deepEqual(f.keepalive.state, { state: 'watching', since: 1010 });
    f.at(2010);
    f.at(2020);
    f.ack();
    // 5 min 30 s after the last PING: spaced enough not to be a strike.
    f.at(2010 + 330_000 - 1);
    assert.deepEqual(f.pings(), [1000, 2010]);
    f.at(2010 + 330_000 + 1000);
    assert.equal(f.pings().length, 3);
    const third = f.pings()[2];
    assert.ok(third >= 2010 + 330_000 && third <= 2010 + 331_000, `third PING at ${third}`);
    assert.equal(f.events.some((e) => e.startsWith('lost')), false);
  });

  it('HEADERS or DATA after an ACK make the next PING free again (the server reset its strikes)', () => {
    const f = fixture();
    f.at(1000);
    f.ack();
    f.at(2000);
    f.ack();
    // Out of risked strikes; a response frame after the ACK gives one free PING back.
    f.at(2500);
    f.receive();
    f.link.streamFrameSeen = true;
    f.at(3500);
    assert.deepEqual(f.pings(), [1000, 2000, 3500]);
    f.ack();
    // And the one risked strike is available again after a free PING.
    f.at(4500);
    assert.deepEqual(f.pings(), [1000, 2000, 3500, 4500]);
    f.ack();
    f.at(60_000);
    assert.deepEqual(f.pings(), [1000, 2000, 3500, 4500]);
  });

  it('a frame that crossed the PING (seen before its ACK) does not make the next one free', () => {
    const f = fixture();
    f.at(1000);
    f.link.streamFrameSeen = true;
    f.ack();
    f.at(2000);
    f.ack();
    f.at(60_000);
    assert.deepEqual(f.pings(), [1000, 2000]);
  });

  it('stop(): stopped, no timer left, and a late ACK changes nothing', () => {
    const f = fixture();
    f.at(1000);
    const late = f.link.ack;
    f.keepalive.stop();
    assert.deepEqual(f.keepalive.state, { state: 'stopped' });
    assert.equal(f.clock.activeCount, 0);
    late?.();
    f.at(60_000);
    assert.deepEqual(f.events, ['ping@1000']);
    assert.deepEqual(f.keepalive.state, { state: 'stopped' });
  });
});
