// The ports preflight: free, shared with a running agent (SO_REUSEPORT), in use by another program, not this node's.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { describe, it } from 'node:test';
import { bindOnce } from '../../agent/preflight/node-access.ts';
import { type BindOutcome, checkPorts } from '../../agent/preflight/ports-check.ts';
import type { HostPort } from '../../agent/vocabulary/host-port.ts';

describe('checkPorts', () => {
  it('binds plainly first and with SO_REUSEPORT only after EADDRINUSE; port 0 is not probed', async () => {
    const probes: string[] = [];
    const answers: Record<string, BindOutcome> = {
      '15001 plain': { bound: true },
      '15000 plain': { bound: false, code: 'EADDRINUSE', message: 'listen EADDRINUSE: address already in use 127.0.0.1:15000' },
      '15000 reusePort': { bound: true },
      '15090 plain': { bound: false, code: 'EADDRINUSE', message: 'listen EADDRINUSE: address already in use 10.0.0.1:15090' },
      '15090 reusePort': { bound: false, code: 'EADDRINUSE', message: 'listen EADDRINUSE: address already in use 10.0.0.1:15090' },
      '15091 plain': { bound: false, code: 'EADDRNOTAVAIL', message: 'listen EADDRNOTAVAIL: address not available 10.9.9.9:15091' },
    };
    const probe = async (address: HostPort, reusePort: boolean): Promise<BindOutcome> => {
      const key = `${address.port} ${reusePort ? 'reusePort' : 'plain'}`;
      probes.push(`${address.host}:${key}`);
      return answers[key];
    };
    const lines = await checkPorts(probe, [
      { what: 'proxy', flag: '--listen', address: { host: '127.0.0.1', port: 15001 } },
      { what: 'proxy on the node IP', flag: '--node-ip', address: { host: '::1', port: 0 } },
      { what: 'admin', flag: '--admin', address: { host: '127.0.0.1', port: 15000 } },
      { what: 'metrics', flag: '--metrics', address: { host: '10.0.0.1', port: 15090 } },
      { what: 'metrics', flag: '--metrics', address: { host: '10.9.9.9', port: 15091 } },
    ]);
    assert.deepEqual(lines, [
      { status: 'ok', what: 'proxy 127.0.0.1:15001: free' },
      { status: 'ok', what: 'proxy on the node IP [::1]:0: any free port' },
      { status: 'ok', what: 'admin 127.0.0.1:15000: shared with a running agent (SO_REUSEPORT)' },
      {
        status: 'fail',
        what: 'metrics 10.0.0.1:15090',
        problem: 'in use by another program',
        fix: 'stop that program (ss -ltnp shows which), or give meshlite another address with --metrics',
      },
      {
        status: 'fail',
        what: 'metrics 10.9.9.9:15091',
        problem: 'cannot bind (listen EADDRNOTAVAIL: address not available 10.9.9.9:15091)',
        fix: '10.9.9.9 is not an address of this node: give one of its addresses with --metrics (or --node-ip)',
      },
    ]);
    assert.deepEqual(probes, [
      '127.0.0.1:15001 plain',
      '127.0.0.1:15000 plain',
      '127.0.0.1:15000 reusePort',
      '10.0.0.1:15090 plain',
      '10.0.0.1:15090 reusePort',
      '10.9.9.9:15091 plain',
    ]);
  });
});

describe('bindOnce', () => {
  async function holder(reusePort: boolean): Promise<{ server: net.Server; address: HostPort }> {
    const server = net.createServer();
    server.listen({ host: '127.0.0.1', port: 0, reusePort });
    await once(server, 'listening');
    return { server, address: { host: '127.0.0.1', port: (server.address() as net.AddressInfo).port } };
  }

  it("tells an agent's shared port from another program's: only the first takes a second SO_REUSEPORT bind", async () => {
    const agent = await holder(true);
    const other = await holder(false);
    try {
      assert.equal((await bindOnce(agent.address, false)).bound, false);
      assert.deepEqual(await bindOnce(agent.address, true), { bound: true });
      assert.deepEqual(await checkPorts(bindOnce, [{ what: 'admin', flag: '--admin', address: agent.address }]), [
        { status: 'ok', what: `admin 127.0.0.1:${agent.address.port}: shared with a running agent (SO_REUSEPORT)` },
      ]);
      const plain = await bindOnce(other.address, false);
      assert.equal(plain.bound === false && plain.code, 'EADDRINUSE');
      assert.equal((await bindOnce(other.address, true)).bound, false);
    } finally {
      agent.server.close();
      other.server.close();
    }
    // The probe kept nothing: the port is free again once its holder closed.
    assert.deepEqual(await bindOnce(agent.address, false), { bound: true });
  });
});
