// Explicit mode: backends, agent and client are plain processes on 127.0.0.1; the client dials the agent itself.

import { rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { type GrpcServerHandle, makeEchoClient, startGrpcServer } from '../lab/grpc-peers.ts';
import { clientConnections } from './agent-connections.ts';
import { startAgent } from './agent-child.ts';
import { startLoad } from './load.ts';
import type { Options } from './options.ts';
import {
  AGENT_DRAIN_TIMEOUT_MS,
  AGENT_STOP_GRACE_MS,
  BACKEND_IDS,
  IN_FLIGHT,
  RPC_DEADLINE_MS,
  type Say,
  type Scene,
} from './scene.ts';
import type { Teardown } from './teardown.ts';

const SERVICE = { name: 'echo', namespace: 'demo', port: 50051 };
const AUTHORITY = `${SERVICE.name}.${SERVICE.namespace}.svc.cluster.local:${SERVICE.port}`;
const HOST = '127.0.0.1';
const AGENT_READY_TIMEOUT_MS = 15_000;

/** Starts it all, registering each part with `teardown` as soon as it runs, so that a failure half-way undoes it. */
export async function setUpExplicit(options: Options, say: Say, teardown: Teardown): Promise<Scene> {
  const dir = await mkdtemp(join(tmpdir(), 'meshlite-demo-'));
  teardown.add(
    async () => {
      await rm(dir, { recursive: true, force: true });
      return `removed ${dir}`;
    },
    () => rmSync(dir, { recursive: true, force: true }),
  );

  const backends: GrpcServerHandle[] = [];
  teardown.add(async () => {
    await Promise.all(backends.map((backend) => backend.close()));
    return backends.length > 0 ? 'the backends' : '';
  });
  for (const id of BACKEND_IDS) backends.push(await startGrpcServer({ host: HOST, id }));
  const addresses = new Map(backends.map((b) => [b.id, `${HOST}:${b.port}`]));
  const backendList = [...addresses].map(([id, address]) => `${id} ${address}`).join(', ');
  say(`  backends  ${backendList} (grpc-js servers in this process)`);

  const staticFile = join(dir, 'services.yaml');
  const services = { services: [{ ...SERVICE, endpoints: [...addresses.values()].map((address) => ({ address })) }] };
  await writeFile(staticFile, `# Written by demo/explicit-scene.ts, removed when the demo stops.\n${stringify(services)}`);

  const agentArgs = ['--discovery', 'static', '--static-file', staticFile, '--listen', `${HOST}:0`, '--admin', `${HOST}:0`];
  agentArgs.push('--balancer', options.balancer, '--drain-timeout-ms', String(AGENT_DRAIN_TIMEOUT_MS));
  const agent = await startAgent(agentArgs, AGENT_READY_TIMEOUT_MS);
  teardown.add(async () => `the agent, pid ${agent.pid} (${await agent.stop(AGENT_STOP_GRACE_MS)})`, () => agent.killNow());
  say(`  agent     pid ${agent.pid}, proxy on ${agent.listen}, endpoints from ${staticFile}`);
  say(`  dashboard http://${agent.admin}/   (open it in a browser while the demo runs)`);
  say(`  admin     curl http://${agent.admin}/debug/endpoints   (also /metrics and /readyz)`);

  // One channel to one address: grpc-js opens one HTTP/2 connection and sends every RPC over it.
  const client = makeEchoClient(agent.listen, { 'grpc.default_authority': AUTHORITY });
  teardown.add(async () => {
    client.close();
    return '';
  });
  say(`  client    ONE grpc-js channel = ONE HTTP/2 connection to ${agent.listen}, ${IN_FLIGHT} unary RPCs in flight,`);
  say(`            :authority ${AUTHORITY} names the service`);
  say();
  say('  Through a ClusterIP Service, which balances connections, this one connection and so every request on it');
  say(`  would reach one backend. Here the agent picks a backend for each request (${options.balancer}).`);
  say();

  const load = startLoad(client, IN_FLIGHT, RPC_DEADLINE_MS);
  teardown.add(async () => {
    await load.stop();
    return 'the load';
  });
  return {
    backends: addresses,
    clients: [{ title: '', tally: load.tally, balanced: true }],
    connections: () => clientConnections(agent.admin),
    agentExited: agent.exited,
    agentOutput: () => agent.recentOutput(),
    stopLoad: () => load.stop(),
  };
}
