// The agent's shutdown on real HTTP/2 connections (meshlite's server role, the client played by the test): not ready
// → stop accepting → GOAWAY(2^31-1) + PING → final GOAWAY naming the last stream → in-flight streams finish or the
// deadline closes them → the rest stops. Time is a fake clock.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AgentShutdown, STOP_REST_TIMEOUT_MS, type DrainableListener } from '../../agent/drain/agent-shutdown.ts';
import { MAX_STREAM_ID } from '../../agent/http2/constants.ts';
import { createLogger } from '../../agent/telemetry/logger.ts';
import type { ErrorCode } from '../../agent/vocabulary/errors.ts';
import { type Peer, serverPeer } from '../support/connection-harness.ts';
import { FakeTimers } from '../support/fake-timers.ts';
import { data, ping, request } from '../support/raw-frames.ts';

const DRAIN_TIMEOUT_MS = 30_000;

/** The listener as the shutdown sees it, over client connections the test plays. */
class PeerListener implements DrainableListener {
  readonly peers: Peer[];
  readonly steps: string[];
  constructor(peers: Peer[], steps: string[]) {
    this.peers = peers;
    this.steps = steps;
  }
  stopAccepting(now: number): Promise<void> {
    this.steps.push(`stop accepting at ${now}`);
    return Promise.resolve();
  }
  finishConnections(): void {
    this.steps.push('finish connections');
    for (const peer of this.peers) peer.connection.shutdown();
  }
  get openConnections(): number {
    return this.peers.filter((peer) => peer.connection.lifecycle.state !== 'closed').length;
  }
  destroyAll(): void {
    this.steps.push(`destroy ${this.openConnections}`);
    for (const peer of this.peers) peer.connection.destroy();
  }
}

function setup(peerCount: number, stopRest: () => Promise<void> = async () => {}) {
  const clock = new FakeTimers();
  const steps: string[] = [];
  const errors: ErrorCode[] = [];
  const lines: Array<Record<string, unknown>> = [];
  const peers = Array.from({ length: peerCount }, () => serverPeer({ handler: { respond: false } }));
  const listener = new PeerListener(peers, steps);
  const shutdown = new AgentShutdown({
    listener,
    markNotReady: () => void steps.push('not ready'),
    stopRest: async () => {
      steps.push('stop the rest');
      await stopRest();
    },
    clock,
    drainTimeoutMs: DRAIN_TIMEOUT_MS,
    logger: createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line)) }),
    countError: (code) => void errors.push(code),
  });
  return { clock, steps, errors, lines, peers, listener, shutdown };
}

/** GOAWAY and PING frames in the order written, as "GOAWAY(last)" and "PING". */
function drainFrames(peer: Peer): string[] {
  return peer.frames.flatMap((frame) => {
    if (frame.type === 7) return [`GOAWAY(${frame.payload.readUInt32BE(0) & 0x7fffffff}, code ${frame.payload.readUInt32BE(4)})`];
    if (frame.type === 6 && (frame.flags & 1) === 0) return [`PING(${frame.payload.toString('latin1')})`];
    return [];
  });
}

