// The agent's HTTP endpoints, bound first at start: admin, metrics on each of its addresses, and the probe socket.

import { mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Registry } from 'prom-client';
import type { Logger } from '../telemetry/logger.ts';
import { formatHostPort, type HostPort } from '../vocabulary/host-port.ts';
import { listeningOrFail } from '../vocabulary/listen-failure.ts';
import { type AdminServer, createAdminServer, createMetricsServer, createProbeServer, type Readiness } from './admin-server.ts';

export interface HealthEndpointsOptions {
  admin: HostPort;
  metrics: readonly HostPort[];
  /** null: no probe socket. */
  probeSocket: string | null;
  logger: Logger;
  registry: Registry;
  readiness: () => Readiness;
  debugEndpoints: () => unknown;
}

export interface HealthEndpoints {
  /** "host:port" as bound (the port the kernel chose for port 0). */
  adminUrl: string;
  metricsUrls: string[];
  close(): Promise<void>;
}

/**
 * Binds them all, in that order; the first that cannot bind throws a ListenError. The TCP ones are shared with
 * SO_REUSEPORT, as the proxy port is: the agent an upgrade starts beside the old one, with the same flags, binds them
 * too. The probe socket is the pod's own, so /healthz and /readyz there answer for this agent alone.
 */
export async function startHealthEndpoints(options: HealthEndpointsOptions): Promise<HealthEndpoints> {
  const { logger, registry, readiness } = options;
  const servers: AdminServer[] = [];
  const admin = createAdminServer({ logger, registry, readiness, debugEndpoints: options.debugEndpoints });
  servers.push(admin);
  const adminUrl = await serveHttp('admin', admin, options.admin);
  const metricsUrls: string[] = [];
  for (const address of options.metrics) {
    const server = createMetricsServer({ logger, registry });
    servers.push(server);
    metricsUrls.push(await serveHttp('metrics', server, address));
  }
  if (options.probeSocket !== null) {
    const probes = createProbeServer({ logger, readiness });
    servers.push(probes);
    await serveProbes(probes, options.probeSocket);
  }
  return {
    adminUrl,
    metricsUrls,
    close: async () => {
      await Promise.all(servers.map((server) => server.close()));
    },
  };
}

/** Binds an HTTP server (shared with SO_REUSEPORT) and says where it listens, its port as bound ("host:port"). */
async function serveHttp(what: string, server: AdminServer, address: HostPort): Promise<string> {
  // Node's own listen: fastify's options have no reusePort. fastify.close() still closes this server.
  await server.ready();
  const bind = new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.server.listen({ host: address.host, port: address.port, reusePort: true }, () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  await listeningOrFail(what, formatHostPort(address.host, address.port), bind);
  const bound = server.server.address();
  return formatHostPort(address.host, typeof bound === 'object' && bound !== null ? bound.port : address.port);
}

/**
 * Binds the probe server to its unix socket. A file left there is removed first: the socket is the pod's own (its
 * emptyDir), so what is there was left by this container's previous run, which a restart ended.
 */
async function serveProbes(server: AdminServer, path: string): Promise<void> {
  rmSync(path, { force: true });
  mkdirSync(dirname(path), { recursive: true });
  await listeningOrFail('probes', path, server.listen({ path }));
}
