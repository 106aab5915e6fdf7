// What /readyz answers in each phase of the agent's start and shutdown, and that phases only move forward.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AgentReadiness } from '../../agent/admin/agent-readiness.ts';

describe('AgentReadiness', () => {
  it('starts in discovery: not ready, with the reason, the phase and what discovery says of itself', () => {
    const readiness = new AgentReadiness();
    assert.equal(readiness.phase, 'discovery');
    assert.deepEqual(readiness.answer(), {
      ready: false,
      reason: 'discovery syncing: waiting for the first snapshot of Services, EndpointSlices and pods',
      phase: 'discovery',
      discovery: undefined,
    });
    readiness.reportDiscovery(() => ({ state: 'syncing', waitingFor: ['services'] }));
    assert.deepEqual(readiness.answer(), {
      ready: false,
      reason: 'discovery syncing: waiting for the first snapshot of Services, EndpointSlices and pods',
      phase: 'discovery',
      discovery: { state: 'syncing', waitingFor: ['services'] },
    });
  });

  it('says why in every phase before serving, is ready only while serving, and not once draining', () => {
    const readiness = new AgentReadiness();
    let discovery = 'syncing';
    readiness.reportDiscovery(() => ({ state: discovery }));
    discovery = 'synced';
    readiness.enter('listening');
    assert.deepEqual(readiness.answer(), { ready: false, reason: 'proxy listener starting', phase: 'listening', discovery: { state: 'synced' } });
    readiness.enter('interception');
    assert.deepEqual(readiness.answer(), {
      ready: false,
      reason: 'interception rules not applied yet',
      phase: 'interception',
      discovery: { state: 'synced' },
    });
    readiness.enter('serving');
    assert.deepEqual(readiness.answer(), { ready: true, discovery: { state: 'synced' } });
    discovery = 'degraded';
    assert.deepEqual(readiness.answer(), { ready: true, discovery: { state: 'degraded' } }, 'asked anew on every answer');
    readiness.enter('draining');
    assert.deepEqual(readiness.answer(), { ready: false, reason: 'draining', phase: 'draining', discovery: { state: 'degraded' } });
  });

  it('may skip phases forward (no interception in explicit mode; a signal while starting) but never go back', () => {
    const readiness = new AgentReadiness();
    readiness.enter('draining');
    assert.equal(readiness.phase, 'draining');
    assert.throws(() => readiness.enter('serving'), { message: 'readiness: draining cannot go back to serving' });
    const explicit = new AgentReadiness();
    explicit.enter('listening');
    explicit.enter('serving');
    explicit.enter('serving');
    assert.equal(explicit.phase, 'serving');
    assert.throws(() => explicit.enter('discovery'), { message: 'readiness: serving cannot go back to discovery' });
    assert.equal(explicit.phase, 'serving');
  });
});