describe('AgentShutdown', () => {
  it('runs the whole sequence in order and ends once the last in-flight stream finished', async () => {
    const { clock, steps, errors, lines, peers, shutdown } = setup(2);
    const [busy, idle] = peers;
    busy.send(request(1, false));
    await busy.settle();
    clock.advance(100);
    const done = shutdown.run('SIGTERM');
    assert.deepEqual(steps, ['not ready', 'stop accepting at 100', 'finish connections']);
    await busy.settle();
    await idle.settle();
    // GOAWAY(2^31-1) and a PING first: streams the client opened meanwhile are still served.
    assert.deepEqual(drainFrames(busy), [`GOAWAY(${MAX_STREAM_ID}, code 0)`, 'PING(mlgoaway)']);
    // The PING comes back: the final GOAWAY names the last stream the client opened.
    busy.send(ping('mlgoaway', true));
    idle.send(ping('mlgoaway', true));
    await busy.settle();
    await idle.settle();
    assert.deepEqual(drainFrames(busy), [`GOAWAY(${MAX_STREAM_ID}, code 0)`, 'PING(mlgoaway)', 'GOAWAY(1, code 0)']);
    assert.deepEqual(drainFrames(idle), [`GOAWAY(${MAX_STREAM_ID}, code 0)`, 'PING(mlgoaway)', 'GOAWAY(0, code 0)']);
    assert.equal(idle.connection.lifecycle.state, 'closed', 'a connection without streams closes after its final GOAWAY');
    shutdown.connectionClosed();
    assert.equal(shutdown.drain.state.state, 'finishing', 'the busy connection still has its stream');
    // The in-flight request ends, its response goes out, and the connection closes.
    busy.send(data(1, 'x', { endStream: true }));
    busy.handler.respond(busy.connection, busy.handler.streams.get(1)!);
    await busy.settle();
    assert.equal(busy.connection.lifecycle.state, 'closed');
    clock.advance(250);
    shutdown.connectionClosed();
    const final = await done;
    assert.deepEqual(final, { state: 'drained', since: 350, reason: 'SIGTERM', outcome: 'finished', left: 0 });
    assert.deepEqual(steps, ['not ready', 'stop accepting at 100', 'finish connections', 'stop the rest']);
    assert.deepEqual(errors, []);
    assert.deepEqual(
      lines.map((line) => line.msg),
      ['draining', 'meshlite stopped'],
    );
    assert.equal(clock.activeCount, 0, 'no timer left');
  });

  it('at the drain deadline the connections still open are closed, ML_DRAIN_TIMEOUT is counted and logged', async () => {
    const { clock, steps, errors, lines, peers, shutdown } = setup(1);
    const [stuck] = peers;
    stuck.send(request(1, false));
    await stuck.settle();
    const done = shutdown.run('SIGTERM');
    stuck.send(ping('mlgoaway', true));
    await stuck.settle();
    clock.advance(DRAIN_TIMEOUT_MS - 1);
    assert.equal(shutdown.drain.state.state, 'finishing');
    clock.advance(1);
    const final = await done;
    assert.deepEqual(final, { state: 'drained', since: DRAIN_TIMEOUT_MS, reason: 'SIGTERM', outcome: 'deadline', left: 1 });
    assert.deepEqual(steps, ['not ready', 'stop accepting at 0', 'finish connections', 'destroy 1', 'stop the rest']);
    assert.equal(stuck.connection.lifecycle.state, 'closed');
    assert.deepEqual(errors, ['ML_DRAIN_TIMEOUT']);
    const warning = lines.find((line) => line.code === 'ML_DRAIN_TIMEOUT');
    assert.equal(warning?.open, 1);
    assert.equal(warning?.level, 'warn');
  });

  it('a second signal closes what is left at once, without counting a timeout', async () => {
    const { steps, errors, peers, shutdown } = setup(1);
    peers[0].send(request(1, false));
    await peers[0].settle();
    const done = shutdown.run('SIGTERM');
    assert.equal(shutdown.drain.started, true);
    shutdown.force('SIGINT');
    const final = await done;
    assert.equal(final.state === 'drained' && final.outcome, 'forced');
    assert.deepEqual(steps, ['not ready', 'stop accepting at 0', 'finish connections', 'destroy 1', 'stop the rest']);
    assert.deepEqual(errors, []);
  });

  it('runs once: a second run returns the same promise', async () => {
    const { steps, shutdown } = setup(0);
    const first = shutdown.run('SIGTERM');
    assert.equal(shutdown.run('SIGTERM'), first);
    await first;
    assert.deepEqual(steps, ['not ready', 'stop accepting at 0', 'finish connections', 'stop the rest']);
  });

  it('a rest that does not stop within 5 s: ML_STOP_TIMEOUT counted and logged, and the agent stops anyway', async () => {
    const { clock, errors, lines, shutdown } = setup(0, () => new Promise(() => {}));
    let done = false;
    const finished = shutdown.run('SIGTERM').then(() => {
      done = true;
    });
    for (let i = 0; i < 10; i++) await Promise.resolve();
    clock.advance(STOP_REST_TIMEOUT_MS - 1);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(done, false);
    clock.advance(1);
    await finished;
    assert.deepEqual(errors, ['ML_STOP_TIMEOUT']);
    assert.deepEqual(lines.slice(-2).map((line) => [line.code ?? null, line.msg]), [
      ['ML_STOP_TIMEOUT', 'stopping the rest of the agent took too long; stopping anyway'],
      [null, 'meshlite stopped'],
    ]);
  });
});
