// The pools by endpoint address: one pool per address, the options each pool gets, backoff as seen from outside, a
// drained endpoint's pool replaced by a fresh one, and drainAll.

import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { EndpointPools } from '../../agent/upstream/endpoint-pools.ts';
import type { UpstreamPool } from '../../agent/upstream/upstream-pool.ts';
import { waitFor } from '../../lab/wait-for.ts';
import { FakeTimers } from '../support/fake-timers.ts';
import { type Peer, REQUEST, refusingPort, startPeer, upstreamEvents } from './http2-peer.ts';

describe('EndpointPools', () => {
  const peers: Peer[] = [];
  let all: EndpointPools<unknown> | null = null;
  const clock = new FakeTimers();

  afterEach(async () => {
    all?.drainAll();
    for (const peer of peers.splice(0)) await peer.close();
  });

  function pools(events: string[] = []): EndpointPools<unknown> {
    all = new EndpointPools<unknown>({
      handler: upstreamEvents,
      clock,
      random: () => 0.5,
      connectTimeoutMs: 5000,
      maxConnectionsPerEndpoint: 1,
      streamHeadroom: 0,
      onConnectionStateChange: (pool, connection, previous) => events.push(`${pool.address} ${previous}→${connection.state.state}`),
    });
    return all;
  }

  it('one pool per address, created on first use; get and size see it', () => {
    const p = pools();
    assert.equal(p.size, 0);
    assert.equal(p.get('127.0.0.1:1'), undefined);
    const first = p.poolFor('127.0.0.1:1');
    assert.equal(p.poolFor('127.0.0.1:1'), first, 'the same pool for the same address');
    const other = p.poolFor('127.0.0.2:1');
    assert.notEqual(other, first);
    assert.equal(p.size, 2);
    assert.equal(p.get('127.0.0.1:1'), first);
    assert.equal(first.address, '127.0.0.1:1');
    assert.equal(first.state, 'active');
  });

  it('a pool dials its address (IPv4 and bracketed IPv6) with the options given, and reports its connections', async () => {
    const peer = await startPeer();
    peers.push(peer);
    const events: string[] = [];
    const p = pools(events);
    const address = `127.0.0.1:${peer.port}`;
    const pool = p.poolFor(address);
    assert.equal(pool.acquire(), null, 'not connected yet: a connection is being made');
    await waitFor(() => pool.connections[0]?.state.state === 'ready', { message: 'connected' });
    const connection = pool.acquire();
    assert.ok(connection !== null);
    assert.deepEqual(events, [`${address} null→connecting`, `${address} connecting→ready`]);
    // maxConnectionsPerEndpoint 1 and a headroom of 0: one stream fills nothing, the peer's limit is far.
    connection.openStream(REQUEST, true);
    await waitFor(() => peer.held.length === 1, { message: 'the request reached the peer' });
    assert.equal(pool.connections.length, 1);
    const v6 = p.poolFor(`[::1]:${peer.port}`);
    assert.equal(v6.address, `[::1]:${peer.port}`);
  });

  it('inBackoff: false for an unknown address and a pool that never failed; true after a refused connect', async () => {
    const port = await refusingPort();
    const p = pools();
    const address = `127.0.0.1:${port}`;
    assert.equal(p.inBackoff(address), false, 'no pool yet');
    const pool = p.poolFor(address);
    assert.equal(p.inBackoff(address), false, 'connecting, not failed');
    pool.acquire();
    await waitFor(() => pool.connections.length === 0, { message: 'the connect was refused' });
    assert.equal(p.inBackoff(address), true);
    assert.equal(pool.inBackoff, true);
    clock.advance(1000);
    assert.equal(p.inBackoff(address), false, 'the backoff is over');
  });

  it('drain(address) drains and forgets that pool only; the next use gets a fresh pool', () => {
    const p = pools();
    const first = p.poolFor('127.0.0.1:1');
    const kept = p.poolFor('127.0.0.2:1');
    p.drain('127.0.0.1:1');
    assert.equal(first.state, 'closed', 'a pool without connections is closed at once');
    assert.equal(p.get('127.0.0.1:1'), undefined);
    assert.equal(p.size, 1);
    assert.equal(kept.state, 'active');
    const fresh = p.poolFor('127.0.0.1:1');
    assert.notEqual(fresh, first);
    assert.equal(fresh.state, 'active');
    p.drain('127.0.0.9:1');
    assert.equal(p.size, 2, 'draining an unknown address changes nothing');
  });

  it('drainAll drains every pool but keeps them listed; poolFor then replaces a drained one', () => {
    const p = pools();
    const listed: UpstreamPool<unknown>[] = [p.poolFor('127.0.0.1:1'), p.poolFor('127.0.0.2:1')];
    p.drainAll();
    assert.deepEqual(
      listed.map((pool) => pool.state),
      ['closed', 'closed'],
    );
    assert.equal(p.size, 2);
    const replaced = p.poolFor('127.0.0.1:1');
    assert.notEqual(replaced, listed[0]);
    assert.equal(replaced.state, 'active');
    assert.equal(p.get('127.0.0.1:1'), replaced);
  });
});
