// The agent's HTTP endpoints, bound first at start: admin and metrics on each of its addresses. (The probe socket has
// a thread of its own, started before them: probe-thread.ts.)

import type { MetricsSource } from './admin-server.ts';
import type { Logger } from '../telemetry/logger.ts';
import { formatHostPort, type HostPort } from '../vocabulary/host-port.ts';
import { listeningOrFail } from '../vocabulary/listen-failure.ts';
import type { DashboardSampler } from './dashboard-sampler.ts';
import { type AdminServer, type ConnectionPolicy, createAdminServer, createMetricsServer, type Readiness } from './admin-server.ts';

export interface HealthEndpointsOptions {
  admin: HostPort;
  metrics: readonly HostPort[];
  logger: Logger;
  registry: MetricsSource;
  readiness: () => Readiness;
  debugEndpoints: () => unknown;
  dashboard?: DashboardSampler;
}

export interface HealthEndpoints {
  /** "host:port" as bound (the port the kernel chose for port 0). */
  adminUrl: string;
  metricsUrls: string[];
  /** The agent drains: answers from now on close their connection (see ConnectionPolicy). */
  drain(): void;
  close(): Promise<void>;
}

/**
 * Binds them all, in that order; the first that cannot bind throws a ListenError. The TCP ones are shared with
 * SO_REUSEPORT, as the proxy port is: the agent an upgrade starts beside the old one, with the same flags, binds them
 * too.
 */
export async function startHealthEndpoints(options: HealthEndpointsOptions): Promise<HealthEndpoints> {
  const { logger, registry, readiness } = options;
  const servers: AdminServer[] = [];
  const connections: ConnectionPolicy = { closing: false };
  const admin = createAdminServer({ logger, registry, readiness, debugEndpoints: options.debugEndpoints, connections, dashboard: options.dashboard });
  servers.push(admin);
  const adminUrl = await serveHttp('admin', admin, options.admin);
  const metricsUrls: string[] = [];
  for (const address of options.metrics) {
    const server = createMetricsServer({ logger, registry, connections });
    servers.push(server);
    metricsUrls.push(await serveHttp('metrics', server, address));
  }
  return {
    adminUrl,
    metricsUrls,
    drain: () => {
      connections.closing = true;
    },
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
