// The dashboard's data on the admin server: /dashboard/data, one frame as JSON, and /dashboard/events, a frame each
// second as server-sent events for as long as the page is open (see dashboard-sampler.ts).

import type { AdminServer } from './admin-server.ts';
import type { DashboardSampler } from './dashboard-sampler.ts';

export function addDashboardRoutes(app: AdminServer, sampler: DashboardSampler): void {
  const streams = new Set<{ end(): void }>();
  // While someone watches, the latest frame; otherwise one made now (a one-off read must not shorten the watchers'
  // second, so it is made only when nobody watches).
  app.get('/dashboard/data', async (_request, reply) => reply.send(sampler.watchers > 0 && sampler.latest !== null ? sampler.latest : sampler.sample()));
  app.get('/dashboard/events', (request, reply) => {
    reply.hijack();
    const response = reply.raw;
    response.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    const stream = {
      end: () => {
        unwatch();
        streams.delete(stream);
        response.end();
      },
    };
    const unwatch = sampler.watch((frame) => {
      // A page that does not read is not buffered for: frames it missed are gone, the next one says it all.
      if (response.writableNeedDrain) return;
      response.write(`data: ${JSON.stringify(frame)}\n\n`);
    });
    streams.add(stream);
    request.raw.once('close', () => {
      unwatch();
      streams.delete(stream);
    });
  });
  // The server cannot close while an event stream is open: end them first (the agent drains, or stops).
  app.addHook('preClose', async () => {
    for (const stream of [...streams]) stream.end();
  });
}
