// The enrollment server over a real unix socket: exact bodies of every route, 4xx for bad requests, 503 when the rules lag, DEL idempotent.

import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CniIpClaims } from '../../agent/enrollment/cni-ip-claims.ts';
import { CniEnrollment } from '../../agent/enrollment/enrollment.ts';
import { EnrollmentServer, type EnrollmentHandler } from '../../agent/enrollment/enrollment-server.ts';
import { OptInIndex } from '../../agent/discovery/opt-in-index.ts';
import { createLogger } from '../../agent/telemetry/logger.ts';
import { NODE, pod } from '../support/opt-in-records.ts';
import { call } from './unix-http.ts';
import { realClock } from '../../agent/vocabulary/clock.ts';

describe('EnrollmentServer: the routes', () => {
  let directory: string;
  let socketPath: string;
  let server: EnrollmentServer;
  let index: OptInIndex;
  let ipClaims: CniIpClaims;
  const errors: string[] = [];
  /** The interception manager stand-in: applied at once unless a test holds it. */
  let applied: () => Promise<void> = () => Promise.resolve();

  before(async () => {
    directory = await mkdtemp(join(tmpdir(), 'ml-enr-'));
    socketPath = join(directory, 'run', 'meshlite', 'cni.sock');
    index = new OptInIndex(NODE);
    ipClaims = new CniIpClaims(index);
    const enrollment = new CniEnrollment({
      ipClaims,
      index,
      lookup: null,
      interception: { whenApplied: () => applied() },
      timers: realClock,
      applyTimeoutMs: 100,
      lookupTimeoutMs: 1000,
      logger: createLogger('silent'),
      countError: (code) => errors.push(code),
    });
    server = new EnrollmentServer({ path: socketPath, enrollment, logger: createLogger('silent'), countError: (code) => errors.push(code), probeTimeoutMs: 500 });
    ipClaims.applyPod(pod('client', { inject: 'enabled', phase: 'Pending' }));
    ipClaims.applyPod(pod('other', { phase: 'Pending' }));
  });

  after(async () => {
    await server.stop();
    await rm(directory, { recursive: true, force: true });
  });

  it('makes the missing directory 0750 and the socket 0660', async () => {
    const state = await server.start();
    assert.deepEqual(state, { state: 'listening', path: socketPath, previous: 'none', inode: (await stat(socketPath)).ino });
    assert.equal((await stat(join(directory, 'run', 'meshlite'))).mode & 0o777, 0o750);
    const socket = await stat(socketPath);
    assert.ok(socket.isSocket());
    assert.equal(socket.mode & 0o777, 0o660);
  });

  it('ADD: enrolls an opted-in pod and answers once the rules hold it', async () => {
    const body = { containerId: 'c1', netns: '/var/run/netns/c1', ifName: 'eth0', namespace: 'app', name: 'client', ips: ['10.79.2.5', 'FD79:2::5'] };
    assert.deepEqual(await call(socketPath, '/v1/cni/add', body), {
      status: 200,
      contentType: 'application/json',
      body: { enrolled: true, reason: 'pod annotation meshlite.io/inject=enabled' },
    });
    assert.deepEqual([...index.enrolled.keys()], ['10.79.2.5', 'fd79:2::5']);
    const other = { containerId: 'c2', netns: '/var/run/netns/c2', ifName: 'eth0', namespace: 'app', name: 'other', ips: ['10.79.2.6'] };
    assert.deepEqual((await call(socketPath, '/v1/cni/add', other)).body, { enrolled: false, reason: 'no meshlite.io/inject annotation on the pod or its namespace' });
  });

  it('CHECK and DEL (idempotent)', async () => {
    const id = { containerId: 'c1', namespace: 'app', name: 'client' };
    assert.deepEqual(await call(socketPath, '/v1/cni/check', id), {
      status: 200,
      contentType: 'application/json',
      body: { enrolled: true, expected: true, reason: 'pod annotation meshlite.io/inject=enabled' },
    });
    assert.deepEqual(await call(socketPath, '/v1/cni/del', id), { status: 200, contentType: 'application/json', body: { released: ['10.79.2.5', 'fd79:2::5'] } });
    assert.deepEqual(await call(socketPath, '/v1/cni/del', id), { status: 200, contentType: 'application/json', body: { released: [] } });
    assert.deepEqual([...index.enrolled.keys()], []);
  });

  it('503 ML_CNI_NOT_APPLIED when the rules are not applied within the time limit', async () => {
    applied = () => new Promise(() => {});
    try {
      const body = { containerId: 'c3', netns: '/var/run/netns/c3', ifName: 'eth0', namespace: 'app', name: 'client', ips: ['10.79.2.7'] };
      assert.deepEqual(await call(socketPath, '/v1/cni/add', body), {
        status: 503,
        contentType: 'application/json',
        body: {
          code: 'ML_CNI_NOT_APPLIED',
          message: 'pod app/client (pod annotation meshlite.io/inject=enabled): the interception rules were not applied within 100 ms',
        },
      });
    } finally {
      applied = () => Promise.resolve();
    }
  });

  it('400 for a body that is not JSON or misses a field, with {code, message}', async () => {
    errors.length = 0;
    const bad: Array<[string | object, string]> = [
      ['{"containerId": ', 'the body is not JSON: '],
      ['[1, 2]', '/v1/cni/add: the body must be a JSON object'],
      [{ netns: '/n', ifName: 'eth0', namespace: 'app', name: 'client', ips: ['10.0.0.1'] }, '/v1/cni/add: "containerId" is missing'],
      [{ containerId: 'c', netns: '/n', ifName: 'eth0', namespace: 'app', name: 'client', ips: [] }, '/v1/cni/add: "ips" must list at least one address'],
      [{ containerId: 'c', netns: '/n', ifName: 'eth0', namespace: 'app', name: 'client', ips: ['10.0.0.1/24'] }, '/v1/cni/add: "ips[0]" "10.0.0.1/24" is not an IP address'],
      [{ containerId: 'c', netns: '/n', ifName: 'eth0', namespace: 'App', name: 'client', ips: ['10.0.0.1'] }, '/v1/cni/add: "namespace" "App" is not a Kubernetes namespace name'],
      [{ containerId: 7, netns: '/n', ifName: 'eth0', namespace: 'app', name: 'client', ips: ['10.0.0.1'] }, '/v1/cni/add: "containerId" must be a non-empty string'],
    ];
    for (const [body, message] of bad) {
      const answer = await call(socketPath, '/v1/cni/add', body);
      assert.equal(answer.status, 400, message);
      const { code, message: got } = answer.body as { code: string; message: string };
      assert.deepEqual(Object.keys(answer.body as object), ['code', 'message']);
      assert.equal(code, 'ML_CNI_BAD_REQUEST');
      if (message.endsWith(': ')) assert.ok(got.startsWith(message), got);
      else assert.equal(got, message);
    }
    assert.deepEqual(errors, Array(bad.length).fill('ML_CNI_BAD_REQUEST'));
    assert.deepEqual((await call(socketPath, '/v1/cni/del', { containerId: 'c', namespace: 'app' })).body, {
      code: 'ML_CNI_BAD_REQUEST',
      message: '/v1/cni/del: "name" is missing',
    });
  });

  it('404 for an unknown path, 405 for a wrong method, 413 for a huge body; GET /v1/cni/status answers', async () => {
    assert.deepEqual(await call(socketPath, '/v1/cni/nope', {}), {
      status: 404,
      contentType: 'application/json',
      body: { code: 'ML_CNI_BAD_REQUEST', message: 'no such path: /v1/cni/nope' },
    });
    assert.deepEqual(await call(socketPath, '/v1/cni/add'), {
      status: 405,
      contentType: 'application/json',
      body: { code: 'ML_CNI_BAD_REQUEST', message: '/v1/cni/add takes POST, not GET' },
    });
    const huge = JSON.stringify({ containerId: 'x'.repeat(70_000) });
    assert.deepEqual(await call(socketPath, '/v1/cni/add', huge), {
      status: 413,
      contentType: 'application/json',
      body: { code: 'ML_CNI_BAD_REQUEST', message: 'the body is larger than 65536 bytes' },
    });
    assert.deepEqual(await call(socketPath, '/v1/cni/status'), { status: 200, contentType: 'application/json', body: { ready: true } });
  });
});

