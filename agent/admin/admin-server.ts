// The admin servers (fastify): health, readiness, Prometheus metrics and the endpoints as JSON; main listens on them.

import Fastify, { LogController } from 'fastify';
import type { Registry } from 'prom-client';

/** What /metrics renders: the agent's registry, or (with --workers above 1) the totals of every thread's. */
export type MetricsSource = Pick<Registry, 'metrics' | 'contentType'>;
import type { Logger } from '../telemetry/logger.ts';
import { addDashboardPage } from './dashboard-page.ts';
import { addDashboardRoutes } from './dashboard-routes.ts';
import type { DashboardSampler } from './dashboard-sampler.ts';

export type Readiness =
  | { ready: true; discovery?: unknown }
  | { ready: false; reason: string; phase?: string; discovery?: unknown };

/**
 * Shared by the servers of one agent: once `closing` (the agent drains), every answer says `Connection: close`, so
 * that keep-alive clients (Prometheus, a port-forward) leave this agent's connections before it closes them, and
 * their next request finds the listener of the agent an upgrade started beside it.
 */
export interface ConnectionPolicy {
  closing: boolean;
}

export interface AdminServerOptions {
  logger: Logger;
  connections?: ConnectionPolicy;
  registry: MetricsSource;
  /** Asked on every /readyz: ready once the proxy listens and discovery has delivered its first snapshot. */
  readiness: () => Readiness;
  /** What /debug/endpoints shows: services, endpoints, eligibility, in-flight requests (plain JSON data). */
  debugEndpoints: () => unknown;
  /** The dashboard's frames (/dashboard/data, /dashboard/events); no dashboard routes without it. */
  dashboard?: DashboardSampler;
}

/** The admin server on --admin (loopback by default). Not listening yet: main calls listen() and close(). */
export function createAdminServer(options: AdminServerOptions): AdminServer {
  const app = baseServer(options.logger, 'admin', options.connections);
  addHealthRoutes(app, options.readiness);
  addMetricsRoute(app, options.registry);
  app.get('/debug/endpoints', async (_request, reply) => reply.send(options.debugEndpoints()));
  if (options.dashboard !== undefined) {
    addDashboardRoutes(app, options.dashboard);
    addDashboardPage(app);
  }
  return app;
}

/** The Prometheus-only server on --metrics (the node IP): exposes nothing but /metrics beyond loopback. */
export function createMetricsServer(options: { logger: Logger; registry: MetricsSource; connections?: ConnectionPolicy }): AdminServer {
  const app = baseServer(options.logger, 'metrics', options.connections);
  addMetricsRoute(app, options.registry);
  return app;
}

/** A fastify instance typed with our pino logger. */
export type AdminServer = ReturnType<typeof baseServer>;

function baseServer(logger: Logger, component: string, connections: ConnectionPolicy = { closing: false }) {
  const app = Fastify({
    loggerInstance: logger.child({ component }),
    // Probes and scrapes arrive every few seconds; a log line for each would bury the lines that matter.
    logController: new LogController({ disableRequestLogging: true }),
    // Answer at once when closing instead of holding probes open while main drains.
    return503OnClosing: true,
  });
  app.addHook('onSend', async (_request, reply, payload) => {
    // Every answer here describes the agent right now; a cached one would mislead.
    reply.header('cache-control', 'no-store');
    if (connections.closing) reply.header('connection', 'close');
    return payload;
  });
  return app;
}

function addHealthRoutes(app: AdminServer, readiness: () => Readiness): void {
  app.get('/healthz', async (_request, reply) => {
    // Liveness: answering at all proves the event loop turns; nothing else belongs here (a failing dependency
    // must not make Kubernetes restart the agent).
    return reply.type('text/plain; charset=utf-8').send('ok\n');
  });
  app.get('/readyz', async (_request, reply) => {
    const answer = readiness();
    return reply.code(answer.ready ? 200 : 503).send(answer);
  });
}

function addMetricsRoute(app: AdminServer, registry: MetricsSource): void {
  app.get('/metrics', async (_request, reply) => {
    const body = await registry.metrics();
    return reply.type(registry.contentType).send(body);
  });
}
