// Wiring of a data-plane worker thread (--workers above 1): its own relay, balancers, upstream pools and proxy listener on the
// shared port, fed by the main thread's one discovery through its port (workers/worker-messages.ts).

import net from 'node:net';
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { createDataPlane } from './data-plane.ts';
import type { PodRef } from './discovery/opt-in-index.ts';
import { enrolledOrLoopback } from './enrollment/source-policy.ts';
import { EndpointRegistry } from './registry/endpoint-registry.ts';
import { createLogger } from './telemetry/logger.ts';
import { RecentLines } from './telemetry/recent-lines.ts';
import { createMetrics } from './telemetry/metrics.ts';
import { followRegistry } from './telemetry/registry-series.ts';
import { realClock } from './vocabulary/clock.ts';
import { formatHostPort } from './vocabulary/host-port.ts';
import { applyRegistryBatch } from './workers/registry-mirror.ts';
import { VIEW_INTERVAL_MS } from './workers/thread-views.ts';
import type { DataPlaneWorkerData, FromWorker, ToWorker } from './workers/worker-messages.ts';

if (parentPort === null) throw new Error('data-plane-worker.ts runs as a worker thread of the agent');
const port: MessagePort = parentPort;
const { config, id } = workerData as DataPlaneWorkerData;
const send = (message: FromWorker): void => port.postMessage(message);

/** The dashboard's recent events are the main thread's RecentLines: this thread's lines at info and above go there too. */
class ForwardedLines extends RecentLines {
  override write(line: string): void {
    send({ type: 'log-line', line });
  }
}

// Lines go to the same stdout as the main thread's, each marked with its thread.
const logger = createLogger(config.logLevel, undefined, new ForwardedLines(0)).child({ worker: id });
// Process-wide figures (CPU, memory, event loop of the main thread) are the main thread's to report.
const metrics = createMetrics({ processMetrics: false, endpointLabel: config.metricsEndpointLabel });
const registry = new EndpointRegistry();
// A removed endpoint's series go here when they go on the main thread, so the sums match what one thread would show.
followRegistry(registry, metrics, { counts: false });
const enrolled = new Map<string, PodRef>();
let accepted = 0;
let draining = false;
const reportOpen = (): void => send({ type: 'open-connections', open: plane.listener.openConnections });

const plane = createDataPlane({
  config,
  registry,
  metrics,
  logger,
  sourceAllowed: config.intercept ? enrolledOrLoopback({ podAt: (ip) => enrolled.get(ip) }) : undefined,
  onConnectionOpened: () => accepted++,
  onConnectionClosed: () => {
    if (draining) reportOpen();
  },
});
plane.clientLimits.startIdleSweep(() => plane.listener.connections);
// The agent is ready once every thread listens: a first listen in a fresh thread runs cold code (10–14 ms measured
// here, against 3–5 ms once warm), all of it between discovery's sync and readiness. One throwaway bind on an
// ephemeral loopback port, while discovery syncs, pays for it early; where loopback is down it fails, unheard.
const warmUp = net.createServer();
warmUp.on('error', () => {});
warmUp.listen({ host: '127.0.0.1', port: 0, reusePort: true }, () => warmUp.close());
// The admin endpoints and the dashboard are the main thread's: it shows this thread's state from what it last sent.
const views = setInterval(() => {
  const services = plane.balancers.describe();
  const backingOff = services.flatMap((service) => service.endpoints.filter((endpoint) => plane.relay.pools.inBackoff(endpoint.address)).map((endpoint) => endpoint.address));
  send({ type: 'view', view: { services, readings: metrics.readings(), backingOff } });
}, VIEW_INTERVAL_MS);

async function listen(addresses: ReadonlyArray<{ host: string; port: number }>): Promise<void> {
  try {
    for (const { host, port } of addresses) await plane.listener.listen(host, port);
    send({ type: 'listening', addresses: plane.listener.state.state === 'listening' ? [...plane.listener.state.addresses] : [] });
  } catch (error) {
    const where = addresses.map(({ host, port }) => formatHostPort(host, port)).join(', ');
    send({ type: 'listen-failed', message: `cannot listen on ${where} (proxy, worker ${id}): ${(error as Error).message}` });
  }
}

function stop(): void {
  clearInterval(views);
  plane.clientLimits.stop();
  plane.relay.close();
  plane.balancers.close();
  port.close();
  // Ends this thread only (process.exit in a worker stops the worker), whatever handle a pool may still hold.
  process.exit(0);
}

port.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'registry':
      // A batch that does not apply means this thread's view differs from discovery's: the thread fails (the main
      // thread reports ML_WORKER_EXITED) rather than serve from a wrong view.
      applyRegistryBatch(registry, message.updates);
      return;
    case 'opt-in':
      for (const change of message.changes) {
        if (change.type === 'enroll') enrolled.set(change.ip, change.pod);
        else enrolled.delete(change.ip);
      }
      return;
    case 'listen':
      void listen(message.addresses);
      return;
    case 'scrape':
      void metrics.registry.getMetricsAsJSON().then((json) => send({ type: 'metrics', id: message.id, metrics: json, accepted }));
      return;
    case 'stop-accepting':
      draining = true;
      // The listening sockets close at once (the promise waits for the accepted ones too).
      void plane.listener.stopAccepting(realClock.now());
      send({ type: 'stopped-accepting' });
      return;
    case 'finish-connections':
      draining = true;
      plane.listener.finishConnections();
      reportOpen();
      return;
    case 'destroy-all':
      plane.listener.destroyAll();
      reportOpen();
      return;
    case 'stop':
      stop();
      return;
  }
});