describe('EnrollmentServer: failures inside the agent', () => {
  it('answers 500 ML_INTERNAL when a handler throws, and keeps serving', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'ml-enr-'));
    const socketPath = join(directory, 'cni.sock');
    let calls = 0;
    const enrollment: EnrollmentHandler = {
      add: async () => {
        calls++;
        throw new Error('bug');
      },
      del: () => ({ status: 200, body: { released: [] } }),
      check: async () => ({ status: 200, body: { enrolled: false, expected: false, reason: 'r' } }),
    };
    const errors: string[] = [];
    const server = new EnrollmentServer({ path: socketPath, enrollment, logger: createLogger('silent'), countError: (code) => errors.push(code), probeTimeoutMs: 500 });
    await server.start();
    try {
      const body = { containerId: 'c', netns: '/n', ifName: 'eth0', namespace: 'app', name: 'a', ips: ['10.0.0.1'] };
      assert.deepEqual(await call(socketPath, '/v1/cni/add', body), {
        status: 500,
        contentType: 'application/json',
        body: { code: 'ML_INTERNAL', message: 'unexpected failure in the agent; see its log' },
      });
      assert.equal((await call(socketPath, '/v1/cni/del', { containerId: 'c', namespace: 'app', name: 'a' })).status, 200);
      assert.equal(calls, 1);
      assert.deepEqual(errors, ['ML_INTERNAL']);
    } finally {
      await server.stop();
      await rm(directory, { recursive: true, force: true });
    }
  });
});
